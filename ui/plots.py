"""Plotly figures for analyses. Pure functions of numpy arrays: no Streamlit here."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import plotly.graph_objects as go

# Beyond this many tokens a per-token axis label is unreadable; ticks are thinned instead.
_MAX_TICK_LABELS = 80


def _short(token: str, limit: int = 12) -> str:
    token = token.replace("\n", "⏎").replace(" ", "·")
    return token if len(token) <= limit else token[: limit - 1] + "…"


def head_heatmap(
    head_attention: np.ndarray, tokens: list[str], *, layer: int, head: int, prompt_len: int | None = None
) -> go.Figure:
    """One head's map. `head_attention` is ``[query, key]``; rows are queries."""
    seq_len = head_attention.shape[0]
    if head_attention.shape != (seq_len, seq_len) or len(tokens) != seq_len:
        raise ValueError(f"attention {head_attention.shape} does not match {len(tokens)} tokens")
    labels = [f"{i}:{_short(t)}" for i, t in enumerate(tokens)]
    figure = go.Figure(
        go.Heatmap(
            z=head_attention.astype(np.float32),
            x=labels,
            y=labels,
            colorscale="Blues",
            zmin=0.0,
            hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
            colorbar={"title": "weight"},
        )
    )
    if prompt_len is not None and 0 < prompt_len < seq_len:
        # A line where the continuation starts, on both axes.
        edge = prompt_len - 0.5
        figure.add_hline(y=edge, line={"color": "#d62728", "dash": "dot", "width": 1})
        figure.add_vline(x=edge, line={"color": "#d62728", "dash": "dot", "width": 1})
    step = max(1, seq_len // _MAX_TICK_LABELS)
    ticks = {"tickmode": "array", "tickvals": labels[::step], "tickfont": {"size": 9}}
    figure.update_layout(
        title=f"Layer {layer}, head {head}",
        xaxis={"title": "key (attended to)", "side": "top", **ticks},
        yaxis={"title": "query (attending)", "autorange": "reversed", **ticks},
        height=min(900, 300 + 12 * min(seq_len, 50)),
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
    )
    return figure


def head_stat_heatmap(values: np.ndarray, *, title: str, unit: str) -> go.Figure:
    """A ``[n_layers, n_heads]`` statistic as a layers x heads grid."""
    n_layers, n_heads = values.shape
    figure = go.Figure(
        go.Heatmap(
            z=values.astype(np.float32),
            x=[f"H{h}" for h in range(n_heads)],
            y=[f"L{layer}" for layer in range(n_layers)],
            colorscale="Viridis",
            hovertemplate="%{y} %{x}<br>" + title + " %{z:.3f} " + unit + "<extra></extra>",
            colorbar={"title": unit},
        )
    )
    figure.update_layout(
        title=title,
        xaxis={"title": "head"},
        yaxis={"title": "layer", "autorange": "reversed"},
        height=max(300, 18 * n_layers + 120),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def next_token_bars(candidates: tuple[tuple[str, float], ...], *, title: str) -> go.Figure:
    tokens = [repr(token)[1:-1] for token, _ in candidates][::-1]
    probabilities = [p for _, p in candidates][::-1]
    figure = go.Figure(go.Bar(x=probabilities, y=tokens, orientation="h"))
    figure.update_layout(
        title=title,
        xaxis={"title": "probability", "range": [0, 1]},
        height=120 + 24 * len(candidates),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def overview_heatmap(overview: np.ndarray, *, seq_len: int, layer: int, head: int) -> go.Figure:
    """A downsampled ``[S, S]`` map of one head; axes are labelled in token positions."""
    size = overview.shape[0]
    positions = (np.arange(size) + 0.5) * seq_len / size
    figure = go.Figure(
        go.Heatmap(
            z=overview.astype(np.float32),
            x=positions,
            y=positions,
            colorscale="Blues",
            zmin=0.0,
            hovertemplate="query ≈%{y:.0f}<br>key ≈%{x:.0f}<br>weight %{z:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"Layer {layer}, head {head} (downsampled {size}×{size})",
        xaxis={"title": "key position", "side": "top"},
        yaxis={"title": "query position", "autorange": "reversed"},
        height=640,
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
    )
    return figure


def token_count_histogram(edges: list[float], counts: list[int], *, max_tokens: int, title: str) -> go.Figure:
    """Rows per token-count bin (``counts[i]`` rows in ``edges[i] .. edges[i + 1]``), with
    the model's limit marked: rows right of the line are truncated."""
    bins = list(pairwise(edges))
    centres = [(low + high) / 2 for low, high in bins]
    widths = [high - low for low, high in bins]
    figure = go.Figure(
        go.Bar(
            x=centres,
            y=counts,
            width=widths,
            hovertemplate="%{x:.0f} tokens<br>%{y} rows<extra></extra>",
        )
    )
    if edges and edges[-1] >= max_tokens:
        figure.add_vline(x=max_tokens, line={"color": "#d62728", "dash": "dot"}, annotation_text="limit")
    figure.update_layout(
        title=title,
        xaxis={"title": "tokens per row"},
        yaxis={"title": "rows"},
        bargap=0.02,
        height=300,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure
