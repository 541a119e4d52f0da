"""Object keys: chosen by the server, never by a filename.

Uploads live at `u/{user}/{jobId}/{safe-name}` and outputs under
`v/{user}/{jobId}/`, so a key names its owner and job, and no filename can
climb out of its folder.
"""

from __future__ import annotations

import re
import unicodedata

from vidqueue import defaults
from vidqueue.records import looks_like_job_id

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

INBOX_PREFIX = "inbox/"
"""Objects that other tools drop here (uplink, rclone, aws s3 cp) become jobs."""


def safe_name(filename: str) -> str:
    """A filename reduced to letters, digits, `.`, `_` and `-`, never empty.

    Folders, `..` and control characters disappear; accents are folded to their
    base letters so that `vidéo.mp4` stays readable as `video.mp4`.
    """
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    folded = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", folded).strip(".-_")
    cleaned = cleaned[: defaults.MAX_FILENAME_CHARS]
    return cleaned or "video"


def upload_key(user_id: str, job_id: str, filename: str) -> str:
    """Where the upload of job `job_id` goes in the upload bucket."""
    return f"u/{safe_name(user_id)}/{job_id}/{safe_name(filename)}"


def output_prefix(user_id: str, job_id: str) -> str:
    """The folder of the output bucket that holds a job's outputs."""
    return f"v/{safe_name(user_id)}/{job_id}/"


def job_id_from_upload_key(key: str) -> str | None:
    """The job id inside an upload key, or None if the key is not one."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "u" or not looks_like_job_id(parts[2]):
        return None
    return parts[2]
