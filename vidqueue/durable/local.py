"""The local system's own Postgres for the durable record (`vidqueue dev`).

Where its cluster lives:

- as an ordinary user, in `<data dir>/postgres`, next to Redis's files;
- as root, in `/var/tmp/vidqueue-root/<key>/postgres`, one cluster per data
  folder (`<key>` is a hash of the data folder's path, which the file
  `<key>/data-dir` names). Postgres refuses to run as root, so it runs as the
  `postgres` user, which must be able to walk down to its folder; a checkout
  under a folder closed to others (`/root` is 0700) is out of its reach, while
  `/var/tmp` is open to all and survives reboots. Clusters whose data folder
  is gone are removed when the next one starts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
from pathlib import Path

from vidqueue import services
from vidqueue.errors import ConfigError
from vidqueue.migrate import migrate
from vidqueue.services import Service

logger = logging.getLogger("vidqueue.dev")

ROOT_CLUSTERS_PARENT = Path("/var/tmp")  # noqa: S108 - owner checked before use


def start_local_database(data_dir: Path) -> Service | None:
    """Postgres with the migrations applied, or None when it is not installed."""
    try:
        services.require_binary("initdb", "postgresql")
    except ConfigError:
        logger.info("Postgres is not installed: jobs are kept in Redis only")
        return None
    postgres = services.start_postgres(cluster_dir(data_dir))
    try:
        migrate(postgres.url)
    except BaseException:
        postgres.stop()
        raise
    return postgres


def cluster_dir(data_dir: Path) -> Path:
    """The folder of the local cluster for the data folder `data_dir`."""
    if os.geteuid() != 0:
        return data_dir / "postgres"
    user = pwd.getpwuid(os.geteuid()).pw_name
    base = ROOT_CLUSTERS_PARENT / f"vidqueue-{user}"
    base.mkdir(exist_ok=True)
    # /var/tmp is writable by everyone: use the folder only if it is ours.
    if base.is_symlink() or base.stat().st_uid != os.geteuid():
        raise ConfigError(f"{base} belongs to another user; remove it")
    base.chmod(0o711)
    _remove_orphans(base)

    folder = base / hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    folder.mkdir(exist_ok=True)
    folder.chmod(0o711)
    (folder / "data-dir").write_text(f"{data_dir}\n")
    return folder / "postgres"


def _remove_orphans(base: Path) -> None:
    for folder in base.iterdir():
        marker = folder / "data-dir"
        if not marker.is_file() or Path(marker.read_text().strip()).exists():
            continue
        if _running(folder / "postgres"):
            continue
        logger.info("removing the Postgres cluster of a data folder that is gone")
        shutil.rmtree(folder, ignore_errors=True)


def _running(cluster: Path) -> bool:
    try:
        pid = int((cluster / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and someone else's
    return True
