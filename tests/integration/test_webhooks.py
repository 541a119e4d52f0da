"""Webhooks, end to end: a finished job is announced, signed, to a local receiver.

The receivers listen on 127.0.0.1, which webhooks refuse by default, so the
tests allow that one host with `VIDQUEUE_WEBHOOK_ALLOW_HOSTS`. Retries wait
0 s in process (`VIDQUEUE_WEBHOOK_RETRY_SECONDS`) and 1 s where a real
worker's scheduler runs them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import certifi
import pytest
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry

from tests.database import fresh_database, use_database, wait_for
from tests.integration.test_flow import put
from tests.integration.test_worker import submit
from tests.receiver import Receiver, readme_verifier, self_signed
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.durable.outbox import OutboxPump
from vidqueue.records import JobRecord, new_job_id
from vidqueue.webhooks import start_dispatcher
from vidqueue.webhooks.delivery import attempts_of, webhook_queue
from vidqueue.webhooks.dispatch import Dispatcher, redeliver

pytestmark = pytest.mark.integration

SECRET = "test-webhook-secret"
WEBHOOKS = {
    "webhook_secret": SECRET,
    "webhook_allow_hosts": "127.0.0.1",
    "webhook_retry_seconds": "0,0",
    "webhook_timeout_seconds": 1.0,
}
"""Settings of every test here: fast retries, and the receivers allowed."""


@pytest.fixture
def hooks(settings, monkeypatch) -> Callable[..., Context]:
    """Turn webhooks on for this test: `hooks(webhook_url=...)` returns a context.

    The settings go to the environment too, where the in-process workers and
    the command line read them. Call it before the worker first runs.
    """

    def configure(**changes) -> Context:
        changed = settings.replace(**{**WEBHOOKS, **changes})
        for name, value in changed.to_env().items():
            monkeypatch.setenv(name, value)
        return Context(changed)

    return configure


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def deliver_all(ctx: Context) -> None:
    """Dispatch what the outbox holds, then run deliveries until none is due."""
    while Dispatcher(ctx).dispatch_once():
        pass
    worker = SimpleWorker([webhook_queue(ctx.redis)], connection=ctx.redis)
    worker.work(burst=True, with_scheduler=False)


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run the `vidqueue` command with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "vidqueue.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def roles(logs: Path, *commands: list[str]) -> Iterator[None]:
    """Run `vidqueue` role processes (each given by its arguments) for a block."""
    processes: list[subprocess.Popen] = []
    try:
        for number, arguments in enumerate(commands):
            with (logs / f"role-{number}.log").open("ab") as log:
                command = [sys.executable, "-m", "vidqueue.cli", *arguments]
                processes.append(
                    subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
                )
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def webhook_log(job_id: str) -> list[dict]:
    """The job's delivery attempts as `vidqueue webhooks JOB` prints them."""
    done = cli("webhooks", job_id)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["jobId"] == job_id
    return answer["attempts"]


def test_a_completed_job_is_announced_signed_with_its_status(
    hooks, receiver, clip, run_worker, api
):
    ctx = hooks(webhook_url=f"{receiver.url}/hooks/video")
    job_id = submit(ctx, clip, user=defaults.DEFAULT_USER)

    run_worker()
    deliver_all(ctx)

    [request] = receiver.requests
    assert request.path == "/hooks/video"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Vidqueue-Event"] == "job.completed"
    status = api.get(f"/status/{job_id}").json()
    assert json.loads(request.body) == status
    assert status["state"] == "completed"

    verify = readme_verifier()
    signature = request.headers["Vidqueue-Signature"]
    assert verify(SECRET, signature, request.body)
    tampered = request.body.replace(b'"completed"', b'"failed"')
    assert tampered != request.body
    assert not verify(SECRET, signature, tampered)
    assert not verify("another-secret", signature, request.body)

    [attempt] = webhook_log(job_id)
    assert attempt["delivery"] == request.headers["Vidqueue-Delivery"]
    assert (attempt["outcome"], attempt["status"]) == ("delivered", 200)
    assert attempt["target"] == receiver.url


def test_a_failing_receiver_gets_three_attempts_from_a_real_worker(
    hooks, clip, run_worker, tmp_path
):
    # The poller's dispatcher and `vidqueue worker --queue webhooks`, whose
    # scheduler runs the retries, as they run in production.
    with Receiver(statuses=(500, 500, 200)) as receiver:
        ctx = hooks(webhook_url=receiver.url, webhook_retry_seconds="1,1")
        with roles(tmp_path, ["poller"], ["worker", "--queue", "webhooks"]):
            job_id = submit(ctx, clip)
            run_worker()
            wait_for(lambda: len(attempts_of(ctx.redis, job_id)) == 3)

    assert [r.headers["Vidqueue-Event"] for r in receiver.requests] == [
        "job.completed"
    ] * 3
    deliveries = {r.headers["Vidqueue-Delivery"] for r in receiver.requests}
    assert len(deliveries) == 1, "a retry is the same delivery"
    assert len({r.body for r in receiver.requests}) == 1
    verify = readme_verifier()
    for request in receiver.requests:
        assert verify(SECRET, request.headers["Vidqueue-Signature"], request.body)

    log = webhook_log(job_id)
    assert [(a["attempt"], a["status"], a["outcome"]) for a in log] == [
        (1, 500, "retrying"),
        (2, 500, "retrying"),
        (3, 200, "delivered"),
    ]
    assert {a["delivery"] for a in log} == deliveries
    assert all(a["latency_ms"] >= 0 for a in log)


def test_a_receiver_that_never_answers_does_not_hold_up_the_job(
    hooks, clip, run_worker
):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        ctx = hooks(webhook_url=url, webhook_retry_seconds="3600")
        job_id = submit(ctx, clip)

        run_worker()

        assert ctx.records.get(job_id).state == "completed"
        Dispatcher(ctx).dispatch_once()
        queue = webhook_queue(ctx.redis)
        assert queue.count == 1, "the delivery waits on its own queue"
        assert attempts_of(ctx.redis, job_id) == []

        deliver_all(ctx)

    [attempt] = attempts_of(ctx.redis, job_id)
    assert (attempt["outcome"], attempt["error"]) == ("retrying", "timed out")
    assert attempt["status"] is None
    scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
    assert scheduled == [attempt["delivery"]], "retried in an hour"
    assert ctx.records.get(job_id).state == "completed"


def test_a_receiver_that_answers_a_byte_at_a_time_is_cut_off_and_retried(hooks):
    # Every read gets a byte within the timeout; the attempt's time limit
    # (six timeouts) ends it, and the failure callback schedules the next.
    stop = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        dripping = threading.Thread(target=drip, args=(server, stop), daemon=True)
        dripping.start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"
        ctx = hooks(
            webhook_url=url, webhook_timeout_seconds=0.5, webhook_retry_seconds="3600"
        )
        job = failed_job(ctx)

        deliver_all(ctx)

        stop.set()
        dripping.join()
    [attempt] = attempts_of(ctx.redis, job.id)
    assert attempt["outcome"] == "retrying"
    assert attempt["error"] == "the attempt was stopped: JobTimeoutException"
    scheduled = ScheduledJobRegistry(queue=webhook_queue(ctx.redis)).get_job_ids()
    assert scheduled == [f"{attempt['delivery']}-2"]


def drip(server: socket.socket, stop: threading.Event) -> None:
    """Accept one request and answer it a byte every 0.3 s until `stop`."""
    connection, _ = server.accept()
    with connection, contextlib.suppress(OSError):  # the client hung up
        connection.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100:
            if stop.wait(0.3):
                return
            connection.sendall(bytes([byte]))


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook?token=s3cret",
        "http://169.254.169.254/latest/meta-data/?token=s3cret",
        "http://localhost:{port}/hook?token=s3cret",
    ],
    ids=["private", "metadata", "loopback-name"],
)
def test_a_callback_to_a_private_address_is_refused_with_a_log_line(
    hooks, receiver, clip, run_worker, caplog, url
):
    # The receiver listens where `localhost` leads: were the check made after
    # connecting, it would see a request.
    port = receiver.url.rsplit(":", 1)[1]
    ctx = hooks(webhook_url=url.format(port=port))
    job_id = submit(ctx, clip)
    run_worker()

    with caplog.at_level(logging.INFO):
        deliver_all(ctx)

    assert receiver.requests == []
    [attempt] = attempts_of(ctx.redis, job_id)
    assert attempt["outcome"] == "refused"
    assert "a private, local or metadata address" in attempt["error"]
    assert attempt["status"] is None
    [line] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert job_id in line.getMessage()
    assert "s3cret" not in caplog.text
    assert "/hook" not in caplog.text


def test_redelivery_sends_the_status_again(hooks, receiver, clip, run_worker):
    ctx = hooks(webhook_url=receiver.url)
    job_id = submit(ctx, clip)
    run_worker()
    deliver_all(ctx)

    done = cli("webhooks", job_id, "--redeliver")
    deliver_all(ctx)

    assert done.returncode == 0, done.stderr
    first, again = receiver.requests
    assert json.loads(done.stdout)["delivery"] == again.headers["Vidqueue-Delivery"]
    assert again.headers["Vidqueue-Delivery"] != first.headers["Vidqueue-Delivery"]
    assert again.body == first.body
    assert readme_verifier()(SECRET, again.headers["Vidqueue-Signature"], again.body)
    log = webhook_log(job_id)
    assert [a["outcome"] for a in log] == ["delivered", "delivered"]


def failed_job(ctx: Context) -> JobRecord:
    """A job that failed as its upload never arrived (no video needed)."""
    record = JobRecord(id=new_job_id(), user_id="u1")
    ctx.records.create(record)
    ctx.records.transition(
        record.id, "failed", ("uploading",), failed_reason="upload never arrived"
    )
    return ctx.records.get(record.id)


@pytest.mark.parametrize(
    ("host", "outcome"),
    [("localhost", "delivered"), ("127.0.0.1", "failed")],
    ids=["certificate-for-the-host", "certificate-for-another-name"],
)
def test_https_checks_the_certificate_against_the_urls_own_host(
    hooks, tmp_path, monkeypatch, host, outcome
):
    # The attempt connects to the address it checked, not to the name; TLS
    # must still check the certificate against the name in the URL.
    tls, certificate = self_signed(tmp_path, "localhost")
    monkeypatch.setattr(certifi, "where", lambda: str(certificate))
    with Receiver(tls=tls, host=host) as receiver:
        ctx = hooks(webhook_url=f"{receiver.url}/hook", webhook_allow_hosts=host)
        job = failed_job(ctx)

        deliver_all(ctx)

    log = attempts_of(ctx.redis, job.id)
    assert log[-1]["outcome"] == outcome
    if outcome == "delivered":
        [request] = receiver.requests
        assert request.headers["Host"] == receiver.url.removeprefix("https://")
    else:
        assert receiver.requests == []
        assert "CERTIFICATE_VERIFY_FAILED" in log[-1]["error"]


def test_each_final_state_is_delivered_once_whoever_reads_it(hooks, receiver):
    ctx = hooks(webhook_url=receiver.url)
    failed = failed_job(ctx)

    first, second = Dispatcher(ctx, "one"), Dispatcher(ctx, "two")

    assert first.dispatch(failed) is not None
    assert second.dispatch(failed) is None
    assert first.dispatch(failed) is None
    deliver_all(ctx)  # the outbox's own entries of the job: replays too
    assert [r.headers["Vidqueue-Event"] for r in receiver.requests] == ["job.failed"]


def test_stage_webhooks_announce_each_stage_once(hooks, receiver, clip, run_worker):
    ctx = hooks(webhook_url=receiver.url, webhook_stages="on")
    job_id = submit(ctx, clip)
    run_worker()

    deliver_all(ctx)

    bodies = [json.loads(r.body) for r in receiver.requests]
    events = [r.headers["Vidqueue-Event"] for r in receiver.requests]
    assert events[-1] == "job.completed"
    assert set(events[:-1]) == {"job.updated"}
    steps = [(body["state"], body["stage"]) for body in bodies[:-1]]
    assert steps[0] == ("waiting", "queued")
    assert ("active", "probing") in steps
    assert ("active", "transcoding") in steps
    assert len(steps) == len(set(steps)), "one webhook per state and stage"
    assert all(body["jobId"] == job_id for body in bodies)


def test_a_job_brings_its_own_callback_url(hooks, receiver, make_api, clip, run_worker):
    ctx = hooks(webhooks="on")
    api = make_api(**WEBHOOKS, webhooks="on")
    upload = {
        "filename": clip.name,
        "contentType": "video/mp4",
        "size": clip.stat().st_size,
        "callbackUrl": f"{receiver.url}/jobs/done?token=abc",
    }
    ticket = api.post("/uploads", json=upload).json()
    put(ticket, clip.read_bytes())
    api.post(f"/uploads/{ticket['jobId']}/complete")
    run_worker()

    deliver_all(ctx)

    [request] = receiver.requests
    assert request.path == "/jobs/done?token=abc"
    assert json.loads(request.body)["jobId"] == ticket["jobId"]
    assert "callbackUrl" not in json.loads(request.body)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://example.com/hook", "callback_refused"),
        ("file:///etc/passwd", "callback_refused"),
        ("http://10.0.0.1/hook", "callback_refused"),
        ("https://", "callback_refused"),
    ],
)
def test_a_callback_url_that_is_not_allowed_is_a_400(make_api, url, error):
    api = make_api(**WEBHOOKS, webhooks="on")
    upload = {"filename": "a.mp4", "contentType": "video/mp4", "size": 10}

    answer = api.post("/uploads", json={**upload, "callbackUrl": url})

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == error
    assert answer.json()["detail"]


def test_without_webhooks_a_callback_url_is_a_400(api):
    upload = {"filename": "a.mp4", "contentType": "video/mp4", "size": 10}

    answer = api.post(
        "/uploads", json={**upload, "callbackUrl": "https://app.example.com/h"}
    )

    assert answer.status_code == 400
    assert "no webhooks" in answer.json()["detail"]


def test_without_webhooks_no_dispatcher_runs(ctx):
    assert start_dispatcher(ctx, threading.Event()) == []


def test_the_callback_url_is_kept_in_the_database_for_redelivery(
    hooks, receiver, postgres_server, monkeypatch
):
    with fresh_database(postgres_server) as database_url:
        settings = hooks(webhooks="on").settings
        ctx = Context(use_database(settings, database_url, monkeypatch))
        own = JobRecord(id=new_job_id(), user_id="u1", callback_url=receiver.url)
        plain = JobRecord(id=new_job_id(), user_id="u1")
        try:
            for record in (own, plain):
                ctx.records.create(record)
            OutboxPump(ctx.redis, ctx.durable, consumer="pump").drain()
            ctx.redis.delete(defaults.job_key(own.id))  # Redis forgot the job

            assert ctx.durable.fetch(own.id).callback_url == receiver.url
            assert ctx.durable.fetch(plain.id).callback_url == ""
            redeliver(ctx, own.id)
            deliver_all(ctx)
        finally:
            ctx.durable.close()

    [request] = receiver.requests
    assert json.loads(request.body)["state"] == "uploading"
