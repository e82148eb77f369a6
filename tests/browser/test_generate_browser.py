"""What a person sees: Generate with SmolLM2 in Chromium draws the attention view."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.browser.conftest import wait_for_app, wait_for_fresh_page

pytestmark = [pytest.mark.browser, pytest.mark.model]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def test_generate_draws_bertviz_offline(server_url: str, browser, artifacts: Path) -> None:
    """Run SmolLM2, see the continuation and a non-empty bertviz svg; no request leaves localhost."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    outside: list[str] = []

    def record(request) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in {"http", "https", "ws", "wss"} and parsed.hostname not in LOCAL_HOSTS:
            outside.append(request.url)

    context.on("request", record)
    page = context.new_page()
    page.goto(server_url)
    wait_for_fresh_page(page)
    text_area = page.get_by_role("textbox", name="Text", exact=True)
    text_area.fill("The capital of France is")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector(".hl-continuation", timeout=240_000)
    wait_for_app(page)

    frame_element = page.wait_for_selector("iframe[title='st.iframe']", timeout=60_000)
    frame = frame_element.content_frame()
    frame.wait_for_function(
        "() => { const s = document.querySelector('svg'); return s && s.querySelectorAll('*').length > 20; }",
        timeout=60_000,
    )
    svg_children = frame.evaluate("document.querySelector('svg').querySelectorAll('*').length")
    assert svg_children > 20
    continuation = page.locator(".hl-continuation").inner_text()
    assert continuation.strip()
    page.screenshot(path=str(artifacts / "generate.png"), full_page=True)
    assert outside == [], f"requests left localhost: {outside}"
    context.close()
