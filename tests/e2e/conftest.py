"""Fixtures for driving the web page in a real browser against the real system.

The browser is the system's headless Chromium (Debian's `chromium`), driven by
Playwright; Playwright's own browser downloads are never used. The system is
the API, the poller and workers, each its own process, on the test's Redis and
S3 servers. Screenshots go to `VIDQUEUE_TEST_ARTIFACTS` (default
`test-artifacts/` at the repository root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from vidqueue import services
from vidqueue.settings import Settings
from vidqueue.storage import Storage

ROOT = Path(__file__).resolve().parents[2]
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
STEP_TIMEOUT_MS = 30_000
"""The longest the page may take for one visible step (an upload, a job)."""


def chromium_binary() -> str | None:
    """The system's Chromium, if it is installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of the system's Chromium; skips the test when there is none."""
    path = chromium_binary()
    if path is None:
        pytest.skip(
            "no chromium binary: install Debian's chromium "
            "(VIDQUEUE_WITH_BROWSER=1 scripts/bootstrap.sh does)"
        )
    return path


@pytest.fixture(scope="session")
def s3_server(services_dir: Path) -> Iterator[services.Service]:
    """moto's S3 server without its allow-every-origin CORS.

    Browsers then get only what each bucket's CORS rules allow, as with real
    storage, so the tests show which rules the page needs.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_DISABLE_GLOBAL_CORS", "true")
        service = services.start_s3(services_dir / "s3-e2e")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go."""
    base = os.environ.get("VIDQUEUE_TEST_ARTIFACTS") or ROOT / "test-artifacts"
    path = Path(base) / "e2e"
    path.mkdir(parents=True, exist_ok=True)
    return path


def allow_page_origin(settings: Settings, origin: str) -> None:
    """The buckets' CORS rules for a page served at `origin`.

    The same rules as `infra/terraform` sets with `enable_cors`: the page PUTs
    uploads and their parts, and players read the results.
    """
    client = Storage(settings).client
    rules = {
        settings.upload_bucket: (["PUT", "POST"], ["ETag"]),
        settings.output_bucket: (["GET", "HEAD"], ["ETag", "Content-Length"]),
    }
    for bucket, (methods, exposed) in rules.items():
        client.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": [origin],
                        "AllowedMethods": methods,
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": exposed,
                        "MaxAgeSeconds": 3600,
                    }
                ]
            },
        )


@dataclass
class System:
    """The running system: where the page is, and the settings it runs on."""

    url: str
    settings: Settings


@pytest.fixture
def start_system(
    settings: Settings, worker_process, tmp_path: Path
) -> Iterator[Callable[..., System]]:
    """Start the API and the poller as processes, and a worker unless told not.

    `start_system(auth_mode="apikey", api_keys=...)` changes settings. All
    processes stop after the test.
    """
    started: list[services.Service] = []

    def start(worker: bool = True, **changes) -> System:
        system_settings = settings.replace(**changes)
        url = system_settings.base_url
        env = {**os.environ, **system_settings.to_env()}
        for role in ("api", "poller"):
            with (tmp_path / f"{role}.log").open("ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "vidqueue.cli", role],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            started.append(
                services.Service(role, url, system_settings.api_port, process)
            )
        _wait_for_api(url, started[-2].process)
        allow_page_origin(system_settings, url)
        if worker:
            worker_process(**changes)
        return System(url=url, settings=system_settings)

    yield start
    for service in started:
        service.stop()


def _wait_for_api(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "the API exited at start"
        assert time.monotonic() < deadline, "the API did not answer"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


class PageWatch:
    """What the page said in the browser's console, and the errors it threw."""

    def __init__(self) -> None:
        self.console: list[str] = []
        self.errors: list[str] = []

    def on_console(self, message: ConsoleMessage) -> None:
        self.console.append(message.text)

    def on_error(self, error: Exception) -> None:
        self.errors.append(str(error))


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Page]:
    """A page in the system's headless Chromium, on a fresh profile.

    After the test, the page must have thrown no error, broken none of its
    Content-Security-Policy, and logged no presigned URL.
    """
    watch = PageWatch()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=chromium,
            args=BROWSER_ARGS,
            headless=True,
            viewport=DESKTOP,
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        expect.set_options(timeout=STEP_TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        page.on("console", watch.on_console)
        page.on("pageerror", watch.on_error)
        try:
            yield page
        finally:
            context.close()
    assert watch.errors == [], f"the page threw: {watch.errors}"
    blocked = [line for line in watch.console if "Content Security Policy" in line]
    assert blocked == [], f"the page broke its own policy: {blocked}"
    leaked = [line for line in watch.console if "X-Amz-Signature" in line]
    assert leaked == [], "the page logged presigned URLs"
