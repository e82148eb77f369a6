"""Generate screen under AppTest: a run shows results; bad input shows a message."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 240
APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    return at


def _select_model(at: AppTest, model_id: str) -> None:
    at.selectbox(key="generate.model").set_value(model_id).run()


def test_page_opens_with_registry_models(app: AppTest) -> None:
    """Every registry model is offered; hub models are marked unavailable with a reason."""
    options = app.selectbox(key="generate.model").options
    assert any("SmolLM2" in o for o in options)
    assert any("GPT-2" in o and "unavailable" in o for o in options)
    _select_model(app, "gpt2")
    # Non-admins get a reason without server details (paths); admins see it on the Models screen.
    assert "unavailable on this server right now; ask an admin" in app.warning[0].value
    assert app.button(key="generate.run").disabled


@pytest.mark.model
def test_generate_run_shows_continuation_and_views(app: AppTest) -> None:
    """A SmolLM2 run shows prompt and continuation, timings, and the top-k table."""
    app.text_area(key="generate.text").set_value("The capital of France is")
    app.number_input(key="generate.max_new_tokens").set_value(4)
    app.button(key="generate.run").click().run()
    assert not app.exception
    assert not app.error
    html = [m.value for m in app.markdown if "hl-continuation" in m.value]
    assert html and "The capital of France is" in html[0]
    labels = [m.label for m in app.metric]
    assert {"Tokens", "Load", "Forward", "Render"} <= set(labels)
    assert len(app.dataframe) >= 1


def test_empty_text_is_refused(app: AppTest) -> None:
    """Whitespace-only text gets a clear message and no run."""
    app.text_area(key="generate.text").set_value("   ")
    app.button(key="generate.run").click().run()
    assert "Enter some text" in app.error[0].value
    assert not app.exception


@pytest.mark.model
def test_too_long_text_shows_count_and_limit(app: AppTest) -> None:
    """Text over the token limit is refused with the count and the limit."""
    _select_model(app, "all-minilm-l6-v2")
    app.text_area(key="generate.text").set_value("word " * 700)
    app.button(key="generate.run").click().run()
    assert not app.exception
    message = app.error[0].value
    assert "accepts at most 512" in message and "tokens" in message


@pytest.mark.model
def test_repeat_is_cached_and_limit_refuses_politely(monkeypatch: pytest.MonkeyPatch) -> None:
    """A repeat is served from the cache; past the limit a run is refused and the result stays."""
    from core.domain.settings import get_settings
    from ui.resources import get_service

    monkeypatch.setenv("HEADLIGHT_RATE_LIMITS", '{"analyst": "2/minute", "anonymous": "2/minute"}')
    get_settings.cache_clear()
    try:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.run()
        at.radio(key="generate.mode").set_value(at.radio(key="generate.mode").options[1])  # Encode
        at.text_area(key="generate.text").set_value("Caching makes repeats instant.")
        at.button(key="generate.run").click().run()
        assert not at.error
        get_service().flush()  # the cache write runs in the background
        at.button(key="generate.run").click().run()
        assert any("result cache" in t.value for t in at.toast)
        assert not at.warning  # the result shown is for the input above
        at.text_area(key="generate.text").set_value("A new text the limit refuses.")
        at.button(key="generate.run").click().run()
        assert "all 2 analyses allowed per minute" in at.error[0].value
        assert [m for m in at.markdown if "hl-text" in m.value]  # the last result is still shown
        assert "previous input" in at.warning[0].value  # ... and says it is not for the new text
        assert any("0 of 2 analyses left" in c.value for c in at.caption)
    finally:
        get_settings.cache_clear()


@pytest.mark.model
def test_redaction_applies_before_the_model_runs(app: AppTest) -> None:
    """With redaction on, the analysed (and so saved) text holds placeholders, not the data."""
    app.radio(key="generate.mode").set_value(app.radio(key="generate.mode").options[1])  # Encode
    app.text_area(key="generate.text").set_value("Mail jane.doe@example.com or call +44 20 7946 0958.")
    app.checkbox(key="generate.redact").check()
    app.button(key="generate.run").click().run()
    assert not app.exception and not app.error
    assert "1 email, 1 phone" in app.info[0].value
    shown = next(m.value for m in app.markdown if "hl-text" in m.value)
    assert "[EMAIL]" in shown and "jane.doe" not in shown and "7946" not in shown
