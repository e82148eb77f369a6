"""One `streamlit run` per test module and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.path.exists(CHROMIUM) or os.environ.get("HEADLIGHT_REQUIRE_BROWSER"):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: apt-get install -y chromium")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@contextmanager
def streamlit_server(log_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`streamlit run app.py` on a free localhost port; yields its URL and stops it afterwards."""
    port = _free_port()
    log_path = log_dir / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(extra_env or {})}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on embedded defaults (guest mode lets visitors run models), on a scratch
    SQLite database rather than the project's own ``data/headlight.db``."""
    folder = tmp_path_factory.mktemp("streamlit")
    with streamlit_server(folder, {"DATABASE_URL": f"sqlite:///{folder / 'headlight.db'}"}) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def wait_for_app(page: object, timeout_ms: int = 240_000) -> None:
    """Wait until Streamlit has rendered and finished running the script."""
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=timeout_ms)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => { const app = document.querySelector(\"[data-testid='stApp']\");"
        " return app && app.getAttribute('data-test-script-state') !== 'running'; }",
        timeout=timeout_ms,
    )


def wait_for_fresh_page(page: object, timeout_ms: int = 240_000) -> None:
    """`wait_for_app` after a page load, then for the run the login cookie component starts.

    The authenticator's cookie component reports back a moment after the first run of a
    page and starts a second run; a click made before that run finishes can be superseded
    by it. People are slower than that; tests wait.
    """
    wait_for_app(page, timeout_ms)
    page.wait_for_selector("iframe[title*='cookie_manager']", state="attached", timeout=timeout_ms)  # type: ignore[attr-defined]
    page.wait_for_timeout(1_500)  # type: ignore[attr-defined]
    wait_for_app(page, timeout_ms)


@pytest.fixture(autouse=True)
def _chromium_present(request: pytest.FixtureRequest) -> None:
    if "browser" in request.keywords and not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is required for browser tests (HEADLIGHT_REQUIRE_BROWSER is set)")


# Stored (hashed) only in a test module's temporary database.
PASSWORD = "Browser-pass-42"


@contextmanager
def app_with_analyst(folder: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """The app on a fresh SQLite database in ``folder`` holding one analyst, alice."""
    from core.access import auth
    from core.domain.identity import Role
    from db import users as users_db
    from db.session import get_sessionmaker

    database = f"sqlite:///{folder / 'app.db'}"
    with get_sessionmaker(database).begin() as session:
        users_db.create_user(
            session=session, username="alice", password_hash=auth.hash_password(PASSWORD), role=Role.ANALYST
        )
    with streamlit_server(folder, {"DATABASE_URL": database, **(extra_env or {})}) as url:
        yield url


def sign_in(page: object) -> None:
    """Sign in as alice through the sidebar form."""
    page.get_by_label("Username").fill("alice")  # type: ignore[attr-defined]
    page.get_by_role("textbox", name="Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.get_by_text("Signed in as").first.wait_for(timeout=60_000)  # type: ignore[attr-defined]
    wait_for_app(page)


def go_to(page: object, screen: str, attempts: int = 3) -> None:
    """Open ``screen`` from the sidebar and wait for its heading.

    Right after signing in, the authenticator's cookie component starts one more run; a
    click that lands during it can be superseded, so the click is repeated if the screen
    has not appeared.
    """
    heading = page.get_by_role("heading", name=screen, exact=True)  # type: ignore[attr-defined]
    for attempt in range(attempts):
        page.get_by_role("link", name=screen, exact=True).click()  # type: ignore[attr-defined]
        try:
            heading.wait_for(timeout=30_000 if attempt < attempts - 1 else 120_000)
            break
        except Exception:  # playwright's TimeoutError; retried, then raised on the last try
            if attempt == attempts - 1:
                raise
    wait_for_app(page)
