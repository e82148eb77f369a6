"""Compare screen under AppTest: a real run shows the heatmap; failures and bad input show
messages; a comparison is saved and reopened without running models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.attention.comparison import CompareOutcome, CompareRequest, compare
from core.domain.settings import get_settings
from db.session import dispose_all
from tests.factories import make_analysis
from tests.pages.accounts import add_account, signed_in

TIMEOUT = 240
APP = Path(__file__).resolve().parents[2] / "app.py"
TEXT = "The quick brown fox jumps over the lazy dog"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AppTest]:
    # One comparison is two analyses against the rate limit; saves go to a scratch database.
    monkeypatch.setenv("HEADLIGHT_RATE_LIMITS", '{"analyst": "100/minute", "anonymous": "100/minute"}')
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("HEADLIGHT_DATABASE_URL", f"sqlite:///{tmp_path / 'headlight.db'}")
    get_settings.cache_clear()
    add_account("alice")
    at = signed_in(AppTest.from_file(str(APP), default_timeout=TIMEOUT))
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    yield at
    dispose_all()
    get_settings.cache_clear()


def _charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def _synthetic_outcome(*, fail_b: bool = False) -> CompareOutcome:
    a = make_analysis(TEXT, model_id="smollm2-135m-instruct", n_layers=2, n_heads=3)
    b = make_analysis(TEXT, model_id="all-minilm-l6-v2", n_layers=2, n_heads=2, seed=3)
    request = CompareRequest(a=a.request, b=b.request)
    if fail_b:
        return CompareOutcome(request=request, a=a, error_b="all-MiniLM-L6-v2 failed to load: disk error")
    return CompareOutcome.of(compare(a, b), request)


def test_page_offers_registry_pairs_and_marks_unavailable(app: AppTest) -> None:
    """Both pickers list the registry; an unavailable model disables Compare with a reason."""
    assert app.selectbox(key="compare.model_a").value == "smollm2-135m-instruct"
    assert app.selectbox(key="compare.model_b").value == "all-minilm-l6-v2"
    assert any("unavailable" in o for o in app.selectbox(key="compare.model_b").options)
    app.selectbox(key="compare.model_b").set_value("gpt2").run()
    # Not an admin: a generic reason, never the server paths the real one names.
    assert "unavailable on this server" in app.warning[0].value and "/" not in app.warning[0].value
    assert app.button(key="compare.run").disabled


def test_empty_text_is_refused(app: AppTest) -> None:
    """Whitespace-only text gets a clear message and nothing runs."""
    app.text_area(key="compare.text").set_value("   ")
    app.button(key="compare.run").click().run()
    assert not app.exception
    assert "Enter some text" in app.error[0].value
    assert not _charts(app)


def test_failed_side_leaves_the_other_visible(app: AppTest) -> None:
    """B failing to load shows its message; A's text and attention view are still there."""
    app.session_state["compare.outcome"] = _synthetic_outcome(fail_b=True)
    app.run()
    assert not app.exception
    assert "Model B (all-minilm-l6-v2): all-MiniLM-L6-v2 failed to load" in app.error[0].value
    assert [m for m in app.markdown if "hl-text" in m.value]


def test_selecting_a_head_follows_its_match_and_saves(app: AppTest) -> None:
    """Choosing an A head points both full views at it and its best match; Save then Open."""
    outcome = _synthetic_outcome()
    assert outcome.comparison is not None
    app.session_state["compare.outcome"] = outcome
    app.run()
    assert not app.exception
    app.selectbox(key="compare.head_a").set_value(4).run()
    match = int(outcome.comparison.best_in_b[4])
    assert (app.session_state["compare.a.hm.layer"], app.session_state["compare.a.hm.head"]) == (1, 1)
    assert (app.session_state["compare.b.hm.layer"], app.session_state["compare.b.hm.head"]) == divmod(
        match, 2
    )
    assert "**A L1H1** best matches" in "".join(m.value for m in app.markdown)

    app.button(key="compare.save.button").click().run()
    assert not app.exception
    assert app.success[0].value.startswith("Saved as comparison #")
    app.session_state["compare.outcome"] = None
    app.run()
    app.button(key="compare.open.button").click().run()
    assert not app.exception
    assert {m.label for m in app.metric} >= {"Shared spans", "Only in A", "Only in B"}


@pytest.mark.model
def test_smollm2_vs_minilm_shows_heatmap(app: AppTest) -> None:
    """A real run: the similarity heatmap, flags, per-layer plots and both views, no error."""
    app.text_area(key="compare.text").set_value("The cat sat on the mat because it was warm.")
    app.button(key="compare.run").click().run()
    assert not app.exception
    assert not app.error
    labels = {m.label for m in app.metric}
    assert {"Shared spans", "Only in A", "Only in B", "Forward A + B", "Comparison"} <= labels
    assert len(_charts(app)) >= 4  # similarity, two span maps, per-layer summary, ...
    shared = next(m for m in app.metric if m.label == "Shared spans")
    assert shared.value == "11"  # ten words and the full stop
