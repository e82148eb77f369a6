"""The head atlas: what each attention head does, averaged over the rows of a dataset.

The math only: one layer's ``[n_heads, seq_len, seq_len]`` weights become per-head scores
(`layer_scores`), and rows' scores are accumulated. Running a model over a row, layer by
layer, is `core.jobs.atlas_rows`. A row's scores are ``[n_stats, n_layers, n_heads]``
float32 in `ATLAS_STATS` order; the atlas is their mean over rows plus, for every head and
score, the rows where it is highest.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.attention.stats import induction_score, layer_head_stats

ATLAS_STATS = ("previous_token", "induction", "first_token", "mean_distance", "entropy", "self")
STAT_LABELS = {
    "previous_token": "Previous token",
    "induction": "Induction",
    "first_token": "First-token sink",
    "mean_distance": "Mean attention distance (tokens)",
    "entropy": "Entropy (nats)",
    "self": "Self-attention",
}
# The kinds of head the atlas ranks: (label, score, highest first?). Local heads are the
# ones with the shortest mean distance; broad heads spread their attention (high entropy).
HEAD_KINDS = (
    ("Previous-token heads", "previous_token", True),
    ("Induction heads", "induction", True),
    ("First-token sinks", "first_token", True),
    ("Local heads", "mean_distance", False),
    ("Broad heads", "entropy", True),
    ("Self heads", "self", True),
)
# Rows kept per head and score for click-through to the rows where the head scores highest.
TOP_ROWS = 10
# The shortest repeated block treated as a probe row (`repeat_period`).
_MIN_PERIOD = 4


def repeat_period(token_ids: list[int], special: frozenset[int] = frozenset()) -> tuple[int, int] | None:
    """``(start, period)`` when the row, special tokens aside, ends with a block said twice.

    ``token_ids[start : start + period]`` equals the ``period`` tokens after it. Probe rows
    (`core.store.datasets.probe_texts`) have this shape; natural text rarely does. The longest
    such block wins; blocks shorter than 4 tokens do not count.
    """
    end = len(token_ids)
    while end > 0 and token_ids[end - 1] in special:
        end -= 1
    first = 0
    while first < end and token_ids[first] in special:
        first += 1
    for period in range((end - first) // 2, _MIN_PERIOD - 1, -1):
        start = end - 2 * period
        if token_ids[start : start + period] == token_ids[start + period : end]:
            return start, period
    return None


def induction_scores(
    layer_attention: np.ndarray, token_ids: list[int], special: frozenset[int] = frozenset()
) -> np.ndarray:
    """Per-head induction score of one layer ``[n_heads, seq_len, seq_len]``: ``[n_heads]``.

    On a repeated block (`repeat_period`) this is `core.attention.stats.induction_score` over the
    block. Otherwise, for each query whose token occurred before (most recently at ``p``,
    with ``p + 1 < q``), the attention to key ``p + 1``, the token that followed; averaged
    over such queries. NaN where no query qualifies (a row without repeats says nothing).
    """
    repeat = repeat_period(token_ids, special)
    if repeat is not None:
        start, period = repeat
        block = layer_attention[:, start : start + 2 * period, start : start + 2 * period]
        return induction_score(block, period)
    last: dict[int, int] = {}
    queries, keys = [], []
    for q, token in enumerate(token_ids):
        p = last.get(token)
        if p is not None and p + 1 < q and token not in special:
            queries.append(q)
            keys.append(p + 1)
        last[token] = q
    if not queries:
        return np.full(layer_attention.shape[0], np.nan, np.float32)
    return layer_attention[:, queries, keys].astype(np.float32).mean(axis=1)


def layer_scores(
    layer_attention: np.ndarray, token_ids: list[int], special: frozenset[int] = frozenset()
) -> np.ndarray:
    """All atlas scores of one layer ``[n_heads, seq_len, seq_len]``: ``[n_stats, n_heads]``."""
    stats = layer_head_stats(layer_attention)
    stats["induction"] = induction_scores(layer_attention, token_ids, special)
    return np.stack([stats[name] for name in ATLAS_STATS]).astype(np.float32)


def scores_to_bytes(scores: np.ndarray) -> bytes:
    """``[n_stats, n_layers, n_heads]`` float32 as little-endian bytes (shape kept by the job)."""
    return np.ascontiguousarray(scores, dtype="<f4").tobytes()


def scores_from_bytes(blob: bytes, n_layers: int, n_heads: int) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").reshape(len(ATLAS_STATS), n_layers, n_heads)


@dataclass
class AtlasResult:
    """The atlas of one job.

    - ``means``: ``{stat: [n_layers, n_heads]}`` mean over the rows where the score exists;
    - ``rows_scored``: ``{stat: [n_layers, n_heads]}`` how many rows that was;
    - ``top_rows`` / ``top_values``: ``{stat: [n_layers, n_heads, k]}`` the row ids with the
      highest scores, highest first (``-1`` / NaN pad heads with fewer than ``k`` rows).
    """

    means: dict[str, np.ndarray]
    rows_scored: dict[str, np.ndarray]
    top_rows: dict[str, np.ndarray]
    top_values: dict[str, np.ndarray]

    @property
    def n_layers(self) -> int:
        return self.means["entropy"].shape[0]

    @property
    def n_heads(self) -> int:
        return self.means["entropy"].shape[1]

    def to_json(self) -> dict[str, Any]:
        def plain(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
            # NaN is not JSON; it travels as null.
            return {
                name: np.where(np.isnan(a), None, a).tolist() if a.dtype.kind == "f" else a.tolist()
                for name, a in arrays.items()
            }

        return {
            "means": plain(self.means),
            "rows_scored": plain(self.rows_scored),
            "top_rows": plain(self.top_rows),
            "top_values": plain(self.top_values),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AtlasResult:
        def floats(part: dict[str, Any]) -> dict[str, np.ndarray]:
            return {name: np.array(v, dtype=np.float32) for name, v in part.items()}

        def ints(part: dict[str, Any]) -> dict[str, np.ndarray]:
            return {name: np.array(v, dtype=np.int64) for name, v in part.items()}

        return cls(
            means=floats(data["means"]),
            rows_scored=ints(data["rows_scored"]),
            top_rows=ints(data["top_rows"]),
            top_values=floats(data["top_values"]),
        )


class AtlasAccumulator:
    """Streams row scores into means and per-head top rows; memory independent of row count."""

    def __init__(self, n_layers: int, n_heads: int, k: int = TOP_ROWS) -> None:
        shape = (len(ATLAS_STATS), n_layers, n_heads)
        self.k = k
        self._sum = np.zeros(shape, np.float64)
        self._count = np.zeros(shape, np.int64)
        self._top_rows = np.full((*shape, 0), -1, np.int64)
        self._top_values = np.full((*shape, 0), np.nan, np.float32)
        self._pending_rows: list[int] = []
        self._pending: list[np.ndarray] = []

    def add(self, row_id: int, scores: np.ndarray) -> None:
        """Add one row's ``[n_stats, n_layers, n_heads]`` scores."""
        if scores.shape != self._sum.shape:
            raise ValueError(f"Row scores must be shaped {list(self._sum.shape)}, got {list(scores.shape)}.")
        present = ~np.isnan(scores)
        self._sum += np.where(present, scores, 0.0)
        self._count += present
        self._pending_rows.append(row_id)
        self._pending.append(scores)
        if len(self._pending) >= 256:
            self._merge()

    def _merge(self) -> None:
        """Fold the buffered rows into the running top-k (one sort per batch of rows)."""
        if not self._pending:
            return
        values = np.concatenate([self._top_values, np.stack(self._pending, axis=-1)], axis=-1)
        rows = np.broadcast_to(
            np.array(self._pending_rows, np.int64), (*values.shape[:-1], len(self._pending))
        )
        rows = np.concatenate([self._top_rows, rows], axis=-1)
        # NaN sorts last with a descending key of -inf; ties keep the earlier row first.
        order = np.argsort(-np.nan_to_num(values, nan=-np.inf), axis=-1, kind="stable")[..., : self.k]
        self._top_values = np.take_along_axis(values, order, axis=-1)
        self._top_rows = np.where(np.isnan(self._top_values), -1, np.take_along_axis(rows, order, axis=-1))
        self._pending_rows, self._pending = [], []

    def result(self) -> AtlasResult:
        self._merge()
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(self._count > 0, self._sum / np.maximum(self._count, 1), np.nan)
        pad = self.k - self._top_rows.shape[-1]
        top_rows = np.pad(self._top_rows, [(0, 0)] * 3 + [(0, pad)], constant_values=-1)
        top_values = np.pad(self._top_values, [(0, 0)] * 3 + [(0, pad)], constant_values=np.nan)
        return AtlasResult(
            means={name: means[i].astype(np.float32) for i, name in enumerate(ATLAS_STATS)},
            rows_scored={name: self._count[i] for i, name in enumerate(ATLAS_STATS)},
            top_rows={name: top_rows[i] for i, name in enumerate(ATLAS_STATS)},
            top_values={name: top_values[i].astype(np.float32) for i, name in enumerate(ATLAS_STATS)},
        )


@dataclass(frozen=True)
class RankedHead:
    layer: int
    head: int
    value: float


def top_heads(values: np.ndarray, *, k: int = 5, highest: bool = True) -> list[RankedHead]:
    """The ``k`` heads of ``values`` ``[n_layers, n_heads]`` with the highest (or lowest) score.

    Heads without a score (NaN) are never ranked.
    """
    flat = values.astype(np.float64).ravel()
    valid = np.flatnonzero(~np.isnan(flat))
    order = valid[np.argsort(-flat[valid] if highest else flat[valid], kind="stable")][:k]
    n_heads = values.shape[1]
    return [RankedHead(int(i // n_heads), int(i % n_heads), float(flat[i])) for i in order]


def atlas_csv(result: AtlasResult) -> bytes:
    """One line per head: ``layer, head``, then each score's mean and the rows it covers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["layer", "head", *ATLAS_STATS, *(f"{name}_rows" for name in ATLAS_STATS)])
    for layer in range(result.n_layers):
        for head in range(result.n_heads):
            means = [result.means[name][layer, head] for name in ATLAS_STATS]
            writer.writerow(
                [
                    layer,
                    head,
                    *("" if np.isnan(v) else f"{v:.6g}" for v in means),
                    *(int(result.rows_scored[name][layer, head]) for name in ATLAS_STATS),
                ]
            )
    return out.getvalue().encode("utf-8")
