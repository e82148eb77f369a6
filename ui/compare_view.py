"""Streamlit rendering of a Compare run: the matched-head heatmap, flagged heads, per-layer
summaries, both heads of a match side by side, and each model's full attention view.

Figures and table rows are pure functions of a `Comparison`; only the ``render_*`` and
widget functions touch Streamlit.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots
from streamlit.delta_generator import DeltaGenerator

from core.attention.comparison import (
    BHATTACHARYYA,
    JENSEN_SHANNON,
    CompareOutcome,
    Comparison,
    Side,
    head_span_map,
    split_head,
)
from core.domain.analysis import MAX_NEW_TOKENS, ModelInfo
from core.domain.presets import CompareKeys
from ui import plots
from ui.analysis_view import render_analysis
from ui.text import next_token_rows, prompt_and_continuation_html

Grid = Literal["heads", "layers"]
_HIGHLIGHT = "#d62728"

METRIC_SHORT = {BHATTACHARYYA: "overlap", JENSEN_SHANNON: "1 − JSD"}
METRIC_CAPTIONS = {
    BHATTACHARYYA: (
        "Similarity is the overlap of two heads' attention rows on the shared spans (the "
        "Bhattacharyya coefficient, Σ √(p·q)), averaged over the query spans: 1 means the same "
        "pattern, 0 that they never attend to the same words."
    ),
    JENSEN_SHANNON: (
        "Similarity is 1 − the Jensen–Shannon divergence (bits) between two heads' attention rows "
        "on the shared spans, averaged over the query spans: 1 means the same pattern "
        "(saved before Headlight switched to the overlap measure)."
    ),
}


def head_labels(info: ModelInfo) -> list[str]:
    """``L{layer}H{head}`` for every head, in flat order (``layer * n_heads + head``)."""
    return [f"L{layer}H{head}" for layer in range(info.n_layers) for head in range(info.n_heads)]


def similarity_figure(comparison: Comparison, *, grid: Grid, selected: int | None = None) -> go.Figure:
    """A-heads × B-heads (or A-layers × B-layers, best head pair) similarity heatmap.

    ``selected`` (an A head) outlines its row and its best match in B.
    """
    a, b = comparison.a.model, comparison.b.model
    if grid == "heads":
        z, rows, columns = comparison.similarity, head_labels(a), head_labels(b)
    else:
        z = comparison.layer_matrix("max")
        rows, columns = [f"L{i}" for i in range(a.n_layers)], [f"L{i}" for i in range(b.n_layers)]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=rows,
            colorscale="Viridis",
            zmin=0.0,
            zmax=1.0,
            hovertemplate="A %{y} · B %{x}<br>similarity %{z:.3f}<extra></extra>",
            colorbar={"title": METRIC_SHORT.get(comparison.metric, "similarity")},
        )
    )
    if selected is not None:
        match = int(comparison.best_in_b[selected])
        row, column = (selected, match) if grid == "heads" else (selected // a.n_heads, match // b.n_heads)
        # Shapes on categorical axes take category indexes as coordinates.
        for x0, x1, line in (
            (-0.5, len(columns) - 0.5, {"color": _HIGHLIGHT, "width": 1, "dash": "dot"}),
            (column - 0.5, column + 0.5, {"color": _HIGHLIGHT, "width": 3}),
        ):
            figure.add_shape(type="rect", x0=x0, x1=x1, y0=row - 0.5, y1=row + 0.5, line=line)
    unit = "layer, head" if grid == "heads" else "layer"
    figure.update_layout(
        xaxis={"title": f"B: {b.model_id} ({unit})", "side": "top"},
        yaxis={"title": f"A: {a.model_id} ({unit})", "autorange": "reversed"},
        height=int(np.clip(140 + 4 * len(rows) if grid == "heads" else 140 + 22 * len(rows), 420, 1300)),
        margin={"l": 10, "r": 10, "t": 90, "b": 10},
    )
    return figure


def layer_summary_figure(comparison: Comparison) -> go.Figure:
    """Per layer of each model, by relative depth: best-match similarity (mean solid, lowest
    dotted), and where in the other model the best matches sit."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Best-match similarity per layer", "Depth of the best matches in the other model"),
    )
    sides: tuple[tuple[Side, str, ModelInfo], ...] = (
        ("a", "#1f77b4", comparison.a.model),
        ("b", "#ff7f0e", comparison.b.model),
    )
    for side, colour, info in sides:
        summary = comparison.layer_summary(side)
        name = f"{side.upper()}: {info.model_id}"
        for col, values, dash, legend in (
            (1, summary.best_mean, "solid", True),
            (1, summary.best_min, "dot", False),
            (2, summary.match_depth, "solid", False),
        ):
            trace = go.Scatter(
                x=np.arange(info.n_layers) / max(info.n_layers - 1, 1),
                y=values,
                name=name,
                mode="lines+markers",
                line={"color": colour, "dash": dash},
                customdata=np.arange(info.n_layers),
                hovertemplate="layer %{customdata}<br>%{y:.3f}<extra>" + name + "</extra>",
                legendgroup=side,
                showlegend=legend,
            )
            figure.add_trace(trace, row=1, col=col)
    figure.add_hline(y=comparison.threshold, line={"color": _HIGHLIGHT, "dash": "dash"}, row=1, col=1)
    diagonal = go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "#999", "dash": "dot"})
    figure.add_trace(diagonal.update(name="same relative depth", hoverinfo="skip"), row=1, col=2)
    figure.update_xaxes(title="relative depth (0 = first layer, 1 = last)", range=[-0.02, 1.02])
    figure.update_yaxes(range=[0, 1.02])
    figure.update_layout(
        height=460,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def flagged_rows(comparison: Comparison, side: Side) -> list[dict[str, object]]:
    """One row per head of ``side`` with no good match in the other model, worst first."""
    mine, other = (comparison.a, comparison.b) if side == "a" else (comparison.b, comparison.a)
    flagged = comparison.only_in_a if side == "a" else comparison.only_in_b
    scores = comparison.best_score_a if side == "a" else comparison.best_score_b
    best = comparison.best_in_b if side == "a" else comparison.best_in_a
    mine_labels, other_labels = head_labels(mine.model), head_labels(other.model)
    stats = {name: values.reshape(-1) for name, values in mine.stats.items()}
    return [
        {
            "head": mine_labels[index],
            "best match": other_labels[best[index]],
            "similarity": round(float(scores[index]), 3),
            "entropy (nats)": round(float(stats["entropy"][index]), 3),
            "mean distance (tokens)": round(float(stats["mean_distance"][index]), 2),
        }
        for index in flagged[np.argsort(scores[flagged])]
    ]


def pair_stats_rows(comparison: Comparison, index_a: int, index_b: int) -> list[dict[str, object]]:
    """Every per-head statistic of A head ``index_a`` next to B head ``index_b``."""
    label_a = f"A {head_labels(comparison.a.model)[index_a]}"
    label_b = f"B {head_labels(comparison.b.model)[index_b]}"
    return [
        {
            "statistic": name,
            label_a: round(float(values.reshape(-1)[index_a]), 4),
            label_b: round(float(comparison.b.stats[name].reshape(-1)[index_b]), 4),
        }
        for name, values in comparison.a.stats.items()
    ]


def generation_settings(keys: CompareKeys) -> dict[str, object]:
    """Decoding widgets shared by both models; returns `GenerationParams` fields."""
    params: dict[str, object] = {}
    left, middle, right = st.columns(3)
    params["max_new_tokens"] = left.number_input(
        "Max new tokens", 1, MAX_NEW_TOKENS, 20, key=keys.max_new_tokens
    )
    params["do_sample"] = left.toggle("Sample (otherwise greedy)", key=keys.do_sample)
    params["temperature"] = middle.number_input("Temperature", 0.05, 5.0, 1.0, 0.05, key=keys.temperature)
    params["top_p"] = middle.number_input("Top-p", 0.01, 1.0, 1.0, 0.01, key=keys.top_p)
    params["top_k"] = right.number_input("Top-k (sampling)", 0, 1000, 50, key=keys.top_k)
    params["seed"] = right.number_input("Seed", 0, 2**32 - 1, 0, key=keys.seed)
    return params


def _follow_selection(comparison: Comparison, key: str) -> None:
    """Point both full views' head pickers at the selected A head and its best match."""
    selected = st.session_state[f"{key}.head_a"]
    for side, index, info in (
        ("a", selected, comparison.a.model),
        ("b", int(comparison.best_in_b[selected]), comparison.b.model),
    ):
        layer, head = split_head(index, info.n_heads)
        st.session_state[f"{key}.{side}.hm.layer"] = layer
        st.session_state[f"{key}.{side}.hm.head"] = head


def _matched_heads(comparison: Comparison, key: str) -> None:
    a, b = comparison.a, comparison.b
    labels_a, labels_b = head_labels(a.model), head_labels(b.model)
    left, right = st.columns([1, 2])
    grid = left.radio(
        "Grid",
        ["heads", "layers"],
        horizontal=True,
        key=f"{key}.grid",
        format_func=lambda g: "heads × heads" if g == "heads" else "layers × layers (best pair)",
    )
    selected = right.selectbox(
        "Head in A (its best match in B is outlined)",
        range(len(labels_a)),
        format_func=labels_a.__getitem__,
        key=f"{key}.head_a",
        on_change=_follow_selection,
        args=(comparison, key),
    )
    st.caption(METRIC_CAPTIONS.get(comparison.metric, ""))
    st.plotly_chart(similarity_figure(comparison, grid=grid, selected=selected), key=f"{key}.similarity")
    match = int(comparison.best_in_b[selected])
    score = float(comparison.similarity[selected, match])
    st.markdown(
        f"**A {labels_a[selected]}** best matches **B {labels_b[match]}** (similarity {score:.3f}"
        + (", below the match threshold: only in A)" if score < comparison.threshold else ")")
    )
    labels = comparison.alignment.labels
    for column, side, analysis, pieces, index in zip(
        st.columns(2),
        "AB",
        (a, b),
        (comparison.alignment.a, comparison.alignment.b),
        (selected, match),
        strict=True,
    ):
        layer, head = split_head(index, analysis.model.n_heads)
        span_map = head_span_map(analysis, pieces, layer, head)
        figure = plots.head_heatmap(span_map, labels, layer=layer, head=head)
        figure.update_layout(title=f"{side} · layer {layer}, head {head} (on shared spans)")
        column.markdown(f"**{side}: {analysis.model.model_id}**")
        column.plotly_chart(figure, key=f"{key}.span_map.{side}")
    st.dataframe(pair_stats_rows(comparison, selected, match), hide_index=True, key=f"{key}.pair_stats")
    st.caption(f"Heads whose best match scores below {comparison.threshold:.2f} are flagged.")
    only_a, only_b = st.columns(2)
    flagged: tuple[tuple[DeltaGenerator, Side, str], ...] = (
        (only_a, "a", "Only in A"),
        (only_b, "b", "Only in B"),
    )
    for column, side, name in flagged:
        rows = flagged_rows(comparison, side)
        column.markdown(f"**{name}** ({len(rows)} heads)")
        if rows:
            column.dataframe(rows, hide_index=True, key=f"{key}.flagged.{side}")


def _statistics(comparison: Comparison, key: str) -> None:
    names = list(comparison.a.stats)
    name = st.selectbox("Statistic", names, key=f"{key}.stat")
    for column, side, analysis in zip(st.columns(2), "ab", (comparison.a, comparison.b), strict=True):
        title = f"{side.upper()} {analysis.model.model_id}: {name}"
        figure = plots.head_stat_heatmap(analysis.stats[name], title=title, unit="")
        column.plotly_chart(figure, key=f"{key}.stats.{side}")


def _text_and_next_tokens(comparison: Comparison, key: str) -> None:
    for column, side, analysis in zip(st.columns(2), "ab", (comparison.a, comparison.b), strict=True):
        column.markdown(f"**{side.upper()}: {analysis.model.model_id}**")
        column.markdown(prompt_and_continuation_html(analysis), unsafe_allow_html=True)
        rows = next_token_rows(analysis)
        if rows:
            column.dataframe(rows, hide_index=True, key=f"{key}.next.{side}")
        else:
            column.info("Encoders do not predict a next token.")


def render_comparison(comparison: Comparison, *, key: str) -> None:
    """Summary, matched-head heatmap, per-layer plots, statistics and text side by side."""
    alignment = comparison.alignment
    columns = st.columns(5)
    dropped = f"{len(alignment.dropped)} dropped"
    columns[0].metric("Shared spans", f"{alignment.n_spans:,}", dropped, delta_color="off", delta_arrow="off")
    columns[1].metric("Only in A", f"{comparison.only_in_a.size} / {comparison.similarity.shape[0]}")
    columns[2].metric("Only in B", f"{comparison.only_in_b.size} / {comparison.similarity.shape[1]}")
    columns[3].metric("Forward A + B", f"{comparison.forward_s:.2f} s")
    columns[4].metric("Comparison", f"{comparison.timings.total_s:.2f} s")
    if "top-k" in comparison.sources:
        st.caption(
            "Full attention was not kept for at least one model: its heads are rebuilt from the "
            "top attended positions per token, so similarities are approximate."
        )
    tabs = st.tabs(["Matched heads", "Per layer", "Head statistics", "Text and next tokens"])
    with tabs[0]:
        _matched_heads(comparison, key)
    with tabs[1]:
        st.caption(
            "Left: per layer, the mean (solid) and lowest (dotted) best-match similarity of its "
            "heads; dashed red, the flag threshold. Right: the mean relative depth of the other "
            "model's layers where those best matches sit."
        )
        st.plotly_chart(layer_summary_figure(comparison), key=f"{key}.layers")
    with tabs[2]:
        _statistics(comparison, key)
    with tabs[3]:
        _text_and_next_tokens(comparison, key)


def render_outcome(outcome: CompareOutcome, *, key: str) -> None:
    """Messages for whatever failed, the comparison if there is one, and both full views."""
    for side, model_id, error in (
        ("A", outcome.request.a.model_id, outcome.error_a),
        ("B", outcome.request.b.model_id, outcome.error_b),
    ):
        if error:
            st.error(f"Model {side} ({model_id}): {error}")
    if outcome.comparison_error:
        st.warning(outcome.comparison_error)
    if outcome.comparison is not None:
        render_comparison(outcome.comparison, key=key)
    views = [(side, a) for side, a in (("a", outcome.a), ("b", outcome.b)) if a is not None]
    if not views:
        return
    st.subheader("Each model's attention")
    tabs = st.tabs([f"{side.upper()}: {analysis.model.model_id}" for side, analysis in views])
    for tab, (side, analysis) in zip(tabs, views, strict=True):
        with tab:
            render_analysis(analysis, key=f"{key}.{side}")
