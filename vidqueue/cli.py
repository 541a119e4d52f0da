"""The `vidqueue` command: runs each role, the local system, and talks to the API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vidqueue import __version__, defaults
from vidqueue.errors import VidqueueError
from vidqueue.settings import Settings

if TYPE_CHECKING:
    from vidqueue.client import Client

logger = logging.getLogger("vidqueue.cli")


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the HTTP API."""
    from api.app import create_app
    from api.server import serve
    from vidqueue.context import Context

    serve(create_app(Context(settings)), settings)
    return 0


def cmd_poller(settings: Settings, args: argparse.Namespace) -> int:
    """Find uploads that arrived without a complete call."""
    from handlers.poller import run_poller
    from vidqueue.context import Context
    from vidqueue.durable import start_background
    from vidqueue.webhooks import start_dispatcher

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    ctx = Context(settings)
    # With a database: the outbox pump and the reconcile run beside the poller;
    # with webhooks: their dispatcher.
    background = start_background(ctx, stop) + start_dispatcher(ctx, stop)
    run_poller(ctx, stop)
    for thread in background:
        thread.join(timeout=10)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run the jobs of one queue (videos), `VIDQUEUE_CONCURRENCY` at a time."""
    from rq import Queue
    from rq.worker_pool import WorkerPool

    from vidqueue.context import Context
    from vidqueue.queue import VideoWorker

    ctx = Context(settings)
    ctx.redis.ping()
    if args.queue == defaults.QUEUE_NAME:
        from processor.job import warm_up

        warm_up()
    queue = Queue(args.queue, connection=ctx.redis)
    level = settings.log_level.upper()
    if settings.concurrency > 1:
        pool = WorkerPool(
            [queue],
            connection=ctx.redis,
            num_workers=settings.concurrency,
            worker_class=VideoWorker,
        )
        pool.start(logging_level=level)
        return 0
    name = f"{socket.gethostname()}.{os.getpid()}"
    worker = VideoWorker([queue], connection=ctx.redis, name=name)
    worker.work(with_scheduler=True, logging_level=level)
    return 0


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    """Run the whole system locally."""
    from vidqueue.dev import run_dev

    return run_dev(settings)


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    """Upload a file through the public API; with --wait, follow it to the end."""
    path = Path(args.file)
    if not path.is_file():
        print(f"vidqueue: no such file: {path}", file=sys.stderr)
        return 2
    client = _client(settings, args)
    size = path.stat().st_size
    upload_bar = Bar("upload", size, unit="bytes")
    status = client.upload(path, on_bytes=upload_bar.advance)
    upload_bar.done()
    print(f"job {status['jobId']}: {status['state']}", file=sys.stderr)
    if not args.wait:
        _print_json(status)
        return 0

    process_bar = Bar("process", 100, unit="%")
    status = client.wait(
        status["jobId"],
        on_status=lambda s: process_bar.set(s["progress"], s.get("stage")),
    )
    process_bar.done()
    _print_json(status)
    return 0 if status["state"] == "completed" else 1


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """Print a job's status."""
    _print_json(_client(settings, args).status(args.job))
    return 0


def cmd_queue_info(settings: Settings, args: argparse.Namespace) -> int:
    """Print the queue's figures."""
    _print_json(_client(settings, args).queue_info())
    return 0


def cmd_cancel(settings: Settings, args: argparse.Namespace) -> int:
    """Cancel a job: it leaves the queue, or its ffmpeg stops; outputs go."""
    _print_json(_client(settings, args).cancel(args.job))
    return 0


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    """Put a failed or cancelled job back on the queue."""
    _print_json(_client(settings, args).retry(args.job))
    return 0


def _client(settings: Settings, args: argparse.Namespace) -> Client:

    from vidqueue.client import Client

    token = getattr(args, "token", None) or settings.api_token
    return Client(getattr(args, "api", None) or settings.base_url, token=token)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Apply the database migrations to VIDQUEUE_DATABASE_URL."""
    from vidqueue.migrate import MIGRATIONS_DIR, migrate

    if not settings.database_url:
        print("vidqueue: set VIDQUEUE_DATABASE_URL to migrate", file=sys.stderr)
        return 2
    applied = migrate(settings.database_url, Path(args.dir or MIGRATIONS_DIR))
    print(f"applied {len(applied)} migrations", *applied, sep="\n  ")
    return 0


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild in Redis the unfinished jobs it lost, from the database."""
    from vidqueue.context import Context
    from vidqueue.durable.reconcile import reconcile

    restored = reconcile(Context(settings))
    print(f"rebuilt {len(restored)} jobs", *restored, sep="\n  ")
    return 0


def cmd_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    """List a job's webhook attempts; with --redeliver, send its webhook again."""
    from vidqueue.context import Context
    from vidqueue.webhooks.delivery import attempts_of
    from vidqueue.webhooks.dispatch import redeliver

    # Straight to Redis, like `reconcile`: the delivery log is for operators,
    # who run this where the services run, not for the job's owner.
    ctx = Context(settings)
    if args.redeliver:
        _print_json({"jobId": args.job, "delivery": redeliver(ctx, args.job)})
        return 0
    _print_json({"jobId": args.job, "attempts": attempts_of(ctx.redis, args.job)})
    return 0


class Bar:
    """A one-line progress bar on stderr."""

    WIDTH = 30

    def __init__(self, label: str, total: int, unit: str):
        self.label, self.total, self.unit = label, max(total, 1), unit
        self.value = 0
        self.started = time.monotonic()
        self.note = ""

    def advance(self, amount: int) -> None:
        """Add `amount` to the bar."""
        self.set(self.value + amount)

    def set(self, value: int, note: str | None = None) -> None:
        """Show `value` out of the total, with an optional note."""
        self.value = min(value, self.total)
        self.note = note or ""
        filled = int(self.WIDTH * self.value / self.total)
        percent = 100 * self.value / self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"\r{self.label:8} [{bar}] {percent:5.1f}%"
        if self.unit == "bytes":
            elapsed = max(time.monotonic() - self.started, 1e-6)
            line += f"  {self.value / elapsed / 1e6:6.1f} MB/s"
        if self.note:
            line += f"  {self.note}"
        sys.stderr.write(line.ljust(72))
        sys.stderr.flush()

    def done(self) -> None:
        """End the bar's line."""
        sys.stderr.write("\n")


def _print_json(value: dict) -> None:
    print(json.dumps(value, indent=2))


def build_parser() -> argparse.ArgumentParser:
    """The command line's grammar."""
    parser = argparse.ArgumentParser(prog="vidqueue", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"vidqueue {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    roles = {"api": cmd_api, "poller": cmd_poller, "worker": cmd_worker, "dev": cmd_dev}
    for name, func in roles.items():
        commands.add_parser(name, help=func.__doc__).set_defaults(func=func)
    commands.choices["worker"].add_argument(
        "--queue",
        default=defaults.QUEUE_NAME,
        help=f"the queue to work on (default {defaults.QUEUE_NAME}; "
        f"{defaults.WEBHOOK_QUEUE_NAME} runs webhook deliveries)",
    )

    submit = commands.add_parser("submit", help=cmd_submit.__doc__)
    submit.add_argument("file", help="the video to upload")
    submit.add_argument("--wait", action="store_true", help="follow the job to its end")
    submit.set_defaults(func=cmd_submit)

    status = commands.add_parser("status", help=cmd_status.__doc__)
    status.add_argument("job", help="the job id")
    status.set_defaults(func=cmd_status)

    info = commands.add_parser("queue-info", help=cmd_queue_info.__doc__)
    info.set_defaults(func=cmd_queue_info)

    migrate = commands.add_parser("migrate", help=cmd_migrate.__doc__)
    migrate.add_argument("--dir", help="the folder of NNNN_name.sql files")
    migrate.set_defaults(func=cmd_migrate)
    reconcile = commands.add_parser("reconcile", help=cmd_reconcile.__doc__)
    reconcile.set_defaults(func=cmd_reconcile)
    webhooks = commands.add_parser("webhooks", help=cmd_webhooks.__doc__)
    webhooks.add_argument("job", help="the job id")
    webhooks.add_argument(
        "--redeliver", action="store_true", help="send the job's webhook again"
    )
    webhooks.set_defaults(func=cmd_webhooks)

    cancel = commands.add_parser("cancel", help=cmd_cancel.__doc__)
    cancel.add_argument("job", help="the job id")
    cancel.set_defaults(func=cmd_cancel)
    retry = commands.add_parser("retry", help=cmd_retry.__doc__)
    retry.add_argument("job", help="the job id")
    retry.set_defaults(func=cmd_retry)

    for sub in (submit, status, info, cancel, retry):
        sub.add_argument("--api", help="the API's base URL (default: VIDQUEUE_API_URL)")
        sub.add_argument(
            "--token", help="API key or access token (default: VIDQUEUE_API_TOKEN)"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vidqueue` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except VidqueueError as exc:
        print(f"vidqueue: {exc}", file=sys.stderr)
        return 2

    from vidqueue.logs import configure

    configure(settings)
    try:
        return args.func(settings, args)
    except VidqueueError as exc:
        print(f"vidqueue: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
