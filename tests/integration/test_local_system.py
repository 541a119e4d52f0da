"""The local system as a newcomer runs it: `vidqueue dev`, then `vidqueue submit`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidqueue.services import free_port

pytestmark = pytest.mark.integration


def vidqueue(*args: str) -> list[str]:
    return [sys.executable, "-m", "vidqueue.cli", *args]


def wait_for_line(process: subprocess.Popen, words: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if words in line:
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"{words!r} never printed")


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_dev_runs_everything_and_stops_cleanly(tmp_path, clip):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDQUEUE_")}
    env.update(
        VIDQUEUE_API_PORT=str(port),
        VIDQUEUE_DATA_DIR=str(tmp_path / "data"),
        VIDQUEUE_POLL_INTERVAL_SECONDS="0.5",
    )
    dev = subprocess.Popen(
        vidqueue("dev"), env=env, cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        line = wait_for_line(dev, "vidqueue is running at")
        assert f"http://127.0.0.1:{port}/" in line
        children = children_of(dev.pid)
        assert len(children) >= 5  # redis-server, S3 server, api, poller, worker

        submit = subprocess.run(
            vidqueue("submit", str(clip), "--wait"),
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

        assert submit.returncode == 0, submit.stderr
        status = json.loads(submit.stdout)
        assert status["state"] == "completed"
        assert status["result"]["videoUrl"].startswith("http://127.0.0.1:")
        assert "upload" in submit.stderr
        assert "100.0%" in submit.stderr

        info = subprocess.run(
            vidqueue("queue-info"), env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(info.stdout)["completed"] == 1
        shown = subprocess.run(
            vidqueue("status", status["jobId"]),
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(shown.stdout)["jobId"] == status["jobId"]
        refused = subprocess.run(
            vidqueue("cancel", status["jobId"]), env=env, capture_output=True, text=True
        )
        assert refused.returncode == 1
        assert "already completed" in refused.stderr
    finally:
        dev.send_signal(signal.SIGTERM)
        code = dev.wait(timeout=60)
        dev.stdout.close()

    assert code == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)


def test_submit_explains_a_missing_file(tmp_path):
    answer = subprocess.run(
        vidqueue("submit", str(tmp_path / "nope.mp4")), capture_output=True, text=True
    )

    assert answer.returncode == 2
    assert "no such file" in answer.stderr


def test_status_explains_an_unreachable_api():
    answer = subprocess.run(
        vidqueue("status", "x", "--api", f"http://127.0.0.1:{free_port()}"),
        capture_output=True, text=True,
    )  # fmt: skip

    assert answer.returncode == 1
    assert "cannot reach the API" in answer.stderr
