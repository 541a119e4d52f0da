"""What a source file holds, asked of ffprobe, and whether vidqueue accepts it."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from vidqueue import defaults
from vidqueue.errors import BadInput, TransientError

logger = logging.getLogger("vidqueue.probe")

PROBE_TIMEOUT_SECONDS = 60

REMOTE_PROTOCOLS = "http,https,tcp,tls,crypto"
LOCAL_PROTOCOLS = "file"

FORMAT_WHITELIST = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpeg,mpegts,mpegvideo,flv,ogg,"
    "asf,m4v,mxf,nut,ivf,h264,hevc,yuv4mpegpipe,dv,wav,mp3,aac,flac"
)
"""Container formats accepted as input. Playlists (hls, concat) and image
sequences are absent on purpose: they make ffmpeg open other files or URLs."""

READ_FAILURES = (
    "Server returned 5", "Connection reset", "Connection refused", "timed out",
    "Network is unreachable", "Input/output error", "Broken pipe",
)  # fmt: skip
"""What ffprobe and ffmpeg log when reading the source failed on the network."""
RECOVERY_SIGNS = ("HTTP error 5", "Will reconnect", "Stream ends prematurely")
"""What they log (as warnings) when storage failed and they reconnected."""

_URL = re.compile(r"\w+://\S+")


@dataclass(frozen=True)
class MediaInfo:
    """The facts of a source that the pipeline needs."""

    format_name: str
    duration: float
    width: int
    height: int
    video_codec: str
    has_audio: bool

    @property
    def demuxer(self) -> str:
        """The input format to force on ffmpeg, so it cannot guess another."""
        return self.format_name.split(",")[0]


def protocols_for(source: str) -> str:
    """The only protocols ffprobe and ffmpeg may open for `source`.

    A source from storage is a presigned HTTP(S) URL and may open nothing local;
    a local file (tests, benchmarks) may open nothing remote.
    """
    if source.startswith(("http://", "https://")):
        return REMOTE_PROTOCOLS
    return LOCAL_PROTOCOLS


def input_options(source: str) -> dict[str, str]:
    """The options that ffprobe and ffmpeg open `source` with.

    Only the protocols the source needs; over HTTP(S), reconnects too: storage
    may drop a connection or answer 5xx in the middle of a transfer, and
    ffmpeg then takes the cut for the end of the file, and writes a shortened
    video with an exit code of 0, unless it reconnects and reads on from
    where it was.
    """
    options = {"protocol_whitelist": protocols_for(source)}
    if protocols_for(source) == REMOTE_PROTOCOLS:
        options.update(
            reconnect="1",
            reconnect_on_network_error="1",
            reconnect_on_http_error="5xx",
            reconnect_delay_max=str(defaults.SOURCE_RECONNECT_MAX_SECONDS),
        )
    return options


def network_trouble(log: str) -> bool:
    """True when ffprobe's or ffmpeg's log shows storage failing at some point.

    Storage that answers 5xx or drops connections is no fault of the file,
    so a run that failed with these signs in its log is worth another try.
    The log must be at `warning` level, where the reconnects show.
    """
    return any(sign in log for sign in READ_FAILURES + RECOVERY_SIGNS)


def source_read_failed(lines: Iterable[str]) -> bool:
    """True when a network error reached the reader: no reconnect cured it.

    ffmpeg takes such an error for the end of its input, so even a run that
    exits with 0 has then made a shortened output (or none).
    """
    return any(
        any(sign in line for sign in READ_FAILURES)
        and not any(sign in line for sign in RECOVERY_SIGNS)
        for line in lines
    )


def probe_command(source: str) -> list[str]:
    """The ffprobe invocation for `source`, restricted to safe protocols and formats."""
    options = [
        arg for name, value in input_options(source).items()
        for arg in (f"-{name}", value)
    ]  # fmt: skip
    return [
        "ffprobe", "-v", "warning", "-hide_banner", *options,
        "-format_whitelist", FORMAT_WHITELIST,
        "-show_format", "-show_streams", "-of", "json", source,
    ]  # fmt: skip


def probe(source: str, max_duration_s: float) -> MediaInfo:
    """Probe `source` and check it against the limits.

    Raises `BadInput` with a reason a person can read when the file is not a
    playable video within the limits, and `TransientError` when ffprobe could
    not reach the source.
    """
    try:
        answer = subprocess.run(
            probe_command(source),
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TransientError("probing the source timed out") from None
    log = answer.stderr.decode(errors="replace")
    if answer.returncode != 0:
        raise _probe_failure(log)
    if source_read_failed(log.splitlines()):
        raise TransientError("could not read the source: the connection broke")

    return check_media(json.loads(answer.stdout or b"{}"), max_duration_s)


def check_media(report: dict, max_duration_s: float) -> MediaInfo:
    """Turn ffprobe's JSON report into `MediaInfo`, or refuse it with `BadInput`."""
    streams = report.get("streams", [])
    videos = [
        s for s in streams
        if s.get("codec_type") == "video"
        and not s.get("disposition", {}).get("attached_pic")
    ]  # fmt: skip
    if not streams:
        raise BadInput("not a video: the file holds no audio or video streams")
    if not videos:
        raise BadInput("no video stream: the file holds audio only")

    video = videos[0]
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise BadInput("no video stream: the video track has no picture size")
    if width > defaults.MAX_WIDTH or height > defaults.MAX_HEIGHT:
        raise BadInput(
            f"video too large: {width}x{height} is over the limit of "
            f"{defaults.MAX_WIDTH}x{defaults.MAX_HEIGHT}"
        )

    duration = _duration(report, video)
    if duration <= 0:
        raise BadInput("not a video: the file has no playable duration")
    if duration > max_duration_s:
        raise BadInput(
            f"video too long: {duration:.0f} s is over the limit of "
            f"{max_duration_s:.0f} s"
        )

    return MediaInfo(
        format_name=report.get("format", {}).get("format_name", ""),
        duration=duration,
        width=width,
        height=height,
        video_codec=video.get("codec_name", ""),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )


def _duration(report: dict, video: dict) -> float:
    for value in (report.get("format", {}).get("duration"), video.get("duration")):
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return 0.0


def _probe_failure(stderr: str) -> Exception:
    # ffprobe names its input in errors; the input is a presigned URL.
    message = _URL.sub("input", stderr).strip().splitlines()
    last = message[-1] if message else "unknown error"
    # Storage failing makes any file look broken ("moov atom not found" after
    # a 503 on a seek): with signs of it in the log, try again later.
    if network_trouble(stderr):
        return TransientError(f"could not read the source: {last}")
    if "Picture size" in stderr:
        return BadInput("video too large: the picture size is invalid")
    return BadInput("not a video: the file could not be read as a video")
