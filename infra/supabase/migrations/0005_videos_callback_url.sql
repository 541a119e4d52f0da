-- The URL a job's webhooks go to, when its owner gave one (`callbackUrl` on
-- POST /uploads); NULL when the job uses the deployment's VIDQUEUE_WEBHOOK_URL
-- or none. Like the rest of the row, its owner can read it: signatures, not
-- secrets in the URL, are what a receiver should trust.

alter table public.videos add column if not exists callback_url text;

comment on column public.videos.callback_url is
  'where this job''s webhooks go (http or https); NULL: the deployment''s URL';
