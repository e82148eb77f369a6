"""Streamlit pieces of the Models screen: the registry table, per-model actions, recent load
failures and the "Add a model" form.

Each action runs in its own `transaction.unit_of_work` (the change and its audit event commit
together); its outcome is kept in session state and shown at the top of the next run. Text an
admin typed (labels, paths) reaches the screen through dataframes or `literal`, never as
Markdown or HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from sqlalchemy.orm import Session

from core.domain.identity import Viewer
from core.domain.settings import Settings
from core.models.registry import TEXT_FIELD_MAX
from core.service.analysis_service import AnalysisService
from core.store import model_admin, transaction
from core.store.model_admin import FailureRow, ModelRow, NewModel, process_name
from ui.session import current_viewer

FLASH = "models.flash"
NEW_FAMILY = "(a new model)"
ORIGINS = {
    "local": "A directory on the server",
    "hub": "Hugging Face hub id (from the local cache)",
    "upload": "Upload an archive (.zip, .tar.gz)",
}
KINDS = {"auto": "from config.json", "causal": "causal (generates)", "encoder": "encoder"}
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")

Outcome = tuple[str, str]  # ("success" | "error", message)
Action = Callable[[Session, Viewer], Outcome]


def literal(text: str) -> str:
    """``text`` with Markdown's special characters escaped, for st.success/st.error."""
    return _MARKDOWN.sub(r"\\\1", text)


def run(action: Action) -> None:
    """One admin action in one transaction; its outcome is flashed on the next run."""
    try:
        with transaction.unit_of_work() as session:
            st.session_state[FLASH] = action(session, current_viewer())
    except ValueError as exc:  # HeadlightError and validation errors carry a readable message
        # (the core turns archive, disk and database errors into HeadlightErrors).
        st.session_state[FLASH] = ("error", str(exc))


def show_flash() -> None:
    kind, message = st.session_state.pop(FLASH, (None, None))
    if kind:
        (st.success if kind == "success" else st.error)(literal(message))


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
            run(lambda session, viewer: _load(session, viewer, service, chosen))
        st.rerun()
    if unload_col.button("Unload", key="models.unload", disabled=not row.loaded):
        run(lambda session, viewer: _unload(session, viewer, service, chosen))
        st.rerun()
    toggle = "Turn off" if row.enabled else "Turn on"
    if enable_col.button(toggle, key="models.toggle", help="Turned-off models leave the pickers."):
        run(lambda session, viewer: _set_enabled(session, viewer, service, chosen, not row.enabled))
        st.rerun()
    if default_col.button("Make default", key="models.default", disabled=row.is_default or not row.enabled):
        run(lambda session, viewer: _set_default(session, viewer, service, chosen))
        st.rerun()


def _load(session: Session, viewer: Viewer, service: AnalysisService, model_id: str) -> Outcome:
    outcome = model_admin.load(session=session, viewer=viewer, service=service, model_id=model_id)
    return ("success" if outcome.ok else "error", outcome.message)


def _unload(session: Session, viewer: Viewer, service: AnalysisService, model_id: str) -> Outcome:
    done = model_admin.unload(session=session, viewer=viewer, service=service, model_id=model_id)
    return ("success", f"{model_id} unloaded." if done else f"{model_id} was not loaded.")


def _set_enabled(
    session: Session, viewer: Viewer, service: AnalysisService, model_id: str, enabled: bool
) -> Outcome:
    model_admin.set_enabled(
        session=session, viewer=viewer, service=service, model_id=model_id, enabled=enabled
    )
    return ("success", f"{model_id} is turned {'on' if enabled else 'off'}.")


def _set_default(session: Session, viewer: Viewer, service: AnalysisService, model_id: str) -> Outcome:
    model_admin.set_default(session=session, viewer=viewer, service=service, model_id=model_id)
    return ("success", f"{model_id} is now the default model.")


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

    def add(session: Session, viewer: Viewer) -> Outcome:
        common = {"session": session, "viewer": viewer, "service": service, "new": form.new}
        if form.origin == "local":
            added = model_admin.add_local(directory=form.directory, **common)
        elif form.origin == "hub":
            added = model_admin.add_hub(repo=form.repo, revision=form.revision, **common)
        elif upload is None:
            return ("error", "Choose an archive to upload first.")
        else:
            added = model_admin.add_upload(
                data=upload,
                filename=upload.name,
                uploads_dir=settings.uploaded_models_dir,
                max_bytes=settings.model_upload_max_mb * 2**20,
                **common,
            )
        row = added.row
        message = f"Added {row.model_id} (revision {row.revision}); it is on and in the pickers."
        return ("success", " ".join([message, *added.warnings]))

    with st.spinner("Checking the model…"):
        run(add)
    st.rerun()
