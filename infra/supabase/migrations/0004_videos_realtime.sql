-- Browsers subscribe to their jobs' changes through Supabase Realtime, which
-- streams the tables of the `supabase_realtime` publication (filtered by the
-- row-level security above). On a plain Postgres the publication does not
-- exist and this does nothing.

do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime')
     and not exists (
       select 1 from pg_publication_tables
       where pubname = 'supabase_realtime'
         and schemaname = 'public'
         and tablename = 'videos'
     )
  then
    alter publication supabase_realtime add table public.videos;
  end if;
end
$$;
