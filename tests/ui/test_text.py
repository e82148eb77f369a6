"""HTML built from user text is escaped; tables and figures have the right shape."""

from __future__ import annotations

import numpy as np
import pytest

from core.domain.analysis import AnalysisMode
from core.service.inference import analyse
from tests.core.service.test_inference import BIG, _request
from tests.fixtures.tiny import tiny_model
from ui import plots
from ui.text import next_token_rows, prompt_and_continuation_html


@pytest.fixture(scope="module")
def generated():
    model = tiny_model("causal")
    request = _request(model, "<script>alert(1)</script>\nline two", AnalysisMode.GENERATE, max_new_tokens=3)
    return analyse(model, request, full_attention_max_bytes=BIG)


def test_user_text_is_escaped(generated) -> None:
    """Script tags in the prompt are shown as text, never executed."""
    html = prompt_and_continuation_html(generated)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<br>" in html and "hl-continuation" in html


def test_next_token_rows(generated) -> None:
    """One row per generated step, with the chosen token and the top-k."""
    rows = next_token_rows(generated)
    assert len(rows) == 3
    assert all(0.0 <= r["probability"] <= 1.0 for r in rows)
    assert all(r["top-k"].count("%") == 3 for r in rows)


def test_figures(generated) -> None:
    """Heatmaps take [query, key] and [layer, head] arrays and reject mismatches."""
    attention = generated.attention.astype(np.float32)
    figure = plots.head_heatmap(
        attention[0, 0], generated.tokens, layer=0, head=0, prompt_len=generated.prompt_len
    )
    assert figure.data[0].z.shape == attention[0, 0].shape
    with pytest.raises(ValueError, match="does not match"):
        plots.head_heatmap(attention[0, 0], generated.tokens[:-1], layer=0, head=0)
    stats = plots.head_stat_heatmap(generated.head_stats.entropy, title="Entropy", unit="nats")
    assert stats.data[0].z.shape == (2, 4)
    bars = plots.next_token_bars(generated.next_tokens[0].candidates, title="t")
    assert len(bars.data[0].x) == 3
    overview = plots.overview_heatmap(np.ones((4, 4)), seq_len=100, layer=0, head=0)
    assert overview.data[0].x[0] == pytest.approx(12.5)
