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


def write_y4m_header_claiming(path: Path, width: int, height: int) -> Path:
    """A raw-video header announcing a `width` x `height` picture, and no more."""
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n"
    path.write_bytes(header.encode() + b"\x80" * 64)
    return path


def make_hostile_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files that are no playable video, each with the start of its reason.

    Text, nothing, a cut file, audio only, playlists that point at a local
    video (ffmpeg must not follow them) and a header claiming a huge picture.
    """
    text = folder / "text.mp4"
    text.write_text("just some text, renamed\n" * 50)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    whole = make_clip(folder / "whole.mp4", seconds=2)
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[:4000])
    audio = folder / "audio.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=2",
         "-c:a", "aac", str(audio)],
        check=True,
    )  # fmt: skip
    # A playlist whose segment is a real, readable local video: if ffmpeg
    # followed it, the job would complete with that file's content.
    secret = make_clip(folder / "secret.ts", seconds=1)
    playlist = folder / "playlist.mp4"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\nfile://{secret}\n"
        "#EXT-X-ENDLIST\n"
    )
    concat = folder / "concat.mp4"
    concat.write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    huge = write_y4m_header_claiming(folder / "huge.mp4", 16_000, 9_000)
    return {
        "text": (text, "not a video"),
        "empty": (empty, "not a video"),
        "truncated": (truncated, "not a video"),
        "audio only": (audio, "no video stream"),
        "hls playlist": (playlist, "not a video"),
        "concat list": (concat, "not a video"),
        "huge dimensions": (huge, "video too large"),
    }
