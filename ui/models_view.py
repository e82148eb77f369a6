"""Streamlit pieces of the Models screen: the registry table, per-model actions, recent load
failures and the "Add a model" form.

Each action is one call of `core.service.models_screen` (one transaction: the change and its
audit event commit together) run through `FLASH`, which shows its outcome at the top of the
next run. Text an
admin typed (labels, paths) reaches the screen through dataframes or `literal`, never as
Markdown or HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from core.domain.identity import Viewer
from core.domain.settings import Settings
from core.models.registry import TEXT_FIELD_MAX
from core.service import models_screen
from core.service.analysis_service import AnalysisService
from core.service.models_screen import ModelFiles
from core.store.model_admin import FailureRow, ModelRow, NewModel, process_name
from ui.actions import Flash, Notice

NEW_FAMILY = "(a new model)"
ORIGINS = {
    "local": "A directory on the server",
    "hub": "Hugging Face hub id (from the local cache)",
    "upload": "Upload an archive (.zip, .tar.gz)",
}
KINDS = {"auto": "from config.json", "causal": "causal (generates)", "encoder": "encoder"}
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def literal(text: str) -> str:
    """``text`` with Markdown's special characters escaped, for st.success/st.error."""
    return _MARKDOWN.sub(r"\\\1", text)


FLASH = Flash("models.flash", escape=literal)


# The pool is per process: another replica or worker may hold other models.
LOADED, DEVICE, MEMORY = "loaded (this process)", "device (this process)", "memory MiB (this process)"


def model_table(rows: list[ModelRow], skipped: list[tuple[str, str]] | None = None) -> None:
    for model_id, reason in skipped or []:
        st.warning(literal(f"Registry row '{model_id}' is not a valid model and is left out: {reason}"))
    st.caption(
        "Loaded, device and memory describe this server process only; other replicas and batch "
        "workers keep their own models in memory."
    )
    table = [
        {
            "model id": row.model_id,
            "version": row.version or "(original)",
            "label": row.label,
            "kind": row.kind,
            "state": row.state,
            "detail": row.reason,
            "enabled": row.enabled,
            "default": row.is_default,
            LOADED: row.loaded,
            DEVICE: row.device,
            MEMORY: row.memory_mb,
            "revision": row.revision,
            "source": row.source,
            "from": row.origin,
            "added by": row.added_by,
            "added (UTC)": row.added_at.strftime("%Y-%m-%d %H:%M"),
        }
        for row in rows
    ]
    st.dataframe(table, hide_index=True, key="models.table")


def _label(row: ModelRow) -> str:
    flags = [flag for flag, on in (("default", row.is_default), ("off", not row.enabled)) if on]
    return f"{row.model_id} — {row.label}" + (f" ({', '.join(flags)})" if flags else "")


def model_actions(rows: list[ModelRow], service: AnalysisService) -> None:
    """Load, unload, turn on/off and make default, for the model chosen in a select box."""
    by_id = {row.model_id: row for row in rows}
    chosen = st.selectbox("Model", list(by_id), format_func=lambda i: _label(by_id[i]), key="models.chosen")
    if chosen is None:
        return
    row = by_id[chosen]
    if not row.available:
        st.caption(f"Unavailable here: {literal(row.reason)}")
    st.caption("Load and Unload act on this server process's memory.")
    load_col, unload_col, enable_col, default_col = st.columns(4)
    if load_col.button(
        "Load", key="models.load", disabled=row.loaded or not row.available or not row.enabled
    ):
        # The spinner's text is Markdown: the admin-typed label goes through `literal`.
        with st.spinner(f"Loading {literal(row.label)} (a first load may take a minute)…"):
            FLASH.act(lambda viewer: _load(viewer, service, chosen))
        st.rerun()
    if unload_col.button("Unload", key="models.unload", disabled=not row.loaded):
        FLASH.act(
            lambda viewer: (
                f"{chosen} unloaded."
                if models_screen.unload_model(viewer=viewer, service=service, model_id=chosen)
                else f"{chosen} was not loaded."
            )
        )
        st.rerun()
    toggle = "Turn off" if row.enabled else "Turn on"
    if enable_col.button(toggle, key="models.toggle", help="Turned-off models leave the pickers."):
        FLASH.act(
            lambda viewer: models_screen.set_enabled(
                viewer=viewer, service=service, model_id=chosen, enabled=not row.enabled
            ),
            success=f"{chosen} is turned {'off' if row.enabled else 'on'}.",
        )
        st.rerun()
    if default_col.button("Make default", key="models.default", disabled=row.is_default or not row.enabled):
        FLASH.act(
            lambda viewer: models_screen.set_default(viewer=viewer, service=service, model_id=chosen),
            success=f"{chosen} is now the default model.",
        )
        st.rerun()


def _load(viewer: Viewer, service: AnalysisService, model_id: str) -> Notice:
    outcome = models_screen.load_model(viewer=viewer, service=service, model_id=model_id)
    return ("success" if outcome.ok else "error", outcome.message)


def failures(rows: list[FailureRow]) -> None:
    st.subheader("Recent load failures")
    if not rows:
        st.caption("No model failed to load in any server process or batch worker.")
        return
    st.caption("From the audit log: every replica and batch worker records its failed loads.")
    here = process_name()
    table = [
        {
            "when (UTC)": row.at.strftime("%Y-%m-%d %H:%M:%S"),
            "model": row.model_id,
            "process": f"{row.process} (this process)" if row.process == here else row.process,
            "reason": row.reason,
        }
        for row in rows
    ]
    st.dataframe(table, hide_index=True, key="models.failures")


@dataclass(frozen=True)
class _AddForm:
    origin: str
    new: NewModel
    directory: str = ""
    repo: str = ""
    revision: str = ""


def _add_widgets(families: list[str]) -> _AddForm:
    origin = st.radio(
        "From", list(ORIGINS), format_func=ORIGINS.__getitem__, horizontal=True, key="models.add.origin"
    )
    left, right = st.columns(2)
    family = left.selectbox(
        "Version of",
        [NEW_FAMILY, *families],
        key="models.add.family",
        help="Versions of one model sit side by side.",
    )
    if family == NEW_FAMILY:
        family = left.text_input("New model id", key="models.add.new_id", placeholder="e.g. tinyllama-1.1b")
    version = right.text_input(
        "Version name",
        key="models.add.version",
        placeholder="e.g. local-copy",
        help="The model id becomes <model>@<version>; required when the model is already registered.",
    )
    directory = repo = revision = ""
    if origin == "local":
        directory = st.text_input("Directory on the server", key="models.add.directory")
    elif origin == "hub":
        repo_col, revision_col = st.columns(2)
        repo = repo_col.text_input("Hub id", key="models.add.repo", placeholder="owner/name")
        revision = revision_col.text_input(
            "Commit sha",
            key="models.add.revision",
            help="A full 40-character commit: branches and tags move.",
        )
    with st.expander("Details (optional: taken from the model's files or its other versions)"):
        label = st.text_input("Label", key="models.add.label", max_chars=TEXT_FIELD_MAX)
        licence = st.text_input("Licence", key="models.add.licence", max_chars=TEXT_FIELD_MAX)
        tokens_col, kind_col = st.columns(2)
        max_tokens = tokens_col.number_input(
            "Max input tokens (0: from config.json)", 0, 131_072, 0, key="models.add.max_tokens"
        )
        kind = kind_col.selectbox("Kind", list(KINDS), format_func=KINDS.__getitem__, key="models.add.kind")
    new = NewModel(
        family=family or "",
        version=version,
        label=label,
        licence=licence,
        max_input_tokens=int(max_tokens) or None,
        kind=None if kind == "auto" else kind,  # type: ignore[arg-type]
    )
    return _AddForm(origin=str(origin), new=new, directory=directory, repo=repo, revision=revision)


def add_form(families: list[str], service: AnalysisService, settings: Settings) -> None:
    st.subheader("Add a model")
    st.caption(
        "Headlight checks config.json, the tokenizer and the safetensors weights before adding a model, "
        "refuses models that need their own code, and never downloads."
    )
    form = _add_widgets(families)
    upload = None
    if form.origin == "upload":
        # No per-widget cap: Streamlit checks that one only in the browser, so the server's
        # maxUploadSize (.streamlit/config.toml) is the real limit for every uploader.
        upload = st.file_uploader(
            "Archive",
            type=["zip", "gz", "tgz", "tar"],
            key="models.add.upload",
            help="Archives up to the server's upload limit (50 MB by default); register bigger models "
            "from a directory on the server or from the Hugging Face cache.",
        )
    if not st.button("Add model", type="primary", key="models.add.submit"):
        return

    files = ModelFiles(
        origin=form.origin,  # type: ignore[arg-type]
        directory=form.directory,
        repo=form.repo,
        revision=form.revision,
        upload=upload,
        filename=upload.name if upload is not None else "",
    )

    def add(viewer: Viewer) -> str:
        added = models_screen.add_model(
            viewer=viewer, service=service, settings=settings, new=form.new, files=files
        )
        message = f"Added {added.model_id} (revision {added.revision}); it is on and in the pickers."
        return " ".join([message, *added.warnings])

    with st.spinner("Checking the model…"):
        FLASH.act(add)
    st.rerun()
