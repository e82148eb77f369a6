"""Two models on one text: which head of A does what head of B does.

Heads are numbered ``layer * n_heads + head``. Each head's attention is projected onto the
spans the two tokenizations share (`core.attention.alignment`), giving ``[n_spans, n_spans]`` rows that
are distributions over key spans. Two heads' **similarity** is the Bhattacharyya coefficient
of their rows, averaged over the query spans:

``sim(p, q) = mean_r sum_k sqrt(p[r, k] * q[r, k])`` (= 1 - squared Hellinger distance):
1 for identical heads, 0 for heads that attend to disjoint spans in every row. It is one
matrix product of the heads' square roots (``[a_heads, n_spans²] @ [n_spans², b_heads]``),
so every pair of heads costs what BLAS charges for a multiply-add per key.

Why not 1 − Jensen–Shannon divergence (version 1 of this module): on SmolLM2-135M vs
Gemma-3-270M over a 104-word paragraph the two rank the 19,440 head pairs alike (Spearman
0.9986; the same best match for 89 % of A's heads and 94 % of B's), but the exact JSD needs
a logarithm per pair, key and query — 350 ms on two cores against 10 ms here, more than the
two forward passes together. Comparisons saved with JSD keep it (`Comparison.metric`).

Each head's **best match** is the most similar head of the other model. A head whose best
match scores below `MATCH_THRESHOLD` is flagged "only in A" (or "only in B"): no head of the
other model attends in a similar way on this text.

Where an analysis kept no full attention (long inputs), its heads are rebuilt from the
compact top-k (`core.attention.compact.head_detail`), so the similarity is approximate; comparisons
of more than `MAX_SPANS` spans are refused, since the cost grows with ``n_spans ** 2``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from core.attention import codec
from core.attention import compact as compact_codec
from core.attention.alignment import Alignment, Granularity, SpanPieces, align
from core.domain.analysis import Analysis, AnalysisMode, AnalysisRequest, GenerationParams
from core.domain.errors import HeadlightError

FORMAT = "headlight.comparison"
FORMAT_VERSION = 2  # 2: the similarity metric is named (1: always Jensen–Shannon)
# Measured on the 104-word paragraph of bench/bench_compare.py: median best match 0.69 for
# SmolLM2's heads in Gemma-3-270M and 0.85 the other way; 0.6 flags SmolLM2's most
# idiosyncratic 30 % (80 of 270) and none of Gemma's, as 0.5 did under JSD (97 % the same flags).
MATCH_THRESHOLD = 0.6
BHATTACHARYYA = "bhattacharyya"
JENSEN_SHANNON = "jensen-shannon"  # comparisons saved before format version 2
# About 200 words. The projected heads take heads × n_spans² floats on each side (SmolLM2's
# 270 heads: 70 MB at 256 spans, twice that with their square roots).
MAX_SPANS = 256

Source = Literal["full", "top-k"]
Side = Literal["a", "b"]
# Called with the side, the fraction done and a message, as each model loads and runs.


class CompareRequest(BaseModel):
    """One text for models A and B, with the same generation parameters and seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    a: AnalysisRequest
    b: AnalysisRequest
    granularity: Granularity = Granularity.WORD

    @classmethod
    def of(
        cls,
        *,
        model_a: tuple[str, str],
        model_b: tuple[str, str],
        text: str,
        generate: bool,
        generation: GenerationParams,
        top_k_next: int,
        granularity: Granularity = Granularity.WORD,
    ) -> CompareRequest:
        """Requests for ``(model id, kind)`` A and B; encoders always encode.

        Raises pydantic's ``ValidationError`` for bad text or parameters.
        """

        def request(model: tuple[str, str]) -> AnalysisRequest:
            model_id, kind = model
            mode = AnalysisMode.GENERATE if generate and kind == "causal" else AnalysisMode.ENCODE
            return AnalysisRequest(
                model_id=model_id, text=text, mode=mode, generation=generation, top_k_next=top_k_next
            )

        return cls(a=request(model_a), b=request(model_b), granularity=granularity)


@dataclass
class CompareTimings:
    """Seconds spent after the two forward passes, up to the similarity matrix."""

    align_s: float = 0.0
    project_s: float = 0.0
    similarity_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.align_s + self.project_s + self.similarity_s


@dataclass(frozen=True)
class LayerSummary:
    """Per layer of one model, over its heads: ``[n_layers]`` arrays.

    ``best_mean``/``best_min``: mean and lowest best-match similarity; ``flagged``: heads
    with no good match; ``match_depth``: mean relative depth (0 first layer, 1 last) of the
    other model's layers where the best matches sit.
    """

    best_mean: np.ndarray
    best_min: np.ndarray
    flagged: np.ndarray
    match_depth: np.ndarray


@dataclass(eq=False)  # arrays have no single truth value
class Comparison:
    """The result of comparing analysis ``a`` with analysis ``b`` on the same text.

    ``similarity`` is ``[a_heads, b_heads]`` float32 (heads numbered ``layer * n_heads +
    head``); ``sources`` says whether each side's heads came from the full attention or
    from the compact top-k (approximate).
    """

    a: Analysis
    b: Analysis
    alignment: Alignment
    similarity: np.ndarray
    sources: tuple[Source, Source]
    threshold: float = MATCH_THRESHOLD
    timings: CompareTimings = field(default_factory=CompareTimings)
    metric: str = BHATTACHARYYA

    @property
    def best_in_b(self) -> np.ndarray:
        """``[a_heads]`` index of each A head's most similar B head."""
        return self.similarity.argmax(axis=1)

    @property
    def best_in_a(self) -> np.ndarray:
        """``[b_heads]`` index of each B head's most similar A head."""
        return self.similarity.argmax(axis=0)

    @property
    def best_score_a(self) -> np.ndarray:
        return self.similarity.max(axis=1)

    @property
    def best_score_b(self) -> np.ndarray:
        return self.similarity.max(axis=0)

    @property
    def only_in_a(self) -> np.ndarray:
        """Indexes of A heads whose best match in B is below the threshold."""
        return np.flatnonzero(self.best_score_a < self.threshold)

    @property
    def only_in_b(self) -> np.ndarray:
        return np.flatnonzero(self.best_score_b < self.threshold)

    @property
    def forward_s(self) -> float:
        """The two models' forward passes (or generations), in seconds."""
        return self.a.timings.forward_s + self.b.timings.forward_s

    def layer_matrix(self, reduce: Literal["max", "mean"] = "max") -> np.ndarray:
        """``[a_layers, b_layers]``: per layer pair, the best head pair (``max``) or the mean
        over A's heads of their best match among the B layer's heads (``mean``)."""
        a, b = self.a.model, self.b.model
        grid = self.similarity.reshape(a.n_layers, a.n_heads, b.n_layers, b.n_heads)
        best = grid.max(axis=3)  # [a_layers, a_heads, b_layers]
        return best.max(axis=1) if reduce == "max" else best.mean(axis=1)

    def layer_summary(self, side: Side) -> LayerSummary:
        """Per-layer summary of ``side``'s heads against the whole other model."""
        mine, other = (self.a.model, self.b.model) if side == "a" else (self.b.model, self.a.model)
        matrix = self.similarity if side == "a" else self.similarity.T
        scores = matrix.max(axis=1).reshape(mine.n_layers, mine.n_heads)
        match_layer = (matrix.argmax(axis=1) // other.n_heads).reshape(mine.n_layers, mine.n_heads)
        return LayerSummary(
            best_mean=scores.mean(axis=1),
            best_min=scores.min(axis=1),
            flagged=(scores < self.threshold).sum(axis=1),
            match_depth=match_layer.mean(axis=1) / max(other.n_layers - 1, 1),
        )


def split_head(index: int, n_heads: int) -> tuple[int, int]:
    """``(layer, head)`` of flat head ``index``."""
    return divmod(int(index), n_heads)


def _layer_attention(analysis: Analysis, layer: int) -> np.ndarray:
    """``[n_heads, seq_len, seq_len]``: full attention, else rebuilt from the compact top-k."""
    if analysis.attention is not None:
        return analysis.attention[layer]
    compact = analysis.compact
    return np.stack([compact_codec.head_detail(compact, layer, head) for head in range(compact.n_heads)])


def projected_heads(analysis: Analysis, pieces: SpanPieces) -> np.ndarray:
    """Every head of ``analysis`` on the shared spans: ``[n_layers * n_heads, n_spans, n_spans]``."""
    info = analysis.model
    out = np.empty((info.n_layers * info.n_heads, pieces.n_spans, pieces.n_spans), np.float32)
    for layer in range(info.n_layers):  # one layer at a time bounds the float32 copies
        out[layer * info.n_heads : (layer + 1) * info.n_heads] = pieces.project(
            _layer_attention(analysis, layer)
        )
    return out


def head_span_map(analysis: Analysis, pieces: SpanPieces, layer: int, head: int) -> np.ndarray:
    """One head on the shared spans, ``[n_spans, n_spans]`` (query span, key span)."""
    if analysis.attention is not None:
        return pieces.project(analysis.attention[layer, head])
    return pieces.project(compact_codec.head_detail(analysis.compact, layer, head))


def head_similarity(heads_a: np.ndarray, heads_b: np.ndarray) -> np.ndarray:
    """``[a_heads, b_heads]`` float32 similarity (mean Bhattacharyya coefficient) of projected heads.

    ``heads_a`` is ``[a_heads, n_spans, n_spans]``, ``heads_b`` ``[b_heads, n_spans,
    n_spans]``, rows summing to 1. Identical heads score 1, heads attending to disjoint
    spans in every row score 0.
    """
    n_spans = heads_a.shape[1]
    if heads_b.shape[1:] != (n_spans, n_spans) or heads_a.shape[2] != n_spans:
        raise ValueError(
            f"Both sides must be projected onto the same spans, got {list(heads_a.shape)} "
            f"and {list(heads_b.shape)}."
        )
    roots_a = np.sqrt(heads_a.reshape(heads_a.shape[0], -1), dtype=np.float32)
    roots_b = np.sqrt(heads_b.reshape(heads_b.shape[0], -1), dtype=np.float32)
    similarity = roots_a @ roots_b.T
    similarity /= n_spans
    return np.clip(similarity, 0.0, 1.0, out=similarity)


def compare(
    a: Analysis,
    b: Analysis,
    granularity: Granularity = Granularity.WORD,
    *,
    threshold: float = MATCH_THRESHOLD,
) -> Comparison:
    """Align ``a`` and ``b`` on their shared spans and score every pair of heads.

    Raises `HeadlightError` when they share no span or more than `MAX_SPANS`.
    """
    started = time.perf_counter()
    alignment = align(a.text, a.offsets, b.text, b.offsets, granularity)
    if alignment.n_spans > MAX_SPANS:
        raise HeadlightError(
            f"The text has {alignment.n_spans:,} shared {granularity.value} spans; heads are compared "
            f"on at most {MAX_SPANS:,}. Shorten the text (both models' views are shown above)."
        )
    aligned = time.perf_counter()
    heads_a = projected_heads(a, alignment.a)
    heads_b = projected_heads(b, alignment.b)
    projected = time.perf_counter()
    similarity = head_similarity(heads_a, heads_b)
    done = time.perf_counter()
    return Comparison(
        a=a,
        b=b,
        alignment=alignment,
        similarity=similarity,
        sources=(_source(a), _source(b)),
        threshold=threshold,
        timings=CompareTimings(
            align_s=aligned - started, project_s=projected - aligned, similarity_s=done - projected
        ),
    )


def _source(analysis: Analysis) -> Source:
    return "full" if analysis.attention is not None else "top-k"


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    """A JSON-safe dict of ``comparison``; `comparison_from_dict` rebuilds it without models.

    Each analysis is stored like a saved analysis (`core.attention.codec.analysis_to_json`: its
    compact attention as base64); the full attention is not kept. The alignment is recomputed from
    the analyses' offsets on load; its spans are written for readers of the JSON.
    """
    alignment = comparison.alignment
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "a": codec.analysis_to_json(comparison.a),
        "b": codec.analysis_to_json(comparison.b),
        "alignment": {
            "granularity": alignment.granularity.value,
            "spans": [list(span) for span in alignment.spans],
            "dropped": [list(span) for span in alignment.dropped],
        },
        "similarity": comparison.similarity.astype(np.float32).tolist(),
        "sources": list(comparison.sources),
        "threshold": comparison.threshold,
        "metric": comparison.metric,
        "timings": {
            "align_s": comparison.timings.align_s,
            "project_s": comparison.timings.project_s,
            "similarity_s": comparison.timings.similarity_s,
        },
    }


def comparison_to_json(comparison: Comparison) -> bytes:
    """`comparison_to_dict` as UTF-8 JSON: the export file, and what the store compresses."""
    return json.dumps(comparison_to_dict(comparison), ensure_ascii=False, separators=(",", ":")).encode()


def comparison_from_dict(data: dict[str, Any]) -> Comparison:
    """Rebuild what `comparison_to_dict` wrote; raises ``ValueError`` if it does not fit."""
    if data.get("format") != FORMAT or data.get("version") not in (1, FORMAT_VERSION):
        raise ValueError(f"Not a {FORMAT} document of version 1 to {FORMAT_VERSION}.")
    try:
        a, b = codec.analysis_from_json(data["a"]), codec.analysis_from_json(data["b"])
        granularity = Granularity(data["alignment"]["granularity"])
        similarity = np.asarray(data["similarity"], np.float32)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"The {FORMAT} document is incomplete or malformed ({exc!r}).") from exc
    alignment = align(a.text, a.offsets, b.text, b.offsets, granularity)
    expected = (a.model.n_layers * a.model.n_heads, b.model.n_layers * b.model.n_heads)
    if similarity.shape != expected:
        raise ValueError(f"The similarity matrix is {list(similarity.shape)}, expected {list(expected)}.")
    return Comparison(
        a=a,
        b=b,
        alignment=alignment,
        similarity=similarity,
        sources=tuple(data["sources"]),  # type: ignore[arg-type]
        threshold=float(data["threshold"]),
        timings=CompareTimings(**data["timings"]),
        metric=str(data.get("metric", JENSEN_SHANNON)),
    )


@dataclass
class CompareOutcome:
    """What one Compare run produced: each side's analysis or the message saying why not,
    and the comparison once both sides ran (or the message saying why it could not)."""

    request: CompareRequest
    a: Analysis | None = None
    b: Analysis | None = None
    error_a: str | None = None
    error_b: str | None = None
    comparison: Comparison | None = None
    comparison_error: str | None = None

    @classmethod
    def of(cls, comparison: Comparison, request: CompareRequest) -> CompareOutcome:
        """The outcome of a stored comparison, reopened."""
        return cls(request=request, a=comparison.a, b=comparison.b, comparison=comparison)
