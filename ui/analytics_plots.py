"""Plotly figures of the per-model analytics view: pure functions of `core.store.model_analytics`
series and `core.ops.drift` reports."""

from __future__ import annotations

import plotly.graph_objects as go

from core.ops.drift import FeatureDrift, length_bin_labels
from core.store.model_analytics import Series

_MARGIN = {"l": 10, "r": 10, "t": 50, "b": 10}


def requests_figure(series: Series) -> go.Figure:
    """Served and failed requests per bucket (stacked), cache hits as a line."""
    served = [r - e for r, e in zip(series.requests, series.errors, strict=True)]
    figure = go.Figure(
        [
            go.Bar(x=series.starts, y=served, name="served", marker_color="#1f6feb"),
            go.Bar(x=series.starts, y=series.errors, name="errors", marker_color="#d1242f"),
            go.Scatter(
                x=series.starts,
                y=series.cache_hits,
                name="cache hits",
                mode="lines",
                line={"color": "#2da44e"},
            ),
        ]
    )
    figure.update_layout(
        title=f"Requests per {_width_label(series)}",
        barmode="stack",
        yaxis={"title": "requests"},
        height=320,
        margin=_MARGIN,
    )
    return figure


def latency_figure(series: Series) -> go.Figure:
    """p50 and p95 latency of model runs (no cache hits) per bucket (gaps where none ran)."""
    figure = go.Figure(
        [
            go.Scatter(x=series.starts, y=series.p50_s, name="p50", mode="lines+markers"),
            go.Scatter(x=series.starts, y=series.p95_s, name="p95", mode="lines+markers"),
        ]
    )
    figure.update_layout(
        title=f"Latency of model runs (cache hits excluded) per {_width_label(series)}",
        yaxis={"title": "seconds"},
        height=320,
        margin=_MARGIN,
    )
    return figure


def tokens_figure(series: Series) -> go.Figure:
    """Tokens processed per bucket."""
    figure = go.Figure([go.Bar(x=series.starts, y=series.tokens, name="tokens", marker_color="#8250df")])
    figure.update_layout(
        title=f"Tokens processed per {_width_label(series)}",
        yaxis={"title": "tokens"},
        height=320,
        margin=_MARGIN,
    )
    return figure


def length_histogram(feature: FeatureDrift) -> go.Figure:
    """Share of requests per input-length bin, baseline against recent."""
    labels = length_bin_labels()
    figure = go.Figure()
    for name, counts in (("baseline", feature.baseline_counts), ("recent", feature.recent_counts)):
        total = max(int(counts.sum()), 1)
        figure.add_trace(go.Bar(x=labels, y=[int(c) / total for c in counts], name=f"{name} ({total:,})"))
    figure.update_layout(
        title=f"Input length (characters): PSI {feature.score:.3f}",
        barmode="group",
        yaxis={"title": "share of requests", "tickformat": ".0%"},
        height=320,
        margin=_MARGIN,
    )
    return figure


def token_profile_figure(feature: FeatureDrift, top: int = 40) -> go.Figure:
    """The hashed token buckets whose share moved most between the windows."""
    baseline = feature.baseline_counts / max(int(feature.baseline_counts.sum()), 1)
    recent = feature.recent_counts / max(int(feature.recent_counts.sum()), 1)
    moved = sorted(range(len(baseline)), key=lambda i: -abs(recent[i] - baseline[i]))[:top]
    labels = [f"#{i}" for i in moved]
    figure = go.Figure(
        [
            go.Bar(x=labels, y=[baseline[i] for i in moved], name="baseline"),
            go.Bar(x=labels, y=[recent[i] for i in moved], name="recent"),
        ]
    )
    figure.update_layout(
        title=f"Token-frequency profile (hashed buckets that moved most): JS {feature.score:.3f} bits",
        barmode="group",
        yaxis={"title": "share of tokens", "tickformat": ".1%"},
        height=320,
        margin=_MARGIN,
    )
    return figure


def _width_label(series: Series) -> str:
    minutes = int(series.width.total_seconds() // 60)
    if minutes < 60:
        return "minute" if minutes == 1 else f"{minutes} minutes"
    hours = minutes // 60
    if hours < 24:
        return "hour" if hours == 1 else f"{hours} hours"
    return "day"
