"""An opened saved analysis on the History screen: its actions, exports and notes.

Pinned notes are listed with their layer, head and token range next to the view, their
tokens are marked in the text, and "Show head" points the view's heatmap at their head.
"""

from __future__ import annotations

import html

import streamlit as st

from core.domain.analysis import Analysis
from core.domain.identity import Viewer
from core.domain.owned import RecordKind
from core.service import history, records
from core.store.analyses import NoteView, SavedAnalysisView
from ui.actions import Work
from ui.history_view import FLASH, OPEN, escaped_block

EXPORT = "history.export"
# The analysis view's head picker (ui/analysis_view.py, key prefix "history").
HEATMAP_LAYER, HEATMAP_HEAD = "history.hm.layer", "history.hm.head"
FLASH_HINT = "history.note.hint"


def _close() -> None:
    st.session_state.pop(OPEN, None)


def _delete(visualization_id: int) -> None:
    if FLASH.act(
        lambda viewer: records.delete(viewer=viewer, kind=RecordKind.ANALYSIS, record_id=visualization_id),
        success=f"Moved analysis #{visualization_id} to the Trash.",
    ):
        _close()


def _prepare_export(kind: history.ExportKind, visualization_id: int) -> None:
    def build(viewer: Viewer) -> None:
        download = history.export_analysis(viewer=viewer, visualization_id=visualization_id, kind=kind)
        st.session_state[EXPORT] = (visualization_id, download.name, download.data, download.mime)

    FLASH.act(build)


def toolbar(record: SavedAnalysisView, viewer: Viewer) -> bool:
    """Close, delete, exports and "Recompute full detail"; returns whether recompute was clicked."""
    columns = st.columns(6)
    columns[0].button("Close", key="history.open.close", on_click=_close)
    # Actions the viewer may not take are left out rather than shown disabled.
    if record.access.can_write:
        columns[1].button("Delete", key="history.open.delete", on_click=_delete, args=(record.id,))
    recompute = columns[2].button(
        "Recompute full detail",
        key="history.open.recompute",
        help="Run the stored request again (same model revision, parameters and seed).",
    )
    exports = [("json", "Export JSON"), ("zip", "Export ZIP")]
    if viewer.user_id is not None:
        exports.append(("csv", "CSV of mine"))
    for column, (kind, label) in zip(columns[3:], exports, strict=False):
        column.button(
            label, key=f"history.open.export.{kind}", on_click=_prepare_export, args=(kind, record.id)
        )
    prepared = st.session_state.get(EXPORT)
    if prepared and prepared[0] == record.id:
        _, name, data, mime = prepared
        st.download_button(
            f"Download {name} ({len(data) / 1024:,.0f} KiB)",
            data=data,
            file_name=name,
            mime=mime,
            key="history.open.download",
        )
    return recompute


def pin_label(note: NoteView, analysis: Analysis) -> str:
    """``L3 · H2 · tokens 4–7 “covered text”`` for a pinned note; empty when unpinned."""
    parts = []
    if note.layer is not None:
        parts.append(f"L{note.layer}" + (f" · H{note.head}" if note.head is not None else ""))
    if note.token_start is not None and note.token_end is not None:
        start, end = note.token_start, note.token_end
        covered = analysis.text[analysis.offsets[start][0] : analysis.offsets[end][1]]
        span = f"token {start}" if start == end else f"tokens {start}–{end}"
        parts.append(f"{span} “{covered}”")
    return " · ".join(parts)


def pinned_text_html(analysis: Analysis, notes: list[NoteView]) -> str:
    """The analysed text, escaped, with every pinned token in a ``<mark>``."""
    marked: dict[int, list[str]] = {}
    for note in notes:
        if note.token_start is not None and note.token_end is not None:
            for index in range(note.token_start, note.token_end + 1):
                marked.setdefault(index, []).append(note.body)
    parts, cursor = [], 0
    for index, (start, end) in enumerate(analysis.offsets):
        if start > cursor:
            parts.append(html.escape(analysis.text[cursor:start]))
        piece = html.escape(analysis.text[start:end])
        if index in marked:
            title = html.escape(f"token {index}: " + " | ".join(marked[index]), quote=True)
            piece = f'<mark title="{title}">{piece}</mark>'
        parts.append(piece)
        cursor = max(cursor, end)
    parts.append(html.escape(analysis.text[cursor:]))
    body = "".join(parts).replace("\n", "<br>")
    return (
        '<div style="white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:0.85em;'
        f'border:1px solid #ddd;border-radius:6px;padding:0.5em">{body}</div>'
    )


def _show_head(layer: int, head: int) -> None:
    st.session_state[HEATMAP_LAYER] = layer
    st.session_state[HEATMAP_HEAD] = head
    st.session_state[FLASH_HINT] = f"The head heatmap tab now shows layer {layer}, head {head}."


def _pin_inputs(record: SavedAnalysisView, prefix: str, note: NoteView | None = None) -> dict[str, object]:
    n_layers, n_heads = record.n_layers, record.n_heads
    left, right = st.columns(2)
    fields = [
        (left, "Layer", "layer", n_layers - 1),
        (right, "Head", "head", n_heads - 1),
        (left, "First token", "token_start", record.token_count - 1),
        (right, "Last token", "token_end", record.token_count - 1),
    ]
    values: dict[str, object] = {}
    for column, label, name, highest in fields:
        values[name] = column.number_input(
            label,
            min_value=0,
            max_value=highest,
            value=getattr(note, name) if note is not None else None,
            step=1,
            key=f"{prefix}.{name}",
            placeholder="optional",
        )
    return values


def _note_form(record: SavedAnalysisView, note: NoteView | None = None) -> None:
    prefix = f"history.note.edit.{note.id}" if note else "history.note.add"
    with st.form(prefix, clear_on_submit=note is None, border=note is None):
        body = st.text_area("Note", value=note.body if note else "", key=f"{prefix}.body", max_chars=5000)
        st.caption("Pin it to a head and tokens (optional):")
        values = {"body": body, **_pin_inputs(record, prefix, note)}
        if st.form_submit_button("Save note" if note else "Add note"):
            FLASH.act(_add_action(record.id, values) if note is None else _edit_action(note.id, values))
            st.rerun()


def _add_action(visualization_id: int, values: dict[str, object]) -> Work:
    def add(viewer: Viewer) -> str:
        history.add_note(viewer=viewer, visualization_id=visualization_id, values=values)
        return "Note added."

    return add


def _edit_action(annotation_id: int, values: dict[str, object]) -> Work:
    def edit(viewer: Viewer) -> str:
        history.edit_note(viewer=viewer, annotation_id=annotation_id, values=values)
        return "Note saved."

    return edit


def _delete_note(annotation_id: int) -> None:
    FLASH.act(
        lambda viewer: history.delete_note(viewer=viewer, annotation_id=annotation_id),
        success="Note deleted.",
    )


def notes_panel(record: SavedAnalysisView, analysis: Analysis) -> None:
    """Notes beside the view: pinned tokens marked in the text, each note, add/edit/delete."""
    st.markdown("**Notes**")
    hint = st.session_state.pop(FLASH_HINT, None)
    if hint:
        st.info(hint)
    pinned = [note for note in record.notes if note.token_start is not None]
    if pinned:
        st.markdown(pinned_text_html(analysis, pinned), unsafe_allow_html=True)
    if not record.notes:
        st.caption("No notes yet.")
    for note in record.notes:
        with st.container(border=True):
            label = pin_label(note, analysis)
            if label:
                escaped_block(label, style="color:#e8590c;font-weight:600;font-size:0.85em")
            escaped_block(note.body)
            escaped_block(f"— {note.author}", style="color:#57606a;font-size:0.8em")
            if note.layer is not None:
                st.button(
                    "Show head",
                    key=f"history.note.show.{note.id}",
                    on_click=_show_head,
                    args=(note.layer, note.head or 0),
                )
            if note.can_edit:
                with st.expander("Edit"):
                    _note_form(record, note)
                st.button(
                    "Delete note",
                    key=f"history.note.delete.{note.id}",
                    on_click=_delete_note,
                    args=(note.id,),
                )
    if record.can_annotate:
        _note_form(record)
