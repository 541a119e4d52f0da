"""ffmpeg commands for the encoding profiles, and running them with progress."""

from __future__ import annotations

import collections
import logging
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import ffmpeg

from processor.probe import MediaInfo, protocols_for
from vidqueue.errors import BadInput, TransientError

logger = logging.getLogger("vidqueue.transcode")

DEFAULT_FPS = 30
DEFAULT_CRF = 23
DEFAULT_PRESET = "fast"


def mp4_command(
    source: str, info: MediaInfo, output: Path, threads: int = 0
) -> list[str]:
    """The default profile: H.264 at 30 fps, CRF 23, preset fast, AAC, fast start.

    The input format is forced to what the probe found and only the source's
    own protocols are allowed, so a crafted file cannot make ffmpeg open others.
    Odd sizes are rounded down to even ones, which 4:2:0 H.264 requires.
    """
    source_input = ffmpeg.input(
        source, f=info.demuxer, protocol_whitelist=protocols_for(source)
    )
    video = source_input.video.filter("fps", fps=DEFAULT_FPS).filter(
        "scale", "trunc(iw/2)*2", "trunc(ih/2)*2"
    )
    streams = [video]
    audio_args = {}
    if info.has_audio:
        streams.append(source_input.audio)
        audio_args = {"acodec": "aac", "b:a": "128k"}
    output_spec = ffmpeg.output(
        *streams,
        str(output),
        f="mp4",
        vcodec="libx264",
        preset=DEFAULT_PRESET,
        crf=DEFAULT_CRF,
        pix_fmt="yuv420p",
        movflags="+faststart",
        threads=threads,
        **audio_args,
    )
    output_spec = output_spec.global_args(
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
        "-progress", "pipe:1",
    ).overwrite_output()  # fmt: skip
    return output_spec.compile()


def run_ffmpeg(
    args: list[str],
    duration_s: float,
    on_progress: Callable[[float], None],
    timeout_s: float | None = None,
) -> None:
    """Run ffmpeg, reporting the fraction done (0.0-1.0) from its `-progress` lines.

    Raises `BadInput` when ffmpeg refuses the file, and `TransientError` when it
    could not read the source over the network or ran out of time.
    """
    stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
    timer = None
    with subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        reader = threading.Thread(
            target=_drain, args=(process.stderr, stderr_tail), daemon=True
        )
        reader.start()
        if timeout_s:
            timer = threading.Timer(timeout_s, process.kill)
            timer.start()
        try:
            for line in process.stdout:
                seconds = parse_progress_line(line.decode(errors="replace"))
                if seconds is not None and duration_s > 0:
                    on_progress(min(seconds / duration_s, 1.0))
            process.wait()
        finally:
            if timer:
                timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.join(timeout=5)

    if process.returncode == 0:
        return
    if timer and not timer.is_alive() and process.returncode < 0:
        raise TransientError(f"ffmpeg ran out of time after {timeout_s:.0f} s")
    raise _ffmpeg_failure(list(stderr_tail))


def parse_progress_line(line: str) -> float | None:
    """The output position in seconds from one `-progress` line, if it has one."""
    key, _, value = line.strip().partition("=")
    if key not in ("out_time_us", "out_time_ms"):
        return None
    try:
        # Both keys hold microseconds (out_time_ms is misnamed in ffmpeg).
        return max(int(value), 0) / 1_000_000
    except ValueError:
        return None


def _drain(stream, tail: collections.deque[str]) -> None:
    for raw in stream:
        tail.append(raw.decode(errors="replace").rstrip())


def _ffmpeg_failure(stderr_lines: list[str]) -> Exception:
    text = " ".join(stderr_lines)
    if any(
        word in text
        for word in (
            "Connection refused",
            "Server returned 5",
            "timed out",
            "Connection reset",
        )
    ):
        return TransientError("ffmpeg lost the connection to storage")
    return BadInput("transcoding failed: the video data is damaged or unsupported")
