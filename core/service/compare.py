"""Compare: run two models on one text and compare their heads (`core.attention.comparison`).

A side that fails (model load, input too long) leaves its message in the outcome and the
other side usable.
"""

from __future__ import annotations

from collections.abc import Callable

from core.attention.comparison import CompareOutcome, CompareRequest, Side, compare
from core.domain.errors import HeadlightError
from core.domain.identity import Actor
from core.service.analysis_service import AnalysisService

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
