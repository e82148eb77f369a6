"""The fast attention view in Chromium: 1,024 tokens on SmolLM2, overview then one head's detail."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from core.domain.settings import get_settings
from core.models.huggingface.loading import resolve_weights_dir
from core.models.registry import load_registry
from tests.browser.conftest import wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.model]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
MODEL_ID = "smollm2-135m-instruct"
N_TOKENS = 1024
SENTENCES = [
    "The river carried sand and stories down to the harbour.",
    "In 1969 two people walked on the Moon for the first time.",
    "Constants such as 3.14159 and 2.71828 appear everywhere in physics.",
    "She said: never trust a model you have not looked inside!",
    "Attention heads often look back at the previous token or the first one.",
    "Our quarterly report, due on Friday, covers sales in Lisbon and Osaka.",
]
# Canvas pixels that differ from the white background (JS, evaluated in the view's frame).
COUNT_DRAWN = """(id) => {
  const canvas = document.getElementById(id);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250)) drawn++;
  }
  return drawn;
}"""

# Whether the view's frame shows the detail of a head ("layer:head"). Looked up afresh each
# time: Streamlit may rebuild the frame when elements above the result come or go.
DETAIL_SHOWN = """(head) => {
  const frame = document.querySelector("iframe[src*='attention_view']");
  const body = frame && frame.contentDocument && frame.contentDocument.body;
  return !!body && body.dataset.detailHead === head && body.dataset.detail === 'painted';
}"""


def _text_of(n_tokens: int) -> str:
    """Varied sentences, cut at a token boundary so SmolLM2 reads exactly `n_tokens` tokens."""
    settings = get_settings()
    spec = load_registry(settings.registry_path).get(MODEL_ID)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolve_weights_dir(spec, settings.model_cache_dir), trust_remote_code=False
    )
    text = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(4 * n_tokens // 12))
    encoding = tokenizer(text, return_offsets_mapping=True)
    text = text[: encoding["offset_mapping"][n_tokens - 1][1]]
    assert len(tokenizer(text)["input_ids"]) == n_tokens
    return text


def test_fast_view_draws_overview_and_loads_a_head(server_url: str, browser, artifacts: Path) -> None:
    """At 1,024 tokens the fast view opens first, draws every head, and a click loads one head's map."""
    text = _text_of(N_TOKENS)
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    outside: list[str] = []

    def record(request) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in {"http", "https", "ws", "wss"} and parsed.hostname not in LOCAL_HOSTS:
            outside.append(request.url)

    context.on("request", record)
    page = context.new_page()
    page.goto(server_url)
    wait_for_app(page)
    page.get_by_text("Encode", exact=True).click()
    wait_for_app(page)
    page.get_by_role("textbox", name="Text", exact=True).fill(text)
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("iframe[src*='attention_view']", timeout=240_000)
    wait_for_app(page)
    assert "1,024" in page.locator("[data-testid='stMetric']").first.inner_text()

    frame = page.wait_for_selector("iframe[src*='attention_view']").content_frame()
    frame.wait_for_selector("body[data-overview='painted']", timeout=60_000)
    assert frame.evaluate(COUNT_DRAWN, "overview") > 10_000
    assert frame.evaluate(COUNT_DRAWN, "detail") == 0  # nothing selected, nothing fetched

    # Layer 3, head 2: the grid has a 30 px label column, a 16 px label row, and square cells.
    overview = frame.locator("#overview")
    box = overview.bounding_box()
    assert box is not None
    step = (box["width"] - 30) / 30
    overview.click(position={"x": 30 + 3.5 * step, "y": 16 + 2.5 * step})
    page.wait_for_function(DETAIL_SHOWN, arg="3:2", timeout=240_000)
    wait_for_app(page)
    frame = page.wait_for_selector("iframe[src*='attention_view']").content_frame()
    assert frame.evaluate(COUNT_DRAWN, "detail") > 1_000
    caption = frame.locator("#detail-caption").inner_text()
    assert "Layer 3, head 2" in caption and "full map" in caption

    frame.locator("#tokens span").nth(700).hover()
    assert frame.locator("#tokens span.focus").count() == 1
    page.screenshot(path=str(artifacts / "attention_view.png"), full_page=True)
    assert outside == [], f"requests left localhost: {outside}"
    context.close()
