"""The web page in a real browser: from choosing a file to playing the result."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE

pytestmark = pytest.mark.e2e


def job_card(page: Page, filename: str):
    return page.locator("li.job", has=page.get_by_role("heading", name=filename))


def test_upload_completes_and_plays(start_system, browser, clip, artifacts):
    system = start_system()
    page = browser
    page.goto(system.url)
    expect(page.get_by_role("heading", name="vidqueue")).to_be_visible()

    page.get_by_label("Choose videos").set_input_files(clip)
    card = job_card(page, clip.name)
    expect(card.get_by_role("status")).to_have_text("Ready.")

    video = card.locator("video")
    expect(video).to_be_visible()
    assert video.get_attribute("poster")
    download = card.get_by_role("link", name="Download the video")
    expect(download).to_have_attribute("href", video.get_attribute("src"))
    expect(card.locator(".job-facts")).to_contain_text("640\u00d7360")
    assert card.get_attribute("data-live") == "events"

    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function(
        "v => v.currentTime > 0.5", arg=video.element_handle(), timeout=15_000
    )
    assert video.evaluate("v => v.error") is None
    page.screenshot(path=artifacts / "completed-desktop.png", full_page=True)

    page.set_viewport_size(PHONE)
    page.screenshot(path=artifacts / "completed-phone.png", full_page=True)
