"""Head-atlas scores on crafted attention with known answers, aggregation, and real models."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch

from core.attention import atlas
from core.attention.atlas import ATLAS_STATS, AtlasAccumulator, AtlasResult
from core.attention.stats import induction_score, layer_head_stats
from core.jobs import atlas_rows
from core.store import datasets
from tests.fixtures.tiny import tiny_model


def _one_hot(seq_len: int, keys: list[int]) -> np.ndarray:
    """One head whose query q attends only to ``keys[q]``: ``[1, seq_len, seq_len]``."""
    attention = np.zeros((1, seq_len, seq_len), np.float32)
    attention[0, np.arange(seq_len), keys] = 1.0
    return attention


def test_previous_token_head_scores_one() -> None:
    """A head that always looks one token back is a perfect previous-token head."""
    seq_len = 8
    head = _one_hot(seq_len, [0, *range(seq_len - 1)])
    scores = dict(zip(ATLAS_STATS, atlas.layer_scores(head, list(range(seq_len)))[:, 0], strict=True))
    assert scores["previous_token"] == pytest.approx(1.0)
    assert scores["self"] == pytest.approx(1 / seq_len)
    assert scores["mean_distance"] == pytest.approx((seq_len - 1) / seq_len)
    assert scores["entropy"] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(scores["induction"])  # no token repeats: nothing to say


def test_induction_head_on_a_repeated_block() -> None:
    """On X + X, a head attending to the token after the earlier copy scores 1; others do not."""
    period, special = 5, frozenset({101, 102})
    block = [7, 3, 9, 4, 8]
    ids = [101, *block, *block, 102]  # [CLS] X X [SEP]
    seq_len = len(ids)
    assert atlas.repeat_period(ids, special) == (1, period)
    keys = [q - period + 1 if 1 + period <= q < 1 + 2 * period else 0 for q in range(seq_len)]
    induction_head = _one_hot(seq_len, keys)
    previous_head = _one_hot(seq_len, [0, *range(seq_len - 1)])
    layer = np.concatenate([induction_head, previous_head])
    scores = atlas.induction_scores(layer, ids, special)
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(0.0)
    # Exactly core.attention.stats.induction_score over the block.
    block_scores = induction_score(layer[:, 1 : 1 + 2 * period, 1 : 1 + 2 * period], period)
    np.testing.assert_allclose(scores, block_scores)


def test_induction_on_natural_text_uses_previous_occurrences() -> None:
    """Without a doubled block, each repeated token's query looks for the token after its
    previous occurrence; adjacent repeats and special tokens do not count."""
    ids = [1, 5, 6, 5, 5, 6, 2]  # token 5 at 1, 3, 4; token 6 at 2, 5
    special = frozenset({1, 2})
    assert atlas.repeat_period(ids, special) is None
    # Qualifying queries: q=3 (prev 1 -> key 2), q=5 (prev 2 -> key 3); q=4 has prev 3 -> key 4 = q.
    keys = [0, 0, 1, 2, 0, 3, 0]
    head = _one_hot(len(ids), keys)
    assert atlas.induction_scores(head, ids, special)[0] == pytest.approx(1.0)
    spread = np.full((1, 7, 7), 1 / 7, np.float32)
    assert atlas.induction_scores(spread, ids, special)[0] == pytest.approx(1 / 7)


def test_layer_scores_agree_with_core_stats() -> None:
    """Every score but induction is `layer_head_stats`' value, in ATLAS_STATS order."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 6, 6)).astype(np.float32)
    layer = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    scores = atlas.layer_scores(layer, [1, 2, 3, 4, 5, 6])
    stats = layer_head_stats(layer)
    for i, name in enumerate(ATLAS_STATS):
        if name != "induction":
            np.testing.assert_allclose(scores[i], stats[name], rtol=1e-6)
    assert scores.shape == (len(ATLAS_STATS), 3)


def test_accumulator_means_skip_missing_scores_and_rank_rows() -> None:
    """Means ignore NaN (rows without repeats); top rows are per head, highest first."""
    acc = AtlasAccumulator(n_layers=1, n_heads=2, k=2)
    values = {10: 0.2, 11: 0.9, 12: 0.5}
    for row_id, value in values.items():
        scores = np.full((len(ATLAS_STATS), 1, 2), value, np.float32)
        scores[ATLAS_STATS.index("induction"), 0, 1] = np.nan if row_id != 12 else 0.7
        acc.add(row_id, scores)
    result = acc.result()
    assert result.means["entropy"][0, 0] == pytest.approx(np.mean(list(values.values())))
    assert result.means["induction"][0, 1] == pytest.approx(0.7)
    assert result.rows_scored["induction"].tolist() == [[3, 1]]
    assert result.top_rows["entropy"][0, 0].tolist() == [11, 12]
    assert result.top_rows["induction"][0, 1].tolist() == [12, -1]
    assert np.isnan(result.top_values["induction"][0, 1, 1])
    again = AtlasResult.from_json(result.to_json())
    np.testing.assert_array_equal(again.top_rows["induction"], result.top_rows["induction"])
    np.testing.assert_allclose(again.means["entropy"], result.means["entropy"])
    with pytest.raises(ValueError, match="shaped"):
        acc.add(13, np.zeros((1, 1, 1), np.float32))


def test_accumulator_merges_in_batches() -> None:
    """More rows than one merge batch keep the true top-k."""
    acc = AtlasAccumulator(n_layers=1, n_heads=1, k=3)
    for row_id in range(600):
        acc.add(row_id, np.full((len(ATLAS_STATS), 1, 1), (row_id * 37) % 600, np.float32))
    top = acc.result().top_rows["self"][0, 0].tolist()
    assert sorted(((r * 37) % 600 for r in top), reverse=True) == [599, 598, 597]


def test_top_heads_and_csv() -> None:
    """Heads rank by value (lowest first for local heads); NaN never ranks; CSV has a line per head."""
    values = np.array([[0.1, np.nan], [0.9, 0.5]], np.float32)
    assert [(h.layer, h.head) for h in atlas.top_heads(values, k=2)] == [(1, 0), (1, 1)]
    assert [(h.layer, h.head) for h in atlas.top_heads(values, k=1, highest=False)] == [(0, 0)]
    acc = AtlasAccumulator(2, 2)
    scores = np.stack([values] * len(ATLAS_STATS))
    acc.add(1, scores)
    rows = list(csv.DictReader(io.StringIO(atlas.atlas_csv(acc.result()).decode())))
    assert len(rows) == 4 and rows[1]["layer"] == "0" and rows[1]["head"] == "1"
    assert rows[1]["entropy"] == "" and rows[1]["entropy_rows"] == "0"
    assert float(rows[2]["previous_token"]) == pytest.approx(0.9)


def test_row_scores_on_a_tiny_model_match_its_attention() -> None:
    """The hooked pass gives the statistics of the attention the model returns itself."""
    loaded = tiny_model("causal", n_layers=2, n_heads=4)
    ids, truncated = atlas_rows.row_token_ids(loaded, "the cat sat on the mat " * 3, max_tokens=12)
    assert truncated and len(ids) == 12
    scores = atlas_rows.row_head_scores(loaded, ids)
    assert scores.shape == (len(ATLAS_STATS), 2, 4)
    with torch.inference_mode():
        out = loaded.hf_model(input_ids=torch.tensor([ids]), output_attentions=True)
    for layer, weights in enumerate(out.attentions):
        expected = atlas.layer_scores(weights[0].float().numpy(), ids, loaded.special_ids)
        np.testing.assert_allclose(scores[:, layer], expected, rtol=1e-4, atol=1e-6)
    blob = atlas.scores_to_bytes(scores)
    np.testing.assert_array_equal(atlas.scores_from_bytes(blob, 2, 4), scores)
    with pytest.raises(ValueError, match="no tokens"):
        atlas_rows.row_head_scores(loaded, [])


@pytest.mark.model
def test_smollm2_has_induction_heads_on_the_probe(smollm2) -> None:
    """On the probe rows SmolLM2 repeats each block token for token, and some head does
    induction almost perfectly while the average head does not."""
    rows = datasets.probe_texts(4, 16, seed=3)
    special = smollm2.special_ids
    acc = AtlasAccumulator(smollm2.info.n_layers, smollm2.info.n_heads)
    for row_id, text in enumerate(rows):
        ids, _ = atlas_rows.row_token_ids(smollm2, text, max_tokens=512)
        assert atlas.repeat_period(ids, special) is not None
        acc.add(row_id, atlas_rows.row_head_scores(smollm2, ids))
    induction = acc.result().means["induction"]
    best = atlas.top_heads(induction, k=1)[0]
    assert best.value > 0.7 and float(np.nanmedian(induction)) < 0.3
    assert best.layer > 0  # induction needs a previous-token head in an earlier layer
