"""The worker on real ffmpeg: profiles, progress, hostile files, faults, cancel."""

from __future__ import annotations

import http.server
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from handlers.trigger import Outcome, check_upload
from tests.media import ffprobe, make_clip, make_hostile_files, stream_of
from vidqueue.context import Context
from vidqueue.keys import upload_key
from vidqueue.records import JobRecord, new_job_id

pytestmark = pytest.mark.integration


def submit(ctx: Context, path: Path, profile: str = "default", user: str = "u1") -> str:
    """Store `path` as an upload and announce it; returns the job id."""
    job_id = new_job_id()
    record = JobRecord(
        id=job_id,
        user_id=user,
        source_bucket=ctx.storage.upload_bucket,
        source_key=upload_key(user, job_id, path.name),
        filename=path.name,
        content_type="video/mp4",
        size_bytes=path.stat().st_size,
        profile=profile,
    )
    ctx.records.create(record)
    ctx.storage.client.upload_file(str(path), record.source_bucket, record.source_key)
    assert check_upload(ctx, job_id) is Outcome.ENQUEUED
    return job_id


def output_keys(ctx: Context, job_id: str) -> list[str]:
    listing = ctx.storage.client.list_objects_v2(
        Bucket=ctx.storage.output_bucket, Prefix=f"v/u1/{job_id}/"
    )
    return sorted(item["Key"] for item in listing.get("Contents", []))


def fetch(url: str, path: Path) -> Path:
    path.write_bytes(httpx.get(url).content)
    return path


def test_default_profile_makes_mp4_and_poster(ctx, clip, run_worker, tmp_path):
    job_id = submit(ctx, clip)

    run_worker()

    record = ctx.records.get(job_id)
    assert record.state == "completed", record.failed_reason
    assert record.attempts == 1
    poster = fetch(record.result["poster_url"], tmp_path / "poster.jpg")
    picture = stream_of(ffprobe(poster), "video")
    assert picture["codec_name"] == "mjpeg"
    assert (picture["width"], picture["height"]) == (640, 360)
    assert output_keys(ctx, job_id) == [
        f"v/u1/{job_id}/poster.jpg",
        f"v/u1/{job_id}/video.mp4",
    ]


def test_hls_ladder_never_upscales(ctx, media_dir, run_worker, tmp_path):
    source = make_clip(media_dir / "ladder.mp4", seconds=2, size="854x480")
    job_id = submit(ctx, source, profile="hls")

    run_worker()

    record = ctx.records.get(job_id)
    assert record.state == "completed", record.failed_reason
    names = [r["name"] for r in record.result["renditions"]]
    assert names == ["480p", "360p"]
    keys = output_keys(ctx, job_id)
    prefix = f"v/u1/{job_id}/hls/"
    assert prefix + "master.m3u8" in keys
    assert prefix + "480p/index.m3u8" in keys
    assert any(k.startswith(prefix + "360p/segment_") for k in keys)
    master = (
        ctx.storage.client.get_object(
            Bucket=ctx.storage.output_bucket, Key=prefix + "master.m3u8"
        )["Body"]
        .read()
        .decode()
    )
    assert "RESOLUTION=854x480" in master
    assert "RESOLUTION=640x360" in master
    # Each rendition plays on its own.
    segment = next(k for k in keys if k.startswith(prefix + "360p/segment_"))
    body = ctx.storage.client.get_object(Bucket=ctx.storage.output_bucket, Key=segment)
    (tmp_path / "seg.ts").write_bytes(body["Body"].read())
    assert stream_of(ffprobe(tmp_path / "seg.ts"), "video")["height"] == 360
    # Outputs are private here, so every playlist line is a presigned URL (a
    # relative path would lose the signature; moto does not check signatures,
    # so read them instead) and a player can follow the master playlist.
    references = [x for x in master.splitlines() if x and not x.startswith("#")]
    assert references
    assert all("X-Amz-Signature=" in line for line in references)
    played = ffprobe(record.result["hls_url"])
    heights = {s["height"] for s in played["streams"] if s["codec_type"] == "video"}
    assert heights == {480, 360}


def test_rerun_overwrites_outputs_instead_of_adding(ctx, clip, run_worker):
    job_id = submit(ctx, clip)
    run_worker()
    first = output_keys(ctx, job_id)

    ctx.records.transition(job_id, "waiting", ("completed",))
    from vidqueue.queue import requeue_video

    assert requeue_video(ctx.queue, job_id, ctx.settings)
    run_worker()

    assert ctx.records.get(job_id).state == "completed"
    assert output_keys(ctx, job_id) == first


def test_progress_rises_through_stages(ctx, media_dir, run_worker):
    source = make_clip(media_dir / "long.mp4", seconds=12, size="1280x720")
    job_id = submit(ctx, source)
    seen: list[tuple[int, str]] = []
    pubsub = ctx.redis.pubsub()
    pubsub.subscribe(f"vidqueue:events:{job_id}")

    def listen():
        for message in pubsub.listen():
            if message["type"] != "message":
                continue
            record = ctx.records.get(job_id)
            seen.append((record.progress, record.stage))
            if record.state == "completed":
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    run_worker()
    listener.join(timeout=10)
    pubsub.close()

    progress = [p for p, _ in seen]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    stages = [s for _, s in seen]
    for stage in ("probing", "transcoding", "poster", "publishing"):
        assert stage in stages
    assert len([p for p, s in seen if s == "transcoding" and 5 < p < 90]) >= 2


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Each bad file, with the start of the reason it must fail with."""
    return make_hostile_files(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize(
    "name",
    ["text", "empty", "truncated", "audio only", "hls playlist", "concat list",
     "huge dimensions"],
)  # fmt: skip
def test_hostile_file_fails_with_its_reason_then_a_good_one_completes(
    ctx, clip, run_worker, hostile_files, name
):
    path, reason = hostile_files[name]
    bad = submit(ctx, path)
    good = submit(ctx, clip)

    run_worker()

    failed = ctx.records.get(bad)
    assert failed.state == "failed"
    assert failed.failed_reason.startswith(reason), failed.failed_reason
    assert failed.attempts == 1  # bad input is not retried
    assert output_keys(ctx, bad) == []
    assert ctx.records.get(good).state == "completed"


def test_too_long_video_is_refused_before_transcoding(
    ctx, clip, run_worker, monkeypatch
):
    monkeypatch.setenv("VIDQUEUE_MAX_DURATION_SECONDS", "1")
    from processor import job

    job._context.cache_clear()
    job_id = submit(ctx, clip)

    run_worker()

    record = ctx.records.get(job_id)
    assert record.failed_reason.startswith("video too long")
    assert output_keys(ctx, job_id) == []


def test_object_replaced_by_another_size_is_refused(ctx, clip, run_worker):
    job_id = submit(ctx, clip)
    record = ctx.records.get(job_id)
    ctx.storage.client.put_object(
        Bucket=record.source_bucket, Key=record.source_key, Body=b"x" * 10
    )

    run_worker()

    assert ctx.records.get(job_id).failed_reason.startswith("upload size mismatch")


class _StallingSource(http.server.BaseHTTPRequestHandler):
    """Serves the first bytes of a file, then stops sending without closing."""

    body = b""
    release = threading.Event()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 3])
        self.wfile.flush()
        self.release.wait(30)

    def log_message(self, *args):
        pass


def test_watchdog_kills_a_stalled_ffmpeg(media_dir, tmp_path):
    from processor.probe import MediaInfo
    from processor.transcode import Watch, mp4_command, run_ffmpeg
    from vidqueue.errors import TransientError
    from vidqueue.profiles import BUILTIN_PROFILES

    source = media_dir / "stall.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=320x240:rate=25:duration=6", "-c:v", "libx264",
         "-preset", "ultrafast", str(source)],
        check=True,
    )  # fmt: skip
    _StallingSource.body = source.read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingSource)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stall.ts"
    info = MediaInfo("mpegts", 6.0, 320, 240, "h264", has_audio=False)
    command = mp4_command(url, info, tmp_path / "out.mp4", BUILTIN_PROFILES["mp4"])

    try:
        with pytest.raises(TransientError, match="stalled"):
            run_ffmpeg(command, 6.0, lambda _: None, Watch(stall_s=2, limit_s=60))
    finally:
        _StallingSource.release.set()
        server.shutdown()
        server.server_close()


def test_cancel_stops_ffmpeg_quickly_and_removes_outputs(ctx, media_dir):
    from processor.probe import MediaInfo
    from processor.transcode import Watch, mp4_command, run_ffmpeg
    from vidqueue.errors import JobCancelled
    from vidqueue.profiles import BUILTIN_PROFILES

    source = media_dir / "slow.mp4"
    make_clip(source, seconds=20, size="1280x720")
    info = MediaInfo("mov", 20.0, 1280, 720, "h264", has_audio=True)
    command = mp4_command(
        str(source), info, media_dir / "slow-out.mp4", BUILTIN_PROFILES["mp4"]
    )
    cancel = threading.Event()
    positions: list[float] = []

    def on_progress(done: float) -> None:
        positions.append(done)
        if len(positions) == 2:
            cancel.set()

    with pytest.raises(JobCancelled):
        run_ffmpeg(command, 20.0, on_progress, Watch(60, 600, cancel.is_set))

    assert positions[-1] < 0.9  # stopped long before the end
    alive = subprocess.run(["pgrep", "-f", "slow-out.mp4"], capture_output=True)
    assert alive.stdout == b""


def test_transient_storage_fault_is_retried(ctx, clip, run_worker, monkeypatch):
    from vidqueue.errors import StorageError
    from vidqueue.storage import Storage

    monkeypatch.setattr("vidqueue.defaults.RETRY_INTERVALS_SECONDS", (0, 0, 0))
    job_id = submit(ctx, clip)
    real_upload = Storage.upload_file
    calls = {"n": 0}

    def flaky_upload(self, path, key, content_type):
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageError("storage upload on bucket x failed: InternalError (500)")
        return real_upload(self, path, key, content_type)

    monkeypatch.setattr(Storage, "upload_file", flaky_upload)

    run_worker()  # the retry is due at once, so one burst runs both attempts

    record = ctx.records.get(job_id)
    assert record.state == "completed"
    assert record.attempts == 2
