"""Compare: run two models on one text and compare their heads (`core.attention.comparison`).

A side that fails (model load, input too long) leaves its message in the outcome and the
other side usable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import ValidationError

from core.attention.alignment import Granularity
from core.attention.comparison import CompareOutcome, CompareRequest, Side, compare
from core.domain.analysis import GenerationParams
from core.domain.errors import HeadlightError, validation_message
from core.domain.identity import Actor
from core.models.registry import ModelSpec
from core.service.analysis_service import AnalysisService
from core.store.request_log import RequestTarget

SideProgress = Callable[[Side, float, str], None]


def _no_progress(_side: Side, _fraction: float, _message: str) -> None:
    return None


def run_comparison(
    service: AnalysisService,
    request: CompareRequest,
    *,
    actor: Actor,
    progress: SideProgress = _no_progress,
) -> CompareOutcome:
    """Run A, then B, then compare them. A side that fails (model load, input too long)
    leaves its message in the outcome and the other side usable."""
    outcome = CompareOutcome(request=request)
    for side, side_request in (("a", request.a), ("b", request.b)):
        try:
            spec = service.registry.get(side_request.model_id)
            if not service.pool.is_loaded(spec):
                progress(side, 0.0, f"Loading {spec.label} (first use may take a minute)…")

            def report(fraction: float, message: str, side: Side = side) -> None:
                progress(side, fraction, message)

            analysis = service.run(side_request, actor=actor, progress=report)
            progress(side, 1.0, f"{spec.label}: done")
        except HeadlightError as exc:
            setattr(outcome, f"error_{side}", str(exc))
        else:
            setattr(outcome, side, analysis)
    if outcome.a is not None and outcome.b is not None:
        try:
            outcome.comparison = compare(outcome.a, outcome.b, request.granularity)
        except HeadlightError as exc:
            outcome.comparison_error = str(exc)
    return outcome


def submit_comparison(
    service: AnalysisService,
    *,
    model_a: ModelSpec,
    model_b: ModelSpec,
    text: str,
    generate: bool,
    generation: Mapping[str, object],
    top_k_next: int,
    granularity: Granularity,
    actor: Actor,
    progress: SideProgress = _no_progress,
) -> CompareOutcome:
    """The Compare screen's one call: validate what was typed, then `run_comparison`.

    Input that does not validate is refused with one readable `HeadlightError`, logged
    like Generate's refusals: once per model asked (both would have run).
    """
    try:
        request = CompareRequest.of(
            model_a=(model_a.id, model_a.kind),
            model_b=(model_b.id, model_b.kind),
            text=text,
            generate=generate,
            generation=GenerationParams(**generation),
            top_k_next=top_k_next,
            granularity=granularity,
        )
    except ValidationError as exc:
        for spec in {model_a.id: model_a, model_b.id: model_b}.values():
            mode = "generate" if generate and spec.kind == "causal" else "encode"
            service.record_refusal(RequestTarget(spec.id, mode, len(text)), error=exc, actor=actor)
        raise HeadlightError(validation_message(exc)) from exc
    return run_comparison(service, request, actor=actor, progress=progress)
