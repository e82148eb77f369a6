"""Compare: two models on one text, their heads matched across tokenizers."""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.access import permissions
from core.attention.alignment import Granularity
from core.attention.comparison import CompareOutcome, comparison_to_json
from core.domain.analysis import MAX_TEXT_CHARS, MAX_TOP_K_NEXT
from core.domain.errors import HeadlightError
from core.domain.identity import Actor
from core.domain.presets import COMPARE, PresetScreen
from core.models.registry import ModelSpec
from core.service import saved_comparisons
from core.service.analysis_service import AnalysisService
from core.service.compare import submit_comparison
from ui.compare_view import generation_settings, render_outcome
from ui.preset_panel import render_preset_panel
from ui.run_page import RunPage, open_run_page
from ui.session import current_viewer

DEFAULT_TEXT = (
    "The quick brown fox jumps over the lazy dog. When the dog wakes up, it chases the fox "
    "across the field, but the fox is faster and hides in the woods."
)
OUTCOME = "compare.outcome"
SAVED_ID = "compare.saved_id"


def _pick_model(page: RunPage, column: DeltaGenerator, side: str, default: int) -> ModelSpec:
    key = COMPARE.model_a if side == "A" else COMPARE.model_b
    spec = page.pick(f"Model {side}", key=key, index=default, where=column)
    column.caption(f"{spec.kind} · revision {spec.revision} · up to {spec.max_input_tokens:,} tokens")
    return spec


def _run(service: AnalysisService, actor: Actor, **form: Any) -> None:
    columns = st.columns(2)
    bars = {side: column.progress(0.0, text="Waiting…") for side, column in zip("ab", columns, strict=True)}

    def progress(side: str, fraction: float, message: str) -> None:
        bars[side].progress(min(max(fraction, 0.0), 1.0), text=f"{side.upper()}: {message}")

    try:
        st.session_state[OUTCOME] = submit_comparison(service, actor=actor, progress=progress, **form)
        st.session_state.pop(SAVED_ID, None)
    except HeadlightError as exc:
        st.error(str(exc))
    finally:
        for bar in bars.values():
            bar.empty()


def _save_panel(outcome: CompareOutcome) -> None:
    if outcome.comparison is None:
        return
    comparison = outcome.comparison
    with st.container(border=True):
        title_col, save_col, export_col = st.columns([5, 1, 1], vertical_alignment="bottom")
        export_col.download_button(
            "Export",
            data=lambda: comparison_to_json(comparison),
            file_name=f"headlight-comparison-{comparison.a.model.model_id}-{comparison.b.model.model_id}.json",
            mime="application/json",
            key="compare.export",
        )
        saved = st.session_state.get(SAVED_ID)
        if not permissions.can_create(current_viewer()):
            title_col.caption("Sign in as an analyst to save comparisons.")
            return
        title = title_col.text_input("Title", max_chars=200, key="compare.save.title")
        if save_col.button("Save", key="compare.save.button", disabled=saved is not None):
            try:
                saved = saved_comparisons.save_comparison(
                    viewer=current_viewer(), comparison=comparison, request=outcome.request, title=title
                )
            except HeadlightError as exc:
                st.error(f"Not saved: {exc}")
            else:
                st.session_state[SAVED_ID] = saved
        if saved is not None:
            st.success(f"Saved as comparison #{saved}.")


def _open_saved() -> None:
    with st.expander("Open a saved comparison"):
        try:
            rows = saved_comparisons.list_comparisons(viewer=current_viewer())
        except HeadlightError as exc:
            st.error(str(exc))
            return
        if not rows:
            st.caption("No saved comparisons yet.")
            return
        labels = {row.id: f"#{row.id} {row.title} ({row.model_a_id} vs {row.model_b_id})" for row in rows}
        chosen = st.selectbox("Saved", list(labels), format_func=labels.__getitem__, key="compare.open.id")
        if st.button("Open", key="compare.open.button"):
            try:
                st.session_state[OUTCOME] = saved_comparisons.open_comparison(
                    viewer=current_viewer(), comparison_id=chosen
                )
                st.session_state[SAVED_ID] = chosen
            except HeadlightError as exc:
                st.error(str(exc))


def main() -> None:
    page = open_run_page("Compare")
    if page is None:
        return
    service, actor, specs, reasons = page.service, page.actor, page.specs, page.reasons
    render_preset_panel(PresetScreen.COMPARE, available_models=set(specs))
    left, right = st.columns(2)
    spec_a = _pick_model(page, left, "A", 0)
    spec_b = _pick_model(page, right, "B", min(1, len(specs) - 1))
    text = st.text_area("Text", DEFAULT_TEXT, height=140, max_chars=MAX_TEXT_CHARS, key="compare.text")
    any_causal = "causal" in (spec_a.kind, spec_b.kind)
    generate = st.toggle(
        "Generate a continuation (same parameters and seed for both; encoders always encode)",
        disabled=not any_causal,
        key=COMPARE.generate,
    )
    params: dict[str, object] = {}
    if generate and any_causal:
        with st.expander("Generation settings", expanded=False):
            params = generation_settings(COMPARE)
        st.caption(
            "Heads are compared on the text both models share: where the continuations differ, "
            "only their common start counts."
        )
    granularity_col, top_k_col = st.columns(2)
    granularity = granularity_col.radio(
        "Align tokens on",
        list(Granularity),
        format_func=lambda g: "words and punctuation" if g is Granularity.WORD else "whitespace chunks",
        horizontal=True,
        key=COMPARE.granularity,
    )
    top_k_next = top_k_col.slider("Next-token candidates", 1, MAX_TOP_K_NEXT, 5, key=COMPARE.top_k_next)

    unusable = bool(reasons[spec_a.id] or reasons[spec_b.id])
    if st.button("Compare", type="primary", key="compare.run", disabled=unusable):
        _run(
            service,
            actor,
            model_a=spec_a,
            model_b=spec_b,
            text=text,
            generate=generate,
            generation=params,
            top_k_next=top_k_next,
            granularity=granularity,
        )

    _open_saved()
    outcome = st.session_state.get(OUTCOME)
    if outcome is not None:
        _save_panel(outcome)
        render_outcome(outcome, key="compare")


main()
