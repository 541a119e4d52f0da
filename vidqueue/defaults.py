"""Constants, Redis key names and defaults, with their units, in one place."""

QUEUE_NAME = "video-processing"
"""The RQ queue that video jobs wait in."""

JOB_FUNCTION = "processor.job.process_video"
"""The worker's entry point, named by path so that nothing imports the worker."""

KEY_PREFIX = "vidqueue"


def job_key(job_id: str) -> str:
    """Redis hash holding one job record."""
    return f"{KEY_PREFIX}:job:{job_id}"


UPLOADING_KEY = f"{KEY_PREFIX}:uploading"
"""Sorted set of jobs still `uploading`, scored by their creation time (unix s)."""

USER_JOBS_KEY_TEMPLATE = KEY_PREFIX + ":user:{user_id}:jobs"
"""Sorted set of one user's jobs, scored by creation time (unix s)."""

STATE_COUNT_KEY = f"{KEY_PREFIX}:state-counts"
"""Hash: state name -> number of jobs currently in that state."""

THROUGHPUT_KEY = f"{KEY_PREFIX}:throughput"
"""Hash of running totals: seconds of video processed and seconds spent."""

CHANNEL_TEMPLATE = KEY_PREFIX + ":events:{job_id}"
"""Pub/sub channel announcing each change of one job's record."""

STATES = ("uploading", "waiting", "active", "completed", "failed", "cancelled")
FINAL_STATES = frozenset({"completed", "failed", "cancelled"})

# Storage
UPLOAD_BUCKET = "vidqueue-uploads"
OUTPUT_BUCKET = "vidqueue-videos"
S3_REGION = "us-east-1"
PRESIGN_EXPIRY_SECONDS = 15 * 60
DOWNLOAD_URL_EXPIRY_SECONDS = 7 * 24 * 3600
MULTIPART_CHUNK_BYTES = 8 * 1024 * 1024

# Limits
MAX_UPLOAD_BYTES = 5 * 1024**3
MAX_DURATION_SECONDS = 3 * 3600
MAX_WIDTH = 7680
MAX_HEIGHT = 4320
MAX_FILENAME_CHARS = 200
ALLOWED_CONTENT_TYPES = (
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "video/x-msvideo",
    "video/mpeg",
    "video/ogg",
    "video/3gpp",
    "application/octet-stream",
)

# Processing
CONCURRENCY = 1
JOB_TIMEOUT_SECONDS = 6 * 3600
RETRY_INTERVALS_SECONDS = (10, 60, 300)
PROGRESS_WRITE_INTERVAL_SECONDS = 0.5
STALL_TIMEOUT_SECONDS = 60.0
"""ffmpeg is killed when its output position stops advancing for this long."""
TIME_LIMIT_FACTOR = 10.0
"""One ffmpeg run may take this many times the video's duration (10 min at least)."""
SOURCE_READ = "stream"
"""How the worker reads a source: `stream` (ffmpeg reads a presigned GET) or
`download` (parallel ranged GETs to a local file first)."""
SOURCE_RECONNECT_MAX_SECONDS = 10
"""ffprobe and ffmpeg reading a presigned GET reconnect after a dropped
connection or a 5xx, resuming where they were, waiting 0, 1, 3 and 7 s in
turn; past this longest wait they give up and the job's attempt is retried."""
WORKER_TTL_SECONDS = 30
"""A worker that sends no heartbeat for this long counts as dead."""
JOB_MONITORING_INTERVAL_SECONDS = 5
"""How often a busy worker extends its job's lease."""
LEASE_GRACE_SECONDS = 10
"""How long a job's lease outlives its last heartbeat."""
MAINTENANCE_INTERVAL_SECONDS = 15
"""How often a worker looks for jobs abandoned by dead workers. A job whose
worker died is retried within about monitoring interval + grace + this."""
ESTIMATE_DEFAULT_SECONDS = 30.0
"""Estimated processing time of one job before any has been measured."""

# Trigger
POLL_INTERVAL_SECONDS = 2.0
"""How often the poller checks fresh uploads (younger than a minute)."""
POLL_MAX_INTERVAL_SECONDS = 30.0
"""The longest wait between two checks of an old pending upload."""
UPLOAD_GRACE_SECONDS = 300
"""How long after its presigned request expired an upload may still arrive."""
INBOX_INTERVAL_SECONDS = 30.0
"""How often the poller lists the inbox (0 turns the inbox off)."""
INBOX_USER = "inbox"
"""The owner of jobs made from inbox objects."""
INBOX_SEEN_KEY = f"{KEY_PREFIX}:inbox:seen"
"""Hash of inbox objects already made into jobs: key -> "etag|last seen (unix s)"."""
EVENT_RECONNECT_MAX_SECONDS = 30.0
"""The longest wait before listening to storage events again after a failure."""

# Records
RECORD_TTL_SECONDS = 30 * 24 * 3600
"""How long Redis keeps a finished job's record; the database keeps it for good."""

DEFAULT_USER = "local"
"""The owner of every job when authentication is off."""

# Durable record (the `videos` table in Postgres / Supabase)
OUTBOX_KEY = f"{KEY_PREFIX}:outbox"
"""Stream of job record snapshots, one entry per change, in the order of the
changes; its format is described in `vidqueue.durable.outbox`."""
OUTBOX_GROUP = "durable-record"
"""The consumer group of the pumps that write the outbox to the database."""
OUTBOX_BATCH_ENTRIES = 5000
"""Most outbox entries one pump reads, coalesces and writes at once."""
OUTBOX_FLUSH_INTERVAL_SECONDS = 1.0
"""Least time between two writes of one pump: changes of a job in between
(progress, mostly) become one row write."""
OUTBOX_RETRY_MAX_SECONDS = 30.0
"""Longest wait between two write attempts while the database is down."""
OUTBOX_CLAIM_IDLE_SECONDS = 60.0
"""Entries read by a pump and not acknowledged for this long are taken over by
another pump (the first one died)."""
OUTBOX_FORGET_CONSUMER_SECONDS = 24 * 3600
"""A pump idle this long with nothing pending is dropped from the group."""
RECONCILE_INTERVAL_SECONDS = 300.0
"""How often the poller rebuilds records that Redis lost, besides at start."""
RECONCILE_LOCK_KEY = f"{KEY_PREFIX}:reconcile-lock"
"""Lock that lets one reconcile run at a time across pollers."""
DATABASE_TABLE = "videos"
DATABASE_TIMEOUT_SECONDS = 5.0
"""How long a database call waits for a connection or an answer."""
DATABASE_POOL_SIZE = 4

# API
API_HOST = "127.0.0.1"
API_PORT = 8000
REQUEST_BODY_LIMIT_BYTES = 64 * 1024
API_GC_THRESHOLDS = (50_000, 50, 100)
"""The API process's garbage collector thresholds (Python's are 700, 10, 10)."""
MULTIPART_COMPLETE_BODY_LIMIT_BYTES = 1024 * 1024
"""A multipart complete call lists up to 10,000 parts of about 60 bytes each."""

# Authentication
JWT_AUDIENCE = "authenticated"
"""The `aud` claim of Supabase access tokens for signed-in users."""
JWT_LEEWAY_SECONDS = 10
"""Clock skew forgiven when checking a token's `exp` and `nbf`."""
JWT_ASYMMETRIC_ALGORITHMS = ("RS256", "ES256", "EdDSA")
"""Algorithms accepted for tokens checked against the JWKS (never HS*, never none)."""
JWKS_CACHE_SECONDS = 300
"""How long the key set fetched from the JWKS URL is trusted before a refetch."""
JWKS_REFRESH_COOLDOWN_SECONDS = 30
"""Least time between refetches caused by tokens with an unknown key id."""
OPEN_PATHS = ("^/schema", "^/hooks/")
"""Paths the user authentication skips: the API schema, and the storage hook,
which checks its own secret. Routes opt out with `exclude_from_auth=True`."""

# Upload limits
MAX_UPLOADS_IN_FLIGHT = 10
"""Uploads one user may have started and not finished (jobs in `uploading`)."""
MAX_UPLOADS_PER_MINUTE = 30
"""Uploads one user may start in any 60 seconds."""
RATE_WINDOW_SECONDS = 60
IN_FLIGHT_KEY_TEMPLATE = KEY_PREFIX + ":user:{user_id}:in-flight"
"""Sorted set of a user's unfinished uploads, scored by when their presigned
requests expire (unix s)."""
RATE_KEY_TEMPLATE = KEY_PREFIX + ":user:{user_id}:started"
"""Sorted set of the upload starts of one user in the last minute (unix s)."""
MULTIPART_KEY_TEMPLATE = KEY_PREFIX + ":multipart:{job_id}"
"""The S3 UploadId of the multipart upload that carries a job's bytes."""
MIN_PART_BYTES = 5 * 1024 * 1024
"""S3's smallest part (except the last): bounds the part count of a known size."""
MAX_PARTS = 10_000
"""S3's largest part number."""
MAX_PARTS_PER_BATCH = 100
"""Most part URLs one batch request may ask for."""

# Queue position
ENQUEUED_TOTAL_KEY = f"{KEY_PREFIX}:queue:enqueued-total"
"""Counter of every enqueue ever made; a job's sequence number is its value then."""
QUEUE_SEQ_FIELD = "queue_seq"
"""Field of the job's Redis hash holding its enqueue sequence number (not a
record field: `JobRecord` ignores it)."""
POSITION_SCAN_LIMIT = 10_000
"""Most queue entries a position lookup compares when it has to walk the list."""
FIGURES_CACHE_SECONDS = 2.0
"""How long an API process reuses the worker count and throughput for estimates."""
READY_CHECK_TIMEOUT_SECONDS = 3.0
"""How long `/readyz` waits for each dependency before calling it unavailable."""
EVENTS_HEARTBEAT_SECONDS = 15.0
"""Longest silence on an event stream before a comment line keeps it open."""

# Webhooks
WEBHOOK_QUEUE_NAME = "webhooks"
"""The RQ queue of webhook deliveries, apart from videos so none waits behind one."""
WEBHOOK_FUNCTION = "vidqueue.webhooks.delivery.deliver"
"""The delivery job, named by path like the video job."""
WEBHOOK_GROUP = "webhooks"
"""The outbox consumer group of the webhook dispatchers."""
WEBHOOK_SIGNATURE_HEADER = "Vidqueue-Signature"
"""`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
WEBHOOK_DELIVERY_HEADER = "Vidqueue-Delivery"
"""The delivery's id: the same on every attempt of one delivery."""
WEBHOOK_EVENT_HEADER = "Vidqueue-Event"
"""`job.completed`, `job.failed`, `job.cancelled` or `job.updated`."""
WEBHOOK_TIMEOUT_SECONDS = 5.0
"""How long one attempt waits to connect, and then for each read or write."""
WEBHOOK_RETRY_INTERVALS_SECONDS = (
    15, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 28800,
)  # fmt: skip
"""Pauses before the retries of a failed attempt: growing, about a day in all
(23 h 51 min over 11 attempts)."""
WEBHOOK_RESPONSE_LIMIT_BYTES = 4096
"""Most bytes of a receiver's answer read; the rest is never read."""
WEBHOOK_TOLERANCE_SECONDS = 300
"""How old a signature's timestamp receivers should accept, against replays."""
WEBHOOK_JOB_TIMEOUT_FACTOR = 6
"""RQ's limit for one attempt, in per-read timeouts: a receiver that answers a
byte at a time is cut off there (30 s with the default timeout)."""
WEBHOOK_DELIVERY_KEY_TEMPLATE = KEY_PREFIX + ":webhook:delivery:{delivery_id}"
"""Hash of one delivery: job id, event, URL, body and attempts so far."""
WEBHOOK_DELIVERY_TTL_SECONDS = 3 * 24 * 3600
"""How long a delivery is kept: past its last retry, with room to spare."""
WEBHOOK_SENT_KEY_TEMPLATE = KEY_PREFIX + ":webhook:sent:{job_id}:{mark}"
"""Set once per (job, state, moment): the guard against sending one event twice."""
WEBHOOK_SENT_LEASE_SECONDS = 30
"""A guard's life until its delivery is enqueued: shorter than the outbox's
claim time, so that an entry whose dispatcher died is dispatched again."""
WEBHOOK_SENT_TTL_SECONDS = 7 * 24 * 3600
"""How long a dispatched event's guard is kept, against replays."""
WEBHOOK_ATTEMPTS_KEY_TEMPLATE = KEY_PREFIX + ":webhook:attempts:{job_id}"
"""List of one job's delivery attempts as JSON, oldest first."""
WEBHOOK_ATTEMPTS_KEPT = 50
"""Most attempts kept per job (the oldest go first)."""
WEBHOOK_MAX_URL_CHARS = 2048
WEBHOOK_DISPATCH_BLOCK_SECONDS = 1.0
"""How long a dispatcher waits for new outbox entries before looking again."""
METADATA_ADDRESSES = frozenset(
    {"169.254.169.254", "168.63.129.16", "100.100.100.200", "fd00:ec2::254"}
)
"""Cloud metadata and host services (AWS, GCP, Azure, Alibaba), refused even
where they are not private addresses."""
