"""What a source file holds, asked of ffprobe, and whether vidqueue accepts it."""

from __future__ import annotations

import json
import logging
import re
import subprocess
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


def probe_command(source: str) -> list[str]:
    """The ffprobe invocation for `source`, restricted to safe protocols and formats."""
    return [
        "ffprobe", "-v", "error", "-hide_banner",
        "-protocol_whitelist", protocols_for(source),
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
    if answer.returncode != 0:
        raise _probe_failure(answer.stderr.decode(errors="replace"))

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
    if any(word in last for word in ("Connection", "Server returned 5", "timed out")):
        return TransientError(f"could not read the source: {last}")
    if "Picture size" in stderr:
        return BadInput("video too large: the picture size is invalid")
    return BadInput("not a video: the file could not be read as a video")
