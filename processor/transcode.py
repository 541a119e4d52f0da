"""ffmpeg commands for the encoding profiles, and running them under supervision.

Every command reads the source with the input format the probe found and only
the protocols the source needs, so a crafted file cannot make ffmpeg open
other files or URLs. `run_ffmpeg` reports progress from ffmpeg's `-progress`
output and kills ffmpeg when the job is cancelled, when its output position
stops advancing (a stalled source), or when it runs past its hard limit.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ffmpeg

from processor.probe import (
    MediaInfo,
    input_options,
    network_trouble,
    source_read_failed,
)
from vidqueue.errors import BadInput, JobCancelled, TransientError
from vidqueue.profiles import Profile, Rendition

logger = logging.getLogger("vidqueue.transcode")

GOP_SECONDS = 2
HLS_SEGMENT_SECONDS = 6
POSTER_MAX_HEIGHT = 720
WATCH_INTERVAL_SECONDS = 0.25
GLOBAL_ARGS = (
    "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
    "-progress", "pipe:1", "-stats_period", "0.5",
)  # fmt: skip


def _source(source: str, info: MediaInfo):
    return ffmpeg.input(source, f=info.demuxer, **input_options(source))


def _compile(output_spec) -> list[str]:
    return output_spec.global_args(*GLOBAL_ARGS).overwrite_output().compile()


def _scale_filter(height: int | None) -> tuple[str, str]:
    # 4:2:0 H.264 needs even sizes; never scale up.
    if height is None:
        return ("trunc(iw/2)*2", "trunc(ih/2)*2")
    return ("-2", f"min({height},trunc(ih/2)*2)")


def mp4_command(
    source: str, info: MediaInfo, output: Path, profile: Profile, threads: int = 0
) -> list[str]:
    """The MP4 of a profile: H.264 at the profile's fps and CRF, AAC, fast start."""
    source_input = _source(source, info)
    video = source_input.video.filter("fps", fps=profile.fps).filter(
        "scale", *_scale_filter(profile.max_height)
    )
    streams = [video]
    audio_args = {}
    if info.has_audio:
        streams.append(source_input.audio)
        audio_args = {"acodec": "aac", "b:a": "128k"}
    return _compile(
        ffmpeg.output(
            *streams,
            str(output),
            f="mp4",
            vcodec="libx264",
            preset=profile.preset,
            crf=profile.crf,
            pix_fmt="yuv420p",
            movflags="+faststart",
            threads=threads,
            **audio_args,
        )
    )


def hls_command(
    source: str,
    info: MediaInfo,
    folder: Path,
    profile: Profile,
    ladder: list[Rendition],
    threads: int = 0,
) -> list[str]:
    """Every rendition of the ladder in one ffmpeg run, with a master playlist.

    One run decodes the source once for all renditions. Keyframes every
    `GOP_SECONDS` line up across renditions so players can switch between them.
    Writes `folder/master.m3u8` and `folder/<rendition>/index.m3u8` + segments.
    """
    source_input = _source(source, info)
    split = source_input.video.filter("fps", fps=profile.fps).filter_multi_output(
        "split", len(ladder)
    )
    streams = []
    options: dict[str, object] = {}
    for index, rung in enumerate(ladder):
        streams.append(split.stream(index).filter("scale", -2, rung.height))
        options[f"b:v:{index}"] = f"{rung.video_kbps}k"
        options[f"maxrate:v:{index}"] = f"{int(rung.video_kbps * 1.07)}k"
        options[f"bufsize:v:{index}"] = f"{int(rung.video_kbps * 1.5)}k"
        if info.has_audio:
            streams.append(source_input.audio)
            options[f"b:a:{index}"] = f"{rung.audio_kbps}k"
    if info.has_audio:
        options["acodec"] = "aac"
        stream_map = " ".join(
            f"v:{i},a:{i},name:{r.name}" for i, r in enumerate(ladder)
        )
    else:
        stream_map = " ".join(f"v:{i},name:{r.name}" for i, r in enumerate(ladder))
    gop = profile.fps * GOP_SECONDS
    return _compile(
        ffmpeg.output(
            *streams,
            str(folder / "%v" / "index.m3u8"),
            f="hls",
            vcodec="libx264",
            preset=profile.preset,
            pix_fmt="yuv420p",
            g=gop,
            keyint_min=gop,
            sc_threshold=0,
            threads=threads,
            hls_time=HLS_SEGMENT_SECONDS,
            hls_playlist_type="vod",
            hls_segment_filename=str(folder / "%v" / "segment_%04d.ts"),
            master_pl_name="master.m3u8",
            var_stream_map=stream_map,
            **options,
        )
    )


def poster_command(source: str, info: MediaInfo, output: Path) -> list[str]:
    """A JPEG of one frame, a second in (or halfway through a shorter video)."""
    moment = min(1.0, info.duration / 2)
    source_input = ffmpeg.input(
        source, f=info.demuxer, ss=moment, **input_options(source)
    )
    picture = source_input.video.filter("scale", "-2", f"min({POSTER_MAX_HEIGHT},ih)")
    return _compile(
        ffmpeg.output(picture, str(output), vframes=1, f="image2", **{"q:v": 3})
    )


class Watch:
    """Why and when to stop an ffmpeg run early.

    `stall_s`: kill when the output position has not advanced for this long.
    `limit_s`: kill when the run as a whole takes longer than this.
    `cancelled`: a check, called twice a second, that says the job was cancelled.
    """

    def __init__(
        self,
        stall_s: float,
        limit_s: float,
        cancelled: Callable[[], bool] = lambda: False,
    ):
        self.stall_s = stall_s
        self.limit_s = limit_s
        self.cancelled = cancelled


def run_ffmpeg(
    args: list[str],
    duration_s: float,
    on_progress: Callable[[float], None],
    watch: Watch,
) -> None:
    """Run ffmpeg, reporting the fraction done (0.0-1.0) from its `-progress` lines.

    Raises `JobCancelled` when the job was cancelled, `TransientError` when
    ffmpeg stalled, ran out of time or lost the network, and `BadInput` when
    it refused the file.
    """
    log = _Log()
    state = _RunState()
    with subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,
    ) as process:
        threads = [
            threading.Thread(target=log.drain, args=(process.stderr,)),
            threading.Thread(target=_supervise, args=(process, watch, state)),
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        try:
            for line in process.stdout:
                seconds = parse_progress_line(line.decode(errors="replace"))
                if seconds is None or seconds <= state.position:
                    continue
                state.advance(seconds)
                if duration_s > 0:
                    on_progress(min(seconds / duration_s, 1.0))
            process.wait()
        finally:
            state.finished.set()
            if process.poll() is None:
                process.kill()
                process.wait()
        for thread in threads:
            thread.join(timeout=5)

    if state.stop_reason == "cancelled":
        raise JobCancelled("the job was cancelled")
    if state.stop_reason == "stalled":
        raise TransientError(f"ffmpeg stalled: no progress for {watch.stall_s:.0f} s")
    if state.stop_reason == "limit":
        raise TransientError(f"ffmpeg ran past the limit of {watch.limit_s:.0f} s")
    if process.returncode != 0:
        raise _ffmpeg_failure(log)
    # ffmpeg takes a read error for the end of its input and exits with 0,
    # having written a shortened output, or none: never publish that.
    if log.read_failed or (log.nothing_encoded and log.trouble):
        raise TransientError("ffmpeg lost the connection to storage")


class _RunState:
    def __init__(self):
        self.position = 0.0
        self.last_advance = time.monotonic()
        self.stop_reason = ""
        self.finished = threading.Event()

    def advance(self, seconds: float) -> None:
        self.position = seconds
        self.last_advance = time.monotonic()


def _supervise(process: subprocess.Popen, watch: Watch, state: _RunState) -> None:
    started = time.monotonic()
    next_cancel_check = started
    while not state.finished.wait(WATCH_INTERVAL_SECONDS):
        now = time.monotonic()
        reason = ""
        if now - state.last_advance > watch.stall_s:
            reason = "stalled"
        elif now - started > watch.limit_s:
            reason = "limit"
        elif now >= next_cancel_check:
            next_cancel_check = now + 0.5
            if watch.cancelled():
                reason = "cancelled"
        if reason:
            state.stop_reason = reason
            process.kill()
            return


def _die_with_parent() -> None:
    # If the worker dies (SIGKILL, out of memory), ffmpeg must not run on.
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


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


class _Log:
    """What ffmpeg's log (stderr, warning level) said about its source."""

    def __init__(self):
        self.trouble = False
        """Storage failed at some point (perhaps cured by a reconnect)."""
        self.read_failed = False
        """A network error reached the reader: the input ended early."""
        self.nothing_encoded = False

    def drain(self, stream) -> None:
        """Read the log to its end, noting the signs of trouble."""
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            self.trouble = self.trouble or network_trouble(line)
            self.read_failed = self.read_failed or source_read_failed([line])
            self.nothing_encoded = self.nothing_encoded or (
                "nothing was encoded" in line
            )


def _ffmpeg_failure(log: _Log) -> Exception:
    if log.trouble:
        return TransientError("ffmpeg lost the connection to storage")
    return BadInput("transcoding failed: the video data is damaged or unsupported")
