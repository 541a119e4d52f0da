"""Logs: a line per lifecycle event naming the job and the worker; no secrets."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from tests.integration.test_flow import new_upload, put
from tests.integration.test_worker import submit
from vidqueue.logs import QUIET_LIBRARIES, JsonFormatter, configure, quiet_libraries

pytestmark = pytest.mark.integration

SECRETS = ("X-Amz-Signature", "X-Amz-Credential", "test-secret", "Bearer ")


@pytest.fixture
def debug_logs(caplog):
    """Every log line at DEBUG, with libraries as quiet as `configure` makes them."""
    levels = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    caplog.set_level(logging.DEBUG)
    quiet_libraries()
    yield caplog
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def messages(caplog, job_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if job_id in r.getMessage()]


def test_a_whole_job_logs_its_lifecycle_and_no_secret(
    api, ctx, clip, run_worker, debug_logs
):
    ticket = new_upload(api, clip)
    put(ticket, clip.read_bytes())
    api.post(f"/uploads/{ticket['jobId']}/complete")
    run_worker()
    status = api.get(f"/status/{ticket['jobId']}").json()
    httpx.get(status["result"]["videoUrl"])

    for secret in SECRETS:
        assert secret not in debug_logs.text
    lines = messages(debug_logs, ticket["jobId"])
    for event in ("upload created", "enqueued", "started", "completed"):
        assert any(event in line for line in lines), event
    assert any("worker" in line for line in lines if "started" in line)


def test_a_failed_job_logs_its_reason_once_without_a_traceback(
    ctx, run_worker, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    job_id = submit(ctx, text)

    run_worker()

    failures = [
        r for r in caplog.records
        if job_id in r.getMessage() and "failed" in r.getMessage()
    ]  # fmt: skip
    assert len(failures) == 1
    assert "not a video" in failures[0].getMessage()
    assert failures[0].exc_info is None


def test_json_lines_when_asked(settings):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure(settings.replace(log_format="json"))
    handler = root.handlers[0]
    handler.stream = stream

    logging.getLogger("vidqueue.worker").info("job %s: started (worker %s)", "J1", "w1")

    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["message"] == "job J1: started (worker w1)"
    assert (line["level"], line["logger"]) == ("info", "vidqueue.worker")
    assert isinstance(handler.formatter, JsonFormatter)
    root.handlers[:], level = saved
    root.setLevel(level)
