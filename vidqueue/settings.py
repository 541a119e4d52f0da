"""Settings read from `VIDQUEUE_*` environment variables and an optional `.env` file."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from vidqueue import defaults
from vidqueue.errors import ConfigError

PREFIX = "VIDQUEUE_"


@dataclass(frozen=True)
class Settings:
    """Everything a vidqueue process needs to know, with working local defaults.

    Each field is read from `VIDQUEUE_<FIELD NAME IN CAPITALS>`. Unset connection
    settings (`redis_url`, `s3_endpoint`) mean "the local system starts its own".
    """

    redis_url: str | None = None
    s3_endpoint: str | None = None
    s3_region: str = defaults.S3_REGION
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    upload_bucket: str = defaults.UPLOAD_BUCKET
    output_bucket: str = defaults.OUTPUT_BUCKET
    public_base_url: str | None = None
    database_url: str | None = None
    supabase_url: str | None = None
    supabase_service_key: str | None = None
    auth_mode: str = "none"
    jwt_secret: str | None = None
    jwks_url: str | None = None
    api_keys: str | None = None
    hook_secret: str | None = None
    api_host: str = defaults.API_HOST
    api_port: int = defaults.API_PORT
    api_url: str | None = None
    api_token: str | None = None
    """The credential that the command line's client commands send."""
    max_upload_bytes: int = defaults.MAX_UPLOAD_BYTES
    max_uploads_in_flight: int = defaults.MAX_UPLOADS_IN_FLIGHT
    max_uploads_per_minute: int = defaults.MAX_UPLOADS_PER_MINUTE
    metrics_token: str | None = None
    max_duration_seconds: float = defaults.MAX_DURATION_SECONDS
    concurrency: int = defaults.CONCURRENCY
    presign_expiry_seconds: int = defaults.PRESIGN_EXPIRY_SECONDS
    poll_interval_seconds: float = defaults.POLL_INTERVAL_SECONDS
    upload_grace_seconds: float = defaults.UPLOAD_GRACE_SECONDS
    inbox_interval_seconds: float = defaults.INBOX_INTERVAL_SECONDS
    inbox_user: str = defaults.INBOX_USER
    minio_listen: str = "off"
    job_timeout_seconds: int = defaults.JOB_TIMEOUT_SECONDS
    retry_seconds: str | None = None
    profiles_file: str | None = None
    stall_timeout_seconds: float = defaults.STALL_TIMEOUT_SECONDS
    time_limit_factor: float = defaults.TIME_LIMIT_FACTOR
    source_read: str = defaults.SOURCE_READ
    webhooks: str = "auto"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_stages: str = "off"
    webhook_allow_hosts: str | None = None
    webhook_timeout_seconds: float = defaults.WEBHOOK_TIMEOUT_SECONDS
    webhook_retry_seconds: str = ",".join(
        map(str, defaults.WEBHOOK_RETRY_INTERVALS_SECONDS)
    )
    data_dir: Path = field(default_factory=lambda: Path(".vidqueue"))
    log_level: str = "INFO"
    log_format: str = "text"

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Build settings from the environment, falling back to `env_file`.

        Variables already in the environment win over the file, as with most
        twelve-factor tools. Raises `ConfigError` naming any malformed value.
        """
        values: dict[str, str | None] = {}
        if env_file and Path(env_file).is_file():
            values.update(dotenv_values(env_file))
        values.update(os.environ if environ is None else environ)

        kwargs = {}
        for f in dataclasses.fields(cls):
            raw = values.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _convert(f.name, raw, f.type)
        settings = cls(**kwargs)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise `ConfigError` for values that cannot work together."""
        if self.auth_mode not in ("none", "apikey", "jwt"):
            mode = self.auth_mode
            raise ConfigError(
                f"VIDQUEUE_AUTH_MODE must be none, apikey or jwt, not {mode!r}"
            )
        if self.concurrency < 1:
            raise ConfigError("VIDQUEUE_CONCURRENCY must be at least 1")
        if self.max_upload_bytes < 1:
            raise ConfigError("VIDQUEUE_MAX_UPLOAD_BYTES must be positive")
        if self.max_uploads_in_flight < 1 or self.max_uploads_per_minute < 1:
            raise ConfigError(
                "VIDQUEUE_MAX_UPLOADS_IN_FLIGHT and VIDQUEUE_MAX_UPLOADS_PER_MINUTE "
                "must be at least 1"
            )
        if self.source_read not in ("stream", "download"):
            raise ConfigError("VIDQUEUE_SOURCE_READ must be stream or download")
        if self.minio_listen not in ("on", "off"):
            raise ConfigError("VIDQUEUE_MINIO_LISTEN must be on or off")
        if self.log_format not in ("text", "json"):
            raise ConfigError("VIDQUEUE_LOG_FORMAT must be text or json")
        if self.retry_seconds and _seconds_list(self.retry_seconds) is None:
            raise ConfigError(
                "VIDQUEUE_RETRY_SECONDS must be a comma-separated list of "
                f"seconds, not {self.retry_seconds!r}"
            )
        self._check_webhooks()

    def _check_webhooks(self) -> None:
        if self.webhooks not in ("auto", "on", "off"):
            raise ConfigError("VIDQUEUE_WEBHOOKS must be auto, on or off")
        if self.webhook_stages not in ("on", "off"):
            raise ConfigError("VIDQUEUE_WEBHOOK_STAGES must be on or off")
        if self.webhook_timeout_seconds <= 0:
            raise ConfigError("VIDQUEUE_WEBHOOK_TIMEOUT_SECONDS must be positive")
        if _seconds_list(self.webhook_retry_seconds) is None:
            raise ConfigError(
                "VIDQUEUE_WEBHOOK_RETRY_SECONDS must be a comma-separated list of "
                f"seconds, not {self.webhook_retry_seconds!r}"
            )
        if self.webhooks_enabled and not self.webhook_secret:
            raise ConfigError(
                "webhooks are on: set VIDQUEUE_WEBHOOK_SECRET, which signs them"
            )
        url = self.webhook_url or ""
        if url and not url.lower().startswith(("http://", "https://")):
            raise ConfigError("VIDQUEUE_WEBHOOK_URL must be an http(s) URL")

    @property
    def webhooks_enabled(self) -> bool:
        """True when jobs are announced to callback URLs (`vidqueue.webhooks`).

        `VIDQUEUE_WEBHOOKS=auto` (the default) turns webhooks on when
        `VIDQUEUE_WEBHOOK_URL` is set; `on` turns them on without a global URL,
        for jobs that bring their own `callbackUrl`; `off` turns them off.
        """
        if self.webhooks == "auto":
            return bool(self.webhook_url)
        return self.webhooks == "on"

    @property
    def retry_intervals(self) -> tuple[int, ...]:
        """Seconds before each retry of a failed attempt at a job, in order.

        As many retries as intervals; unset: `RETRY_INTERVALS_SECONDS`. A 0
        puts the job back on the queue at once, while a longer wait goes
        through RQ's scheduler.
        """
        if not self.retry_seconds:
            return defaults.RETRY_INTERVALS_SECONDS
        return _seconds_list(self.retry_seconds) or defaults.RETRY_INTERVALS_SECONDS

    @property
    def webhook_retry_intervals(self) -> tuple[int, ...]:
        """Seconds before each retry of a failed delivery, in order."""
        intervals = _seconds_list(self.webhook_retry_seconds)
        return intervals or defaults.WEBHOOK_RETRY_INTERVALS_SECONDS

    @property
    def webhook_allowed_hosts(self) -> frozenset[str]:
        """Hosts that callbacks may reach whatever their address (lower case)."""
        names = (self.webhook_allow_hosts or "").lower().split(",")
        return frozenset(name.strip() for name in names if name.strip())

    def to_env(self) -> dict[str, str]:
        """The `VIDQUEUE_*` variables that give a child process these settings."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                env[PREFIX + f.name.upper()] = str(value)
        return env

    def replace(self, **changes) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def base_url(self) -> str:
        """Where clients reach the API."""
        if self.api_url:
            return self.api_url.rstrip("/")
        return f"http://{self.api_host}:{self.api_port}"


def _seconds_list(text: str) -> tuple[int, ...] | None:
    """`"15,60"` as `(15, 60)`; None unless it is whole seconds, at least one."""
    try:
        seconds = tuple(int(part) for part in text.split(","))
    except ValueError:
        return None
    return seconds if min(seconds) >= 0 else None


def _convert(name: str, raw: str, annotation: str) -> object:
    kind = annotation.replace(" | None", "")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ConfigError(
            f"{PREFIX}{name.upper()} must be a number, not {raw!r}"
        ) from None
    if kind == "Path":
        return Path(raw)
    return raw
