"""The persistence boundary: an `Analysis` to stored column values and back.

A stored analysis keeps everything the view needs (tokens and offsets, the compact
attention, statistics, next-token steps, timings) plus the request, so it re-renders without
the model and can be recomputed deterministically. The full float16 attention is never
stored: a reopened `Analysis` has ``attention=None`` and the view falls back to the compact form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.attention import compact as compact_codec
from core.domain.analysis import Analysis, AnalysisRequest, ModelInfo, NextTokenStep, Timings
from core.domain.errors import HeadlightError
from db.models import Visualization

if TYPE_CHECKING:
    from core.service.analysis_service import AnalysisService

# Request fields kept in ``params``; text and model id have columns of their own.
_REQUEST_COLUMNS = {"model_id", "text"}
_MODEL_INFO_FIELDS = ("kind", "architecture", "n_layers", "n_heads", "device", "dtype")


def record_fields(analysis: Analysis) -> dict[str, Any]:
    """Column values of a `Visualization` holding ``analysis``.

    Owner, title, tags and visibility are the caller's. ``token_data`` holds ``seq_len``
    tokens, ids and ``[start, end]`` offsets; ``head_stats`` maps each statistic to
    ``[n_layers][n_heads]`` floats. Building the compact form here costs a moment for short
    inputs, whose analysis kept only the full attention until now.
    """
    info = analysis.model
    return {
        "model_id": info.model_id,
        "model_revision": info.revision,
        "input_text": analysis.request.text,
        "generated_text": analysis.generated_text,
        "params": analysis.request.model_dump(mode="json", exclude=_REQUEST_COLUMNS),
        "model_info": {name: getattr(info, name) for name in _MODEL_INFO_FIELDS},
        "token_data": {
            "text": analysis.text,
            "tokens": list(analysis.tokens),
            "token_ids": [int(i) for i in analysis.token_ids],
            "offsets": [[int(s), int(e)] for s, e in analysis.offsets],
            "prompt_len": analysis.prompt_len,
            "next_tokens": [_step_json(step) for step in analysis.next_tokens],
        },
        "token_count": analysis.seq_len,
        "head_stats": {name: np.asarray(values).tolist() for name, values in analysis.stats.items()},
        "compact_attention": compact_codec.encode(analysis.compact),
        "timings": {
            "load_s": analysis.timings.load_s,
            "forward_s": analysis.timings.forward_s,
            "postprocess_s": analysis.timings.postprocess_s,
        },
    }


def _step_json(step: NextTokenStep) -> dict[str, Any]:
    return {
        "position": step.position,
        "token": step.token,
        "probability": step.probability,
        "candidates": [[token, float(p)] for token, p in step.candidates],
    }


def _step(data: dict[str, Any]) -> NextTokenStep:
    return NextTokenStep(
        position=int(data["position"]),
        token=data["token"],
        probability=data["probability"],
        candidates=tuple((str(token), float(p)) for token, p in data["candidates"]),
    )


def request_from_record(record: Visualization) -> AnalysisRequest:
    """The request that produced a stored analysis (validated again)."""
    return AnalysisRequest(model_id=record.model_id, text=record.input_text, **record.params)


def analysis_from_record(record: Visualization) -> Analysis:
    """Re-create the stored `Analysis` for rendering, without running the model.

    ``attention`` is None; everything else equals what was saved.
    """
    data = record.token_data
    return Analysis(
        request=request_from_record(record),
        model=ModelInfo(
            model_id=record.model_id,
            revision=record.model_revision,
            **{name: record.model_info[name] for name in _MODEL_INFO_FIELDS},
        ),
        text=data["text"],
        tokens=list(data["tokens"]),
        token_ids=list(data["token_ids"]),
        offsets=[(int(s), int(e)) for s, e in data["offsets"]],
        prompt_len=int(data["prompt_len"]),
        compact=compact_codec.decode(record.compact_attention),
        attention=None,
        stats={name: np.asarray(values, np.float32) for name, values in record.head_stats.items()},
        next_tokens=[_step(step) for step in data["next_tokens"]],
        timings=Timings(**record.timings),
    )


def recompute(record: Visualization, service: AnalysisService, **run_options: Any) -> Analysis:
    """Run the stored request again, with full detail, on the same model revision.

    Generation is deterministic for the same model revision, parameters and seed.
    ``run_options`` (actor, progress) go to `AnalysisService.run`. Raises `HeadlightError`
    when the registry now serves another revision, since the result would differ.
    """
    spec = service.registry.get(record.model_id)
    if spec.revision != record.model_revision:
        raise HeadlightError(
            f"This analysis was made with {record.model_id} revision {record.model_revision}; "
            f"the registry now has revision {spec.revision}, so it cannot be reproduced. "
            "Run the text again on the Generate screen instead."
        )
    return service.run(request_from_record(record), **run_options)
