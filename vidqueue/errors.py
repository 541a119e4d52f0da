"""The exceptions of vidqueue, all under one root.

The API turns them into HTTP responses in one place (`api.errors`); the worker
turns them into job states in one place (`processor.job`).
"""


class VidqueueError(Exception):
    """Root of every error that vidqueue raises on purpose."""

    code = "error"
    status_code = 500


class ConfigError(VidqueueError):
    """Raised when a setting is missing or malformed."""

    code = "config_error"


class InvalidRequest(VidqueueError):
    """Raised when a caller's request cannot be accepted as it is."""

    code = "invalid_request"
    status_code = 400


class CallbackRefused(InvalidRequest):
    """Raised when a callback URL is not one vidqueue may call (form or address)."""

    code = "callback_refused"


class PayloadTooLarge(InvalidRequest):
    """Raised when an upload is larger than the configured limit."""

    code = "too_large"
    status_code = 413


class UnsupportedMediaType(InvalidRequest):
    """Raised when an upload's content type is not on the allow-list."""

    code = "unsupported_media_type"
    status_code = 415


class JobNotFound(VidqueueError):
    """Raised when a job id is unknown, or belongs to another user."""

    code = "not_found"
    status_code = 404


class Conflict(VidqueueError):
    """Raised when a job is not in a state that allows the request."""

    code = "conflict"
    status_code = 409


class UploadMissing(Conflict):
    """Raised when the client says an upload finished but storage has no object."""

    code = "upload_missing"


class StorageError(VidqueueError):
    """Raised when object storage fails in a way that may pass (5xx, network)."""

    code = "storage_unavailable"
    status_code = 503


class DatabaseUnavailable(VidqueueError):
    """Raised when the durable record's database cannot be reached or answer."""

    code = "database_unavailable"
    status_code = 503


class RecordRejected(VidqueueError):
    """Raised when the database refuses a job record's values (not an outage)."""

    code = "record_rejected"


class MigrationFailed(VidqueueError):
    """Raised when a migration's SQL fails; that migration is rolled back."""

    code = "migration_failed"


class BadInput(VidqueueError):
    """Raised when an uploaded file cannot be processed; retrying will not help.

    Its message is the job's `failedReason`, so it must read well to a person.
    """

    code = "bad_input"
    status_code = 422


class TransientError(VidqueueError):
    """Raised when processing failed for a reason that a retry may cure."""

    code = "transient"
    status_code = 503


class JobCancelled(VidqueueError):
    """Raised inside a worker when its job was cancelled while it ran."""

    code = "cancelled"
    status_code = 409


class Unauthorized(VidqueueError):
    """Raised when a request carries no credentials, or credentials that fail."""

    code = "unauthorized"
    status_code = 401

    def __init__(self, detail: str, challenge: str = 'Bearer realm="vidqueue"'):
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": challenge}


class RateLimited(VidqueueError):
    """Raised when a user starts more uploads than the limits allow."""

    code = "rate_limited"
    status_code = 429

    def __init__(self, detail: str, retry_after_s: int):
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after_s))}


class AuthUnavailable(VidqueueError):
    """Raised when the keys that verify tokens cannot be fetched right now."""

    code = "auth_unavailable"
    status_code = 503
