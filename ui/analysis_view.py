"""Streamlit rendering of one `Analysis`: text, timings, attention views, statistics, top-k."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from core.attention import compact as compact_codec
from core.domain.analysis import Analysis
from ui import attention_view, bertviz_html, plots, resources
from ui.text import next_token_rows, prompt_and_continuation_html

# Plotly draws one cell per pair of tokens; past this the browser crawls, so a downsampled
# overview is shown instead.
HEATMAP_MAX_TOKENS = 384

FAST_VIEW_TAB = "Attention (fast view)"
BERTVIZ_TAB = "Attention (bertviz)"


def _head_picker(analysis: Analysis, key: str) -> tuple[int, int]:
    left, right = st.columns(2)
    layer = left.number_input("Layer", 0, analysis.model.n_layers - 1, 0, key=f"{key}.layer")
    head = right.number_input("Head", 0, analysis.model.n_heads - 1, 0, key=f"{key}.head")
    return int(layer), int(head)


def _bertviz_fits(analysis: Analysis) -> bool:
    """Whether bertviz's head view can show this analysis (else the fast view opens first)."""
    info = analysis.model
    return analysis.attention is not None and bertviz_html.fits_bertviz(
        1, info.n_heads, analysis.seq_len, "head", prompt_len=analysis.prompt_len
    )


def _fast_view_tab(analysis: Analysis, key: str) -> None:
    """Every head at a glance; the clicked head's full map is computed and sent in the same run."""
    view_key = f"{key}.av"
    # One fixed slot above the view for the recompute spinner and notices: an element that
    # comes and goes before the view would move it, and Streamlit would rebuild its iframe.
    slot = st.empty()
    selection = attention_view.selected_head(analysis, view_key)
    detail = None
    if selection is not None:
        with slot:
            detail, notice = attention_view.load_head_detail(analysis, *selection)
        if notice:
            slot.caption(notice)
        else:
            slot.empty()
    attention_view.attention_view(analysis, key=view_key, detail=detail)


def _bertviz_tab(analysis: Analysis, key: str) -> float:
    """Renders the chosen bertviz view; returns the seconds spent building its HTML."""
    info, n = analysis.model, analysis.seq_len
    view = st.radio("View", ["head", "model", "neuron"], horizontal=True, key=f"{key}.bv_view")
    if view == "neuron":
        return _neuron_view(analysis, key)
    carried = 1 if view == "head" else info.n_layers
    prompt_len = analysis.prompt_len if view == "head" else None
    if analysis.attention is None or not bertviz_html.fits_bertviz(
        carried, info.n_heads, n, view, prompt_len=prompt_len
    ):
        estimate = bertviz_html.estimate_payload_bytes(carried, info.n_heads, n, view, prompt_len=prompt_len)
        st.info(
            f"{n:,} tokens is too long for bertviz's {view} view: it would send about "
            f"{estimate / 1e6:,.0f} MB and draw {info.n_heads * n * n * carried:,} lines, which "
            "freezes the browser. Use the fast view, head heatmap and statistics tabs."
        )
        return 0.0
    started = time.perf_counter()
    attention = analysis.attention.astype(np.float32)
    if view == "head":
        every_layer = bertviz_html.fits_bertviz(
            info.n_layers, info.n_heads, n, "head", prompt_len=analysis.prompt_len
        )
        # Carry every layer when it fits (bertviz's own layer menu works); else one at a time.
        layers = list(range(info.n_layers))
        if not every_layer:
            layers = [int(st.number_input("Layer", 0, info.n_layers - 1, 0, key=f"{key}.bv_layer"))]
        html = bertviz_html.head_view_html(
            attention,
            analysis.tokens,
            layer=layers[0],
            include_layers=layers,
            prompt_len=analysis.prompt_len,
        )
        height = min(2400, 260 + 22 * n)
    else:
        html = bertviz_html.model_view_html(attention, analysis.tokens)
        height = min(4000, 140 + 110 * info.n_layers)
    elapsed = time.perf_counter() - started
    components.html(html, height=height, scrolling=True)
    st.caption(f"{len(html) / 1e6:.1f} MB of HTML built in {elapsed:.2f} s.")
    return elapsed


def _neuron_view(analysis: Analysis, key: str) -> float:
    info = analysis.model
    reason = bertviz_html.neuron_view_reason(info.architecture)
    if reason is not None:
        st.info(reason)
        return 0.0
    layer, head = _head_picker(analysis, f"{key}.nv")
    started = time.perf_counter()
    try:
        html = resources.neuron_view_html(info.model_id, info.revision, analysis.text, layer, head)
    except ValueError as exc:
        st.info(f"No neuron view: {exc}")
        return 0.0
    components.html(html, height=900, scrolling=True)
    return time.perf_counter() - started


def _heatmap_tab(analysis: Analysis, key: str) -> None:
    layer, head = _head_picker(analysis, f"{key}.hm")
    n = analysis.seq_len
    if n > HEATMAP_MAX_TOKENS:
        overview = compact_codec.overview_map(analysis.compact, layer, head)
        st.caption(f"{n:,} tokens: showing the {overview.shape[0]}×{overview.shape[0]} downsampled map.")
        figure = plots.overview_heatmap(overview, seq_len=n, layer=layer, head=head)
    elif analysis.attention is not None:
        figure = plots.head_heatmap(
            analysis.attention[layer, head],
            analysis.tokens,
            layer=layer,
            head=head,
            prompt_len=analysis.prompt_len,
        )
    else:
        st.caption("Top attended positions per query (the full map was not kept for this length).")
        figure = plots.head_heatmap(
            compact_codec.head_detail(analysis.compact, layer, head),
            analysis.tokens,
            layer=layer,
            head=head,
            prompt_len=analysis.prompt_len,
        )
    st.plotly_chart(figure, key=f"{key}.hm.chart")


def _stats_tab(analysis: Analysis, key: str) -> None:
    stats = analysis.head_stats
    left, right = st.columns(2)
    left.plotly_chart(
        plots.head_stat_heatmap(stats.entropy, title="Entropy per head", unit="nats"),
        key=f"{key}.st.entropy",
    )
    right.plotly_chart(
        plots.head_stat_heatmap(stats.mean_distance, title="Mean attention distance", unit="tokens"),
        key=f"{key}.st.distance",
    )


def _next_tokens_tab(analysis: Analysis, key: str) -> None:
    rows = next_token_rows(analysis)
    if not rows:
        st.info("Encoders do not predict a next token.")
        return
    st.dataframe(rows, hide_index=True, key=f"{key}.nt.table")
    steps = analysis.next_tokens
    index = 0
    if len(steps) > 1:
        index = st.slider("Step", 0, len(steps) - 1, 0, key=f"{key}.nt.step")
    step = steps[index]
    title = "Next token after the text" if step.token is None else f"Step {index}: chose {step.token!r}"
    st.plotly_chart(plots.next_token_bars(step.candidates, title=title), key=f"{key}.nt.chart")


def render_analysis(analysis: Analysis, *, key: str) -> None:
    """The whole result view; `key` prefixes every widget key (one prefix per page)."""
    info = analysis.model
    st.markdown(prompt_and_continuation_html(analysis), unsafe_allow_html=True)
    generated = analysis.seq_len - analysis.prompt_len
    columns = st.columns(5)
    columns[0].metric("Tokens", f"{analysis.seq_len:,}", f"{generated} generated" if generated else None)
    columns[1].metric("Model", f"{info.n_layers}×{info.n_heads}", info.device, delta_color="off")
    columns[2].metric("Load", f"{analysis.timings.load_s:.2f} s")
    columns[3].metric("Forward", f"{analysis.timings.forward_s:.2f} s")
    render_metric = columns[4].empty()
    labels = [FAST_VIEW_TAB, BERTVIZ_TAB, "Head heatmap", "Head statistics", "Next tokens"]
    tabs = st.tabs(labels, default=BERTVIZ_TAB if _bertviz_fits(analysis) else FAST_VIEW_TAB)
    with tabs[0]:
        _fast_view_tab(analysis, key)
    with tabs[1]:
        render_s = _bertviz_tab(analysis, key)
    with tabs[2]:
        _heatmap_tab(analysis, key)
    with tabs[3]:
        _stats_tab(analysis, key)
    with tabs[4]:
        _next_tokens_tab(analysis, key)
    render_metric.metric("Render", f"{render_s + analysis.timings.postprocess_s:.2f} s")
