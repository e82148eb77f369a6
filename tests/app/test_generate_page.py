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
    assert "not in the local Hugging Face cache" in app.warning[0].value
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
