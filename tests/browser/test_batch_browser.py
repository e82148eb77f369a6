"""Batch work end to end in Chromium: upload a CSV, start a head-atlas job on SmolLM2 and
watch its progress bar move without touching the page, cancel a second job, then reopen
the finished atlas from History.

``HEADLIGHT_BROWSER_BATCH_ROWS`` sets the CSV's size (60 by default; the issue's
acceptance run used 500).
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import app_with_analyst, go_to, sign_in, wait_for_app, wait_for_fresh_page

pytestmark = [pytest.mark.browser, pytest.mark.model]

TIMEOUT_MS = 240_000
ROWS = int(os.environ.get("HEADLIGHT_BROWSER_BATCH_ROWS", "60"))
PROGRESS = "[data-testid='stProgress'] [role='progressbar']"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Short rows keep the job quick; the refresh and the cancel are what is under test.
    with app_with_analyst(tmp_path_factory.mktemp("batch"), {"HEADLIGHT_BATCH_MAX_TOKENS": "48"}) as url:
        yield url


def _csv(folder: Path) -> Path:
    path = folder / "reviews.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(ROWS):
            writer.writerow([f"Review {i}: the delivery took {i % 9 + 1} days and the box was fine.", i % 2])
    return path


def _progress(page) -> float:
    bar = page.locator(PROGRESS).first
    return float(bar.get_attribute("aria-valuenow") or 0)


def test_atlas_job_with_live_progress_cancel_and_history(
    app_url: str, browser, artifacts: Path, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(app_url)
    wait_for_fresh_page(page)
    sign_in(page)

    go_to(page, "Batch")
    page.locator("[data-testid='stExpander'] summary").filter(has_text="Upload a dataset").click()
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(_csv(tmp_path)))
    page.get_by_role("button", name="Save dataset").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.get_by_text(f"Kept {ROWS:,} rows").count() >= 1
    page.get_by_role("button", name="Save dataset").click()
    page.get_by_text(re.compile(rf"Saved dataset #\d+ with {ROWS:,} rows")).wait_for(timeout=60_000)
    wait_for_app(page)

    page.locator("[data-testid='stRadio'] label").filter(has_text="Jobs").click()
    page.get_by_role("button", name="Start head-atlas job").wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Start head-atlas job").click()
    page.get_by_text(re.compile(r"Job #\d+ queued")).wait_for(timeout=60_000)

    # The bar must move on its own: sample it without any input until it has risen twice.
    seen: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < TIMEOUT_MS / 1000:
        if page.locator(PROGRESS).count():
            value = _progress(page)
            if not seen or value != seen[-1]:
                seen.append(value)
        if page.get_by_role("button", name="Open the head atlas").count():
            break
        page.wait_for_timeout(250)
    rising = [v for v in seen if 0 < v < 100]
    assert rising, f"no intermediate progress was shown: {seen}"
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    # While the panel refreshes itself Streamlit may briefly show the old and the new button.
    page.get_by_role("button", name="Open the head atlas").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_text(f"{ROWS:,} of {ROWS:,} rows").first.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "batch-job.png"), full_page=True)

    page.get_by_role("button", name="Start head-atlas job").click()
    second = page.get_by_text(re.compile(r"Job #\d+ queued"))
    second.wait_for(timeout=60_000)
    page.get_by_role("button", name="Cancel job").first.click(timeout=60_000)
    page.get_by_text(re.compile(r"Job #\d+: cancelled")).last.wait_for(timeout=TIMEOUT_MS)

    go_to(page, "History")
    page.get_by_text("Head atlases", exact=True).click()
    wait_for_app(page)
    page.get_by_role("button", name="Open", exact=True).first.click()
    page.get_by_role("button", name="Download CSV").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.screenshot(path=str(artifacts / "batch-atlas-history.png"), full_page=True)
    outside = [url for url in requests if not url.startswith(app_url) and not url.startswith("data:")]
    assert outside == [], outside
    context.close()
