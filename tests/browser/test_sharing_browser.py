"""Sharing end to end in Chromium: sign in, stay signed in across a refresh, run and save,
create a share link, open it in a fresh browser without an account, revoke it, and see
the same "not found" as for an analysis that does not exist."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.domain.settings import get_settings
from tests.browser.conftest import app_with_analyst, sign_in, wait_for_app, wait_for_fresh_page

pytestmark = [pytest.mark.browser, pytest.mark.model]

TIMEOUT_MS = 240_000
COOKIE = get_settings().cookie_name


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with app_with_analyst(tmp_path_factory.mktemp("sharing")) as url:
        yield url


def test_share_link_works_until_revoked(app_url: str, browser, artifacts: Path) -> None:
    """The owner's link opens the analysis for a stranger; once revoked it is not found."""
    owner = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = owner.new_page()
    page.goto(app_url)
    wait_for_fresh_page(page)
    sign_in(page)
    # The authenticator's component sets the login cookie in the browser shortly after.
    deadline = time.monotonic() + 30
    while not any(c["name"] == COOKIE for c in owner.cookies()) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    page.reload()
    wait_for_fresh_page(page)
    page.get_by_text("Signed in as").first.wait_for(timeout=60_000)  # the login cookie survived

    page.get_by_label("Text", exact=True).fill("The capital of France is")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector(".hl-continuation", timeout=TIMEOUT_MS)
    wait_for_app(page)
    page.get_by_role("button", name="Save", exact=True).click()
    saved = page.get_by_text(re.compile(r"Saved as #\d+"))
    saved.wait_for(timeout=60_000)
    record_id = int(re.search(r"#(\d+)", saved.inner_text()).group(1))  # type: ignore[union-attr]

    page.get_by_role("link", name="History").click()
    page.get_by_role("heading", name="History").wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Open").first.click()
    page.get_by_role("button", name="Close").wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator("[data-testid='stExpander'] summary").filter(has_text="Share").click()
    page.get_by_role("button", name="Create share link").click()
    code = page.locator("[data-testid='stCode'] code").filter(has_text="/shared?id=")
    code.wait_for(timeout=60_000)
    link = code.inner_text().strip()
    assert link.startswith(app_url) and f"/shared?id={record_id}&token=" in link
    page.screenshot(path=str(artifacts / "sharing-owner.png"), full_page=True)

    stranger = browser.new_context(viewport={"width": 1400, "height": 1600})
    visitor = stranger.new_page()
    visitor.goto(link)
    wait_for_fresh_page(visitor)
    visitor.get_by_text("Shared with you through a link").wait_for(timeout=60_000)
    visitor.locator(".hl-text").filter(has_text="The capital of France is").wait_for(timeout=60_000)
    wait_for_app(visitor)
    visitor.screenshot(path=str(artifacts / "sharing-visitor.png"), full_page=True)
    assert visitor.get_by_text("Signed in as").count() == 0

    page.get_by_role("button", name="Revoke").click()
    page.get_by_text("revoked: it now opens nothing").wait_for(timeout=60_000)
    visitor.reload()
    wait_for_fresh_page(visitor)
    not_found = f"Analysis #{record_id} was not found. It may have been deleted."
    visitor.get_by_text(not_found).wait_for(timeout=60_000)
    assert visitor.get_by_text("Shared with you through a link").count() == 0
    stranger.close()
    owner.close()
