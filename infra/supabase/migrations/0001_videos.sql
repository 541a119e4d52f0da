-- The durable job record: one row per job, with the fields of the job record
-- in Redis. Rows are written by vidqueue's outbox pump (as the table owner or
-- the service role); `version` grows with every change of a job, so the row
-- with the highest version is the newest state.

create table if not exists public.videos (
  id text primary key,
  user_id text not null,
  state text not null default 'uploading'
    constraint videos_state_check check (
      state in ('uploading', 'waiting', 'active', 'completed', 'failed', 'cancelled')
    ),
  progress smallint not null default 0
    constraint videos_progress_check check (progress between 0 and 100),
  stage text,
  source_bucket text not null default '',
  source_key text not null default '',
  filename text not null default '',
  content_type text not null default '',
  size_bytes bigint not null default 0
    constraint videos_size_bytes_check check (size_bytes >= 0),
  profile text not null default 'default',
  result jsonb,
  failed_reason text,
  attempts integer not null default 0
    constraint videos_attempts_check check (attempts >= 0),
  version bigint not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  upload_expires_at timestamptz
);

comment on table public.videos is
  'vidqueue jobs: one row per uploaded video, kept after Redis forgets the job';
comment on column public.videos.version is
  'grows by one with each change of the job; older versions never overwrite newer';
comment on column public.videos.result is
  'video_url, duration, width, height, size_bytes, poster_url, renditions';

-- A user's recent jobs, newest first.
create index if not exists videos_user_id_created_at_idx
  on public.videos (user_id, created_at desc);

-- Jobs by state (the unfinished ones, for reconciling Redis after a loss).
create index if not exists videos_state_idx on public.videos (state);
