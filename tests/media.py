"""Sample files for tests and benchmarks, generated with ffmpeg's lavfi sources."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def make_clip(
    path: Path,
    seconds: float = 2.0,
    size: str = "640x360",
    rate: int = 25,
    audio: bool = True,
) -> Path:
    """An H.264/AAC MP4 test pattern of the given length, size and frame rate."""
    args = ["ffmpeg", "-v", "error", "-y"]
    args += [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={rate}:duration={seconds}",
    ]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        args += ["-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-shortest", str(path)]
    subprocess.run(args, check=True)
    return path


def ffprobe(path_or_url: str | Path) -> dict:
    """ffprobe's JSON report of a file or URL."""
    answer = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
         str(path_or_url)],
        check=True, capture_output=True,
    )  # fmt: skip
    return json.loads(answer.stdout)


def stream_of(report: dict, kind: str) -> dict | None:
    """The first stream of `kind` ("video" or "audio") in an ffprobe report."""
    return next((s for s in report["streams"] if s["codec_type"] == kind), None)
