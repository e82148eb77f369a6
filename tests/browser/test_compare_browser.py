"""Compare end to end in Chromium: SmolLM2 against Gemma-3-270M (different tokenizers) on a
paragraph, the matched-head heatmap and the flagged heads, saved, then reopened from
History without running either model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import app_with_analyst, go_to, sign_in, wait_for_app, wait_for_fresh_page

pytestmark = [pytest.mark.browser, pytest.mark.model]

TIMEOUT_MS = 480_000  # Gemma's first load converts its GGUF weights (about a minute here)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with app_with_analyst(tmp_path_factory.mktemp("compare")) as url:
        yield url


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    page.locator("[data-testid='stSelectbox']").filter(has_text=label).locator("input").click()
    page.get_by_role("option", name=re.compile(re.escape(option))).first.click()
    wait_for_app(page)


def test_smollm2_vs_gemma_is_saved_and_reopened(app_url: str, browser, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(app_url)
    wait_for_fresh_page(page)
    sign_in(page)
    go_to(page, "Compare")
    _choose(page, "Model A", "SmolLM2")
    _choose(page, "Model B", "Gemma 3 270M")

    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text("are flagged").first.wait_for(timeout=TIMEOUT_MS)
    wait_for_app(page, TIMEOUT_MS)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "compare.png"), full_page=True)

    page.get_by_label("Title").fill("SmolLM2 vs Gemma on the fox")
    page.get_by_role("button", name="Save", exact=True).click()
    saved = page.get_by_text(re.compile(r"Saved as comparison #\d+"))
    saved.wait_for(timeout=60_000)

    go_to(page, "History")
    page.get_by_text("Comparisons", exact=True).click()
    wait_for_app(page)
    page.get_by_text("SmolLM2 vs Gemma on the fox").first.wait_for(timeout=60_000)
    # The row's own button, by its text (the model filter's dropdown arrow is also named "Open").
    page.locator("button").filter(has_text=re.compile(r"^Open$")).first.click()
    page.get_by_text("Re-rendered from stored data; neither model ran.").wait_for(timeout=60_000)
    page.get_by_text("are flagged").first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "compare-history.png"), full_page=True)
    outside = [url for url in requests if not url.startswith(app_url) and not url.startswith("data:")]
    assert outside == [], outside
    context.close()
