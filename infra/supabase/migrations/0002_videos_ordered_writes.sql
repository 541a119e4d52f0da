-- Writes are ordered by `version`: a snapshot older than the row (a progress
-- report that arrives after the job finished) leaves the row as it is.
--
-- vidqueue's direct SQL upsert already says so in its ON CONFLICT clause; the
-- trigger makes the database itself enforce it for every other writer too,
-- notably PostgREST's upserts (Prefer: resolution=merge-duplicates), which
-- cannot carry a condition. An update that keeps the version (an operator's
-- hand edit) still goes through.

create or replace function public.videos_keep_newest()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.version < old.version then
    return null;
  end if;
  return new;
end
$$;

comment on function public.videos_keep_newest() is
  'skips an update of public.videos that carries an older version than the row';

create or replace trigger videos_keep_newest
  before update on public.videos
  for each row execute function public.videos_keep_newest();
