"""Metrics screen under AppTest: numbers, charts and readiness render for signed-in users."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.pages.accounts import add_account, signed_in

APP = Path(__file__).resolve().parents[2] / "app.py"


def test_metrics_page_shows_numbers_and_readiness(database: str) -> None:
    """The page renders its headline metrics, charts, and database/cache readiness."""
    add_account("alice")
    at = signed_in(AppTest.from_file(str(APP), default_timeout=120))
    at.run()
    at.switch_page("pages/metrics.py").run()
    assert not at.exception
    labels = {m.label for m in at.metric}
    assert {"Analyses (1 h)", "Cache hit rate", "p50 latency", "CPU", "RAM"} <= labels
    readiness = [s.value for s in at.success] + [w.value for w in at.warning]
    assert any(r.startswith("database:") for r in readiness)
    assert any(r.startswith("result cache:") for r in readiness)


def test_metrics_page_asks_visitors_to_sign_in() -> None:
    """Run on its own without a signed-in user, the page shows nothing but how to get in."""
    at = AppTest.from_file(str(APP.parent / "pages" / "metrics.py"), default_timeout=60)
    at.run()
    assert "Sign in" in at.info[0].value and not at.metric
