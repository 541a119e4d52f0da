-- A stand-in for the parts of Supabase that vidqueue's migrations rely on, so
-- that the same migrations and row-level security run on a plain Postgres
-- (the local system, the tests).
--
-- `vidqueue migrate` applies it before the migrations only where Supabase's
-- own `auth` schema is absent (or is this stand-in, marked by the schema's
-- comment); it never runs on Supabase. It can be applied any number of times.

-- The roles that Supabase's API gateway switches to: `anon` for requests
-- without a user, `authenticated` for signed-in users, `service_role` for
-- trusted servers (it bypasses row-level security, as on Supabase).
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
exception
  -- Roles belong to the whole cluster: another database may create them first.
  when duplicate_object or unique_violation then null;
end
$$;

create schema if not exists auth;
comment on schema auth is 'vidqueue: local stand-in for Supabase auth';
grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;

-- The claims of the caller's JWT, as PostgREST sets them for each request:
-- `set local request.jwt.claims = '{"sub": "...", "role": "authenticated"}'`.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

-- The signed-in user's id (the token's `sub`), as a uuid, or null.
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select nullif(
    coalesce(
      current_setting('request.jwt.claim.sub', true),
      nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
    ),
    ''
  )::uuid
$$;

-- The caller's role claim: `anon`, `authenticated` or `service_role`.
create or replace function auth.role() returns text
language sql stable
as $$
  select nullif(
    coalesce(
      current_setting('request.jwt.claim.role', true),
      nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
    ),
    ''
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role()
  to anon, authenticated, service_role;
