"""Generate: pick a model, type text, run it, and look at every attention head."""

from __future__ import annotations

import streamlit as st

from core.domain.analysis import MAX_NEW_TOKENS, MAX_TEXT_CHARS, MAX_TOP_K_NEXT, AnalysisForm, AnalysisMode
from core.domain.errors import HeadlightError
from core.domain.presets import GENERATE, PresetScreen
from ui.analysis_view import render_analysis
from ui.preset_panel import clamp_view_state, render_preset_panel
from ui.run_page import open_run_page
from ui.save_panel import render_save_panel

DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog. The quick brown fox"


def _parameters(kind: str, has_chat_template: bool) -> tuple[AnalysisMode, dict]:
    modes = [AnalysisMode.GENERATE, AnalysisMode.ENCODE] if kind == "causal" else [AnalysisMode.ENCODE]
    if st.session_state.get(GENERATE.mode, modes[0]) not in modes:
        # A preset (or the previous model) asked for a mode this model does not have.
        st.session_state[GENERATE.mode] = modes[0]
    mode = st.radio(
        "Mode", modes, format_func=lambda m: m.value.capitalize(), horizontal=True, key=GENERATE.mode
    )
    params: dict = {}
    with st.expander("Generation settings", expanded=False):
        left, middle, right = st.columns(3)
        params["max_new_tokens"] = left.number_input(
            "Max new tokens", 1, MAX_NEW_TOKENS, 20, key=GENERATE.max_new_tokens
        )
        params["do_sample"] = left.toggle("Sample (otherwise greedy)", key=GENERATE.do_sample)
        params["temperature"] = middle.number_input(
            "Temperature", 0.05, 5.0, 1.0, 0.05, key=GENERATE.temperature
        )
        params["top_p"] = middle.number_input("Top-p", 0.01, 1.0, 1.0, 0.01, key=GENERATE.top_p)
        params["top_k"] = right.number_input("Top-k (sampling)", 0, 1000, 50, key=GENERATE.top_k)
        params["seed"] = right.number_input("Seed", 0, 2**32 - 1, 0, key=GENERATE.seed)
        if not has_chat_template and st.session_state.get(GENERATE.chat_template):
            # A preset (or the previous model) ticked it: a disabled, ticked box would make
            # every run of this model fail, with no way to untick it.
            st.session_state[GENERATE.chat_template] = False
        chat_template = st.checkbox(
            "Wrap the text in the model's chat template",
            disabled=not has_chat_template,
            key=GENERATE.chat_template,
        )
        params["use_chat_template"] = chat_template and has_chat_template
    return mode, params


def main() -> None:
    page = open_run_page("Generate")
    if page is None:
        return
    service, actor, specs, reasons = page.service, page.actor, page.specs, page.reasons
    render_preset_panel(PresetScreen.GENERATE, available_models=set(specs))
    spec = page.pick("Model", key=GENERATE.model)
    model_id = spec.id
    st.caption(
        f"{spec.kind} · revision {spec.revision} · up to {spec.max_input_tokens:,} tokens · {spec.licence}"
    )
    text = st.text_area("Text", DEFAULT_TEXT, height=140, max_chars=MAX_TEXT_CHARS, key="generate.text")
    mode, params = _parameters(spec.kind, spec.chat_template)
    top_k_next = st.slider("Next-token candidates shown", 1, MAX_TOP_K_NEXT, 5, key=GENERATE.top_k_next)
    redact_text = st.checkbox(
        "Redact e-mail addresses, phone, card numbers and IP addresses first",
        help="Applied before the model runs, so nothing saved, cached or exported contains them.",
        key=GENERATE.redact,
    )

    left, right = st.columns([1, 4], vertical_alignment="center")
    run = left.button("Run", type="primary", key="generate.run", disabled=bool(reasons[model_id]))
    # Every message of a run goes in this one container, present on every run: the elements
    # below keep their places, so the attention view is not rebuilt by the next click.
    status = st.container()
    if run:
        progress = status.progress(0.0, text="Starting…")
        if not service.pool.is_loaded(spec):
            progress.progress(0.0, text=f"Loading {spec.label} (first use may take a minute)…")
        form = AnalysisForm(
            model_id=model_id,
            text=text,
            mode=mode,
            generation=params,
            top_k_next=top_k_next,
            redact=redact_text,
        )
        try:
            result = service.submit(
                form, actor=actor, progress=lambda f, msg: progress.progress(f, text=f"Running: {msg}")
            )
        except HeadlightError as exc:
            status.error(str(exc))
        else:
            if result.redactions:
                found = ", ".join(f"{n} {kind}" for kind, n in result.redactions.items())
                status.info(f"Redacted before analysis: {found}.")
            st.session_state["generate.analysis"] = result.analysis
            st.session_state["generate.analysed_input"] = (model_id, text)
            if result.analysis.cache_hit:
                st.toast("Served from the result cache: the model did not run.")
        finally:
            progress.empty()

    quota = service.rate_status(actor)
    if quota is not None:
        right.caption(
            f"{quota.remaining} of {quota.limit} analyses left per {quota.window}"
            + (f" · resets in {quota.reset_in_seconds} s" if quota.remaining < quota.limit else "")
        )

    analysis = st.session_state.get("generate.analysis")
    if analysis is not None:
        if st.session_state.get("generate.analysed_input") != (model_id, text):
            # A refused run, or an edit without Run: say so rather than show a stale result
            # as if it belonged to the input above.
            st.warning(
                "The result below is for the previous input, not the text and model above. "
                "Press Run to analyse them."
            )
        clamp_view_state(analysis)
        render_analysis(analysis, key="generate")
        render_save_panel(analysis, key="generate")


main()
