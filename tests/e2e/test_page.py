"""The web page in a real browser: from choosing a file to playing the result.

Each test starts the real system (API, poller, workers as processes, on the
test's Redis and S3 servers) and drives the page in the system's Chromium as a
person would: keyboard, file picker, drag and drop, buttons.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import jwt
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.e2e.conftest import PHONE
from tests.media import make_clip

pytestmark = pytest.mark.e2e

API_KEY = "alice-key-0123456789abcdef"
JWT_SECRET = "a-test-secret-of-at-least-32-bytes!"
PART_BYTES = 5 * 1024 * 1024

# Every visible text against the background it is drawn on: the contrast
# ratio of WCAG 2 (4.5:1, or 3:1 for large text), and every control's name.
ACCESSIBILITY_PROBLEMS = """() => {
  const rgb = (text) => text.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const color = rgb(getComputedStyle(node).backgroundColor);
      if (color.length < 4 || color[3] > 0) return color;
    }
    return [255, 255, 255];
  };
  const problems = [];
  for (const el of document.querySelectorAll("body *")) {
    const ownText = [...el.childNodes].some(
      (n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!ownText || !el.checkVisibility() || el.closest("video")) continue;
    const style = getComputedStyle(el);
    const [l1, l2] = [luminance(rgb(style.color)), luminance(background(el))];
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`${el.textContent.trim()}: contrast ${ratio.toFixed(2)}`);
    }
  }
  for (const el of document.querySelectorAll("button, input, a[href]")) {
    if (el.type === "file") {
      if (!el.labels.length) problems.push("the file input has no label");
      continue;
    }
    if (!el.checkVisibility()) continue;
    const named = el.textContent.trim() || (el.labels && el.labels.length);
    if (!named) problems.push(`${el.outerHTML.slice(0, 60)} has no name`);
  }
  return problems;
}"""


# Every text the status lines (live regions) take, in order: what a screen
# reader announces.
RECORD_ANNOUNCEMENTS = """
window.announced = [];
new MutationObserver((changes) => {
  for (const change of changes) {
    const text = change.target.nodeType === Node.TEXT_NODE;
    const node = text ? change.target.parentElement : change.target;
    const line = node.closest && node.closest(".job [role=status]");
    if (line && window.announced.at(-1) !== line.textContent) {
      window.announced.push(line.textContent);
    }
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
SLOW_UPLOADS_BYTES_PER_S = 150_000


def job_card(page: Page, filename: str) -> Locator:
    return page.locator("li.job", has=page.get_by_role("heading", name=filename))


def check_accessible(page: Page) -> None:
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == []


def pick_with_keyboard(page: Page, path: Path) -> None:
    """Tab to the drop zone and open the file picker with the space bar."""
    page.locator("body").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "files":
            break
    ring = page.locator("#dropzone").evaluate("z => getComputedStyle(z).outlineStyle")
    assert ring == "solid", "the focused drop zone shows no focus ring"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(path)


def slow_uploads(page: Page) -> None:
    """Let the browser send only so fast, as over a real connection."""
    session = page.context.new_cdp_session(page)
    session.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": SLOW_UPLOADS_BYTES_PER_S,
        },
    )


def test_upload_completes_and_plays(start_system, browser, clip, artifacts):
    system = start_system()
    page = browser
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    slow_uploads(page)
    page.goto(system.url)
    expect(page.get_by_role("heading", name="vidqueue")).to_be_visible()
    expect(page.locator("#access")).to_be_hidden()  # no credentials with auth off

    pick_with_keyboard(page, clip)
    card = job_card(page, clip.name)
    size = re.escape(f"{clip.stat().st_size / 1000:.1f} kB")
    expect(card.locator(".job-detail")).to_have_text(
        re.compile(rf"[\d.]+ kB of {size} · [\d.]+ kB/s · about \d+ s left")
    )
    expect(card.get_by_role("status")).to_have_text("Ready.")
    announced = page.evaluate("window.announced")
    assert announced[0] == "Uploading: 0%"
    assert "Uploading: 50%" in announced
    assert any(line.startswith("Processing (transcoding)") for line in announced)
    assert announced[-1] == "Ready."

    video = card.locator("video")
    expect(video).to_be_visible()
    assert video.get_attribute("poster")
    download = card.get_by_role("link", name="Download the video")
    expect(download).to_have_attribute("href", video.get_attribute("src"))
    expect(card.locator(".job-facts")).to_contain_text("640\u00d7360")
    assert card.get_attribute("data-live") == "events"

    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("v => v.currentTime > 0.5", arg=video.element_handle())
    assert video.evaluate("v => v.error") is None
    expect(card.locator(".job-error")).to_be_hidden()
    check_accessible(page)
    page.screenshot(path=artifacts / "completed-desktop.png", full_page=True)

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=artifacts / "completed-phone.png", full_page=True)


def test_dropped_files_that_are_not_videos_show_why(start_system, browser, artifacts):
    system = start_system()
    page = browser
    page.goto(system.url)

    files = [
        {"name": "notes.txt", "type": "text/plain", "text": "shopping list"},
        {"name": "holiday.mp4", "type": "video/mp4", "text": "not a video " * 200},
    ]
    dropped = page.evaluate_handle(
        """(files) => {
          const data = new DataTransfer();
          for (const f of files) data.items.add(new File([f.text], f.name, f));
          return data;
        }""",
        files,
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})

    refused = job_card(page, "notes.txt")
    expect(refused.locator(".badge")).to_have_text("Not uploaded")
    expect(refused.locator(".job-error")).to_contain_text(
        "content type 'text/plain' is not accepted"
    )
    failed = job_card(page, "holiday.mp4")
    expect(failed.get_by_role("status")).to_have_text("Failed.")
    expect(failed.locator(".job-error")).to_have_text(
        "not a video: the file could not be read as a video"
    )
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    check_accessible(page)
    page.screenshot(path=artifacts / "not-videos.png", full_page=True)


def test_cancel_then_retry_with_status_polling(
    start_system, worker_process, browser, clip, artifacts
):
    system = start_system(worker=False)
    page = browser
    # No event stream: the page must fall back to polling GET /status.
    page.route("**/events/**", lambda route: route.fulfill(status=503, body=""))
    page.goto(system.url)

    page.get_by_label("Choose videos").set_input_files(clip)
    card = job_card(page, clip.name)
    status = card.get_by_role("status")
    expect(status).to_contain_text("Waiting: next in line")
    expect(card).to_have_attribute("data-live", "polling")

    card.get_by_role("button", name="Cancel").click()
    expect(status).to_have_text("Cancelled.")
    expect(card.get_by_role("button", name="Cancel")).to_be_hidden()
    page.screenshot(path=artifacts / "cancelled.png", full_page=True)

    card.get_by_role("button", name="Retry").click()
    expect(status).to_contain_text("Waiting: next in line")
    worker_process()
    expect(status).to_have_text("Ready.")
    expect(card.locator("video")).to_be_visible()


def supabase_token(user: str) -> str:
    claims = {"sub": user, "aud": "authenticated", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("mode", "name", "changes"),
    [
        ("apikey", "API key", {"api_keys": f"alice:{API_KEY}"}),
        ("jwt", "Supabase access token", {"jwt_secret": JWT_SECRET}),
    ],
)
def test_credential_entered_once_is_remembered(
    start_system, browser, clip, artifacts, mode, name, changes
):
    system = start_system(auth_mode=mode, **changes)
    secret = API_KEY if mode == "apikey" else supabase_token("alice")
    page = browser
    page.goto(system.url)
    message = page.locator("#access-message")
    expect(message).to_have_text(f"Enter your {name} to upload and see your videos.")

    field = page.get_by_label(name)
    field.fill("wrong-credential-0123456789")
    field.press("Enter")
    expect(message).to_contain_text(f"This {name} was not accepted")
    field.fill(secret)
    field.press("Enter")
    expect(message).to_have_text(f"{name} saved in this browser.")

    page.get_by_label("Choose videos").set_input_files(clip)
    card = job_card(page, clip.name)
    expect(card.get_by_role("status")).to_have_text("Ready.")
    assert card.get_attribute("data-live") == "events"

    page.reload()
    expect(page.get_by_label(name)).to_have_attribute(
        "placeholder", "Saved in this browser"
    )
    expect(message).to_be_empty()
    card = job_card(page, clip.name)
    expect(card.locator(".badge")).to_have_text("Ready")
    card.get_by_role("button", name="Show video").click()
    expect(card.locator("video")).to_be_visible()
    page.screenshot(path=artifacts / f"remembered-{mode}.png", full_page=True)

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    check_accessible(page)
    page.screenshot(path=artifacts / f"remembered-{mode}-phone.png", full_page=True)


@pytest.fixture(scope="session")
def large_clip(media_dir: Path) -> Path:
    """A clip of more than one multipart part (S3 parts are 5 MiB at least)."""
    path = make_clip(media_dir / "large.mp4", seconds=4.0, size="1920x1080")
    assert path.stat().st_size > PART_BYTES
    return path


def test_multipart_upload_resumes_after_network_failure(
    start_system, browser, large_clip, artifacts
):
    system = start_system(worker=False)
    page = browser
    page.add_init_script(
        "window.vidqueuePage = {multipartThresholdBytes: 1, "
        f"partBytes: {PART_BYTES}, attempts: 2, retryDelayMs: 100}};"
    )
    puts: Counter[str] = Counter()
    network_down = True

    def storage(route: Route) -> None:
        request = route.request
        part = request.url.split("partNumber=")[1].split("&")[0]
        if request.method == "PUT":
            puts[part] += 1
        if part == "2" and network_down:
            route.abort("connectionreset")
            return
        route.continue_()

    page.route("**/*partNumber=*", storage)
    page.goto(system.url)

    page.get_by_label("Choose videos").set_input_files(large_clip)
    card = job_card(page, large_clip.name)
    expect(card.locator(".badge")).to_have_text("Paused")
    expect(card.locator(".job-error")).to_contain_text("network error")
    expect(card.locator(".job-detail")).to_have_text(
        f"{PART_BYTES / 1e6:.1f} MB of {large_clip.stat().st_size / 1e6:.1f} MB sent"
    )
    page.set_viewport_size(PHONE)
    page.screenshot(path=artifacts / "multipart-paused-phone.png", full_page=True)

    network_down = False
    card.get_by_role("button", name="Resume upload").click()
    expect(card.get_by_role("status")).to_contain_text("Waiting: next in line")
    # Part 1 reached storage before the failure: the resume listed it and
    # did not send it again. Part 2 failed twice, then went through.
    assert puts == {"1": 1, "2": 3}
