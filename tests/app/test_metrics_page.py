"""Metrics screen under AppTest: numbers, charts and readiness render."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"


def test_metrics_page_shows_numbers_and_readiness() -> None:
    """The page renders its headline metrics, charts, and database/cache readiness."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/metrics.py").run()
    assert not at.exception
    labels = {m.label for m in at.metric}
    assert {"Analyses (1 h)", "Cache hit rate", "p50 latency", "CPU", "RAM"} <= labels
    readiness = [s.value for s in at.success] + [w.value for w in at.warning]
    assert any(r.startswith("database:") for r in readiness)
    assert any(r.startswith("result cache:") for r in readiness)
