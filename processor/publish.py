"""Putting a job's outputs into the output bucket."""

from __future__ import annotations

import logging
import mimetypes
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vidqueue.storage import Storage

logger = logging.getLogger("vidqueue.publish")

PARALLEL_UPLOADS = 4
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
}


def content_type_of(path: Path) -> str:
    """The Content-Type an output file is served with."""
    known = CONTENT_TYPES.get(path.suffix)
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def publish_folder(storage: Storage, folder: Path, prefix: str) -> list[str]:
    """Upload every file below `folder` to `prefix` + its relative path.

    Files go up several at a time. Keys are fixed by the relative paths, so a
    rerun of the same job overwrites its earlier outputs instead of adding to
    them. Returns the keys written.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file())

    def put(path: Path) -> str:
        key = prefix + path.relative_to(folder).as_posix()
        storage.upload_file(path, key, content_type_of(path))
        return key

    with ThreadPoolExecutor(max_workers=PARALLEL_UPLOADS) as pool:
        return list(pool.map(put, files))


def sign_playlists(storage: Storage, folder: Path, prefix: str) -> None:
    """Point every HLS playlist below `folder` at signed URLs, when outputs are
    not public.

    A playlist names its segments and variants by relative paths. Behind a
    public base URL a player resolves them as usual; with presigned URLs the
    signature sits in the query string, which relative paths drop, so every
    reference is replaced by a presigned GET of its own.
    """
    if storage.settings.public_base_url:
        return
    for playlist in folder.rglob("*.m3u8"):
        base = playlist.parent.relative_to(folder)
        lines = []
        for line in playlist.read_text().splitlines():
            if line and not line.startswith("#") and "://" not in line:
                key = prefix + (base / line).as_posix()
                line = storage.output_url(key)
            lines.append(line)
        playlist.write_text("\n".join(lines) + "\n")
