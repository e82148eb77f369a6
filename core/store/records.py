"""The persistence boundary: a stored analysis row to an `Analysis` and back.

A stored analysis keeps the fields of `core.attention.codec.analysis_fields` as its columns:
everything the view needs (tokens and offsets, the compact attention, statistics,
next-token steps, timings) plus the request, so it re-renders without the model and can be
recomputed deterministically. The full float16 attention is never stored: a reopened
`Analysis` has ``attention=None`` and the view falls back to the compact form.
"""

from __future__ import annotations

from core.attention import codec
from core.domain.analysis import Analysis, AnalysisRequest
from db.models import Visualization

# The columns of `db.models.Visualization` that hold `codec.analysis_fields`.
STORED_FIELDS = (
    "model_id",
    "model_revision",
    "input_text",
    "generated_text",
    "params",
    "model_info",
    "token_data",
    "token_count",
    "head_stats",
    codec.COMPACT_FIELD,
    "timings",
)


def _fields(record: Visualization) -> dict[str, object]:
    return {name: getattr(record, name) for name in STORED_FIELDS}


def request_from_record(record: Visualization) -> AnalysisRequest:
    """The request that produced a stored analysis (validated again)."""
    return codec.request_from_fields(_fields(record))


def analysis_from_record(record: Visualization) -> Analysis:
    """Re-create the stored `Analysis` for rendering, without running the model.

    ``attention`` is None; everything else equals what was saved.
    """
    return codec.analysis_from_fields(_fields(record))
