"""vidqueue's worker against bare ffmpeg on the same files, side by side.

1. One clip (60 s of 720p by default): from "upload finished" (the trigger
   accepts the object) to `completed`, against the bare ffmpeg command with
   the same settings on a local copy of the file.
2. N clips (8 by default) through the configured workers, against N bare
   ffmpeg runs at the same concurrency (ffmpeg's threads split the same way).

It starts its own redis-server and S3 server (moto's) and real
`vidqueue worker` processes. Run from the repository root:

    .venv/bin/python scripts/bench/pipeline.py [--seconds 60] [--clips 8]
        [--concurrency 1] [--repeat 2] [--source-read stream|download|both]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from handlers.trigger import check_upload  # noqa: E402
from processor.probe import probe  # noqa: E402
from processor.transcode import mp4_command  # noqa: E402
from tests.media import make_clip  # noqa: E402
from vidqueue import services  # noqa: E402
from vidqueue.context import Context  # noqa: E402
from vidqueue.keys import upload_key  # noqa: E402
from vidqueue.profiles import BUILTIN_PROFILES  # noqa: E402
from vidqueue.records import JobRecord, new_job_id  # noqa: E402
from vidqueue.settings import Settings  # noqa: E402
from vidqueue.storage import Storage  # noqa: E402


def bare_ffmpeg(path: Path, out: Path, threads: int) -> float:
    """Seconds for the default MP4 command on a local file."""
    info = probe(str(path), float("inf"))
    command = mp4_command(str(path), info, out, BUILTIN_PROFILES["mp4"], threads)
    began = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - began


def bare_batch(clips: list[Path], work: Path, concurrency: int) -> float:
    threads = 0 if concurrency == 1 else max(1, (os.cpu_count() or 1) // concurrency)
    began = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(
            pool.map(
                lambda c: bare_ffmpeg(c, work / f"bare-{c.stem}.mp4", threads), clips
            )
        )
    return time.monotonic() - began


def store(ctx: Context, path: Path) -> JobRecord:
    job_id = new_job_id()
    record = JobRecord(
        id=job_id, user_id="bench",
        source_bucket=ctx.storage.upload_bucket,
        source_key=upload_key("bench", job_id, path.name),
        filename=path.name, content_type="video/mp4",
        size_bytes=path.stat().st_size, profile="mp4",
    )  # fmt: skip
    ctx.records.create(record)
    ctx.storage.client.upload_file(str(path), record.source_bucket, record.source_key)
    return record


def through_vidqueue(ctx: Context, clips: list[Path]) -> float:
    """Seconds from announcing every upload to the last `completed`."""
    records = [store(ctx, clip) for clip in clips]
    began = time.monotonic()
    for record in records:
        check_upload(ctx, record.id)
    pending = {r.id for r in records}
    while pending:
        for job_id in list(pending):
            state = ctx.records.state_of(job_id)
            if state == "completed":
                pending.discard(job_id)
            elif state in ("failed", "cancelled"):
                raise SystemExit(f"job {job_id} ended {state}")
        time.sleep(0.02)
    return time.monotonic() - began


def start_workers(settings: Settings, concurrency: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, **settings.replace(concurrency=concurrency).to_env()}
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "vidqueue.cli", "worker"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    ctx = Context(settings)
    from rq import Worker

    while Worker.count(queue=ctx.queue) < concurrency:
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit(f"workers did not start; see {log}")
        time.sleep(0.1)
    return worker


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="vidqueue-bench-"))
    redis = services.start_redis(work / "redis", aof=False)
    s3 = services.start_s3(work / "s3")
    try:
        size = args.size
        print(
            f"making a {args.seconds:.0f} s clip and {args.clips} of "
            f"{args.batch_seconds:.0f} s at {size}...",
            flush=True,
        )
        single = make_clip(work / "single.mp4", seconds=args.seconds, size=size)
        batch = [
            make_clip(work / f"clip{i}.mp4", seconds=args.batch_seconds, size=size)
            for i in range(args.clips)
        ]
        modes = (
            ["stream", "download"] if args.source_read == "both" else [args.source_read]
        )
        rows = []
        for mode in modes:
            settings = Settings(
                redis_url=redis.url, s3_endpoint=s3.url,
                s3_access_key="bench", s3_secret_key="bench",
                source_read=mode, data_dir=work,
            )  # fmt: skip
            Storage(settings).ensure_buckets()
            worker = start_workers(
                settings, args.concurrency, work / f"worker-{mode}.log"
            )
            # Bare and vidqueue runs alternate, so that load from elsewhere on
            # the machine falls on both alike; the best of each is kept.
            ctx = Context(settings)
            ones, bare_ones, manys, bare_manys = [], [], [], []
            try:
                for _ in range(args.repeat):
                    bare_ones.append(bare_ffmpeg(single, work / "bare.mp4", 0))
                    ones.append(through_vidqueue(ctx, [single]))
                    bare_manys.append(bare_batch(batch, work, args.concurrency))
                    manys.append(through_vidqueue(ctx, batch))
            finally:
                stop(worker)
            rows.append((mode, min(bare_ones), min(ones), min(bare_manys), min(manys)))

        print()
        print(f"{'case':44} {'bare ffmpeg':>12} {'vidqueue':>10} {'ratio':>7}")
        for mode, bare_one, one, bare_many, many in rows:
            label = f"1 clip, {args.seconds:.0f} s {size} (source: {mode})"
            print(f"{label:44} {bare_one:11.2f}s {one:9.2f}s {one / bare_one:7.3f}")
            label = (
                f"{args.clips} clips of {args.batch_seconds:.0f} s, "
                f"concurrency {args.concurrency} ({mode})"
            )
            print(f"{label:44} {bare_many:11.2f}s {many:9.2f}s {many / bare_many:7.3f}")
        print("\nratio = vidqueue time / bare ffmpeg time (target: at most 1.10)")
    finally:
        redis.stop()
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch-seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--source-read", choices=("stream", "download", "both"), default="both"
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
