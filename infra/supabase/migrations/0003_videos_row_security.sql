-- Who sees and changes which rows.
--
-- A signed-in user (`authenticated`, e.g. a browser with a Supabase session)
-- reads only the rows whose `user_id` is its own `auth.uid()`; it changes
-- nothing. `anon` has no access at all. Only the service role (and the table
-- owner, which vidqueue's direct connection uses) writes.

alter table public.videos enable row level security;

revoke all on table public.videos from public, anon, authenticated, service_role;
grant select on table public.videos to authenticated;
grant select, insert, update, delete on table public.videos to service_role;

drop policy if exists videos_owner_reads on public.videos;
create policy videos_owner_reads on public.videos
  for select
  to authenticated
  using (user_id = (select auth.uid())::text);

-- The service role bypasses row-level security on Supabase already; the
-- policy says so explicitly for databases where it does not.
drop policy if exists videos_service_writes on public.videos;
create policy videos_service_writes on public.videos
  for all
  to service_role
  using (true)
  with check (true);
