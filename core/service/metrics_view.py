"""Figures and numbers for the Metrics screen, from telemetry events and the pool."""

from __future__ import annotations

import time
from collections import Counter as Tally

import numpy as np
import plotly.graph_objects as go

from core.models.pool import LoadFailure
from core.ops.telemetry import AnalysisEvent


def latency_histogram(events: list[AnalysisEvent]) -> go.Figure:
    figure = go.Figure()
    for cache_hit, name in ((False, "computed"), (True, "cache hit")):
        seconds = [e.seconds for e in events if e.cache_hit is cache_hit]
        if seconds:
            figure.add_trace(go.Histogram(x=seconds, name=name, nbinsx=30, opacity=0.75))
    figure.update_layout(
        title="Latency per analysis",
        barmode="overlay",
        xaxis={"title": "seconds"},
        yaxis={"title": "analyses"},
        height=320,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def _minute(at: float) -> float:
    return at - at % 60


def requests_over_time(events: list[AnalysisEvent], now: float | None = None, minutes: int = 60) -> go.Figure:
    """Analyses per minute and model over the last `minutes`."""
    now = time.time() if now is None else now
    start = _minute(now) - (minutes - 1) * 60
    buckets = [start + 60 * i for i in range(minutes)]
    figure = go.Figure()
    for model_id in sorted({e.model_id for e in events}):
        tally = Tally(_minute(e.at) for e in events if e.model_id == model_id and e.at >= start)
        figure.add_trace(
            go.Bar(
                x=[time.strftime("%H:%M", time.localtime(b)) for b in buckets],
                y=[tally.get(b, 0) for b in buckets],
                name=model_id,
            )
        )
    figure.update_layout(
        title="Requests per minute",
        barmode="stack",
        yaxis={"title": "analyses"},
        height=320,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def hit_rate(events: list[AnalysisEvent]) -> float | None:
    if not events:
        return None
    return float(np.mean([e.cache_hit for e in events]))


def latency_percentiles(events: list[AnalysisEvent]) -> dict[str, float]:
    computed = [e.seconds for e in events if not e.cache_hit]
    if not computed:
        return {}
    p50, p95 = np.percentile(computed, [50, 95])
    return {"p50": float(p50), "p95": float(p95)}


def failures_table(failures: list[LoadFailure]) -> list[dict[str, str]]:
    return [
        {
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(f.at)),
            "model": f.model_id,
            "reason": f.reason,
        }
        for f in reversed(failures)
    ]
