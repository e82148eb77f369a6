"""Streamlit pieces of the head atlas: the list, layers × heads heatmaps per score, the top
heads of each kind, the rows where one head scores highest (with a click-through to the
full analysis), the CSV export, and sharing."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.access.permissions import Scope
from core.attention import atlas
from core.attention.atlas import ATLAS_STATS, HEAD_KINDS, STAT_LABELS, AtlasResult
from core.domain.analysis import MAX_TEXT_CHARS, AnalysisRequest
from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.domain.owned import RecordKind
from core.domain.presets import GENERATE
from core.service import batch, records
from core.store.atlases import AtlasSummary, AtlasView
from ui import plots, share_panel
from ui.analysis_view import render_analysis
from ui.batch_view import ATLAS, FLASH, escaped, pick
from ui.resources import get_service
from ui.session import current_actor

SCOPE_LABELS = {
    Scope.ALL: "All I can see",
    Scope.MINE: "Mine",
    Scope.PUBLIC: "Public",
    Scope.SHARED: "Shared with me",
}
UNITS = {"mean_distance": "tokens", "entropy": "nats"}
ANALYSIS = "batch.atlas.analysis"
HISTORY_OPEN = "history.atlas.open_id"
HISTORY_LIMIT = 50


def _top_heads_table(result: AtlasResult) -> list[dict[str, Any]]:
    rows = []
    for label, stat, highest in HEAD_KINDS:
        for rank, ranked in enumerate(atlas.top_heads(result.means[stat], k=3, highest=highest), start=1):
            rows.append(
                {
                    "kind": label,
                    "rank": rank,
                    "head": f"L{ranked.layer} H{ranked.head}",
                    "score": round(ranked.value, 4),
                    "measured as": STAT_LABELS[stat],
                }
            )
    return rows


def _pick_head(result: AtlasResult, stat: str, selection: Any) -> tuple[int, int]:
    """The head clicked in the heatmap, else the number inputs (defaulting to the top head)."""
    points = selection.get("selection", {}).get("points", []) if isinstance(selection, dict) else []
    clicked = (str(points[0]["y"]), str(points[0]["x"])) if points else None
    # The chart keeps its selection across runs: apply a click once, then let the inputs rule.
    if clicked is not None and clicked != st.session_state.get("batch.atlas.clicked"):
        st.session_state["batch.atlas.layer"] = int(clicked[0].removeprefix("L"))
        st.session_state["batch.atlas.head"] = int(clicked[1].removeprefix("H"))
    st.session_state["batch.atlas.clicked"] = clicked
    best = atlas.top_heads(result.means[stat], k=1)
    default = (best[0].layer, best[0].head) if best else (0, 0)
    st.session_state.setdefault("batch.atlas.layer", default[0])
    st.session_state.setdefault("batch.atlas.head", default[1])
    left, right = st.columns(2)
    layer = left.number_input("Layer", 0, result.n_layers - 1, key="batch.atlas.layer")
    head = right.number_input("Head", 0, result.n_heads - 1, key="batch.atlas.head")
    return int(layer), int(head)


def _run_row(record: AtlasView, text: str) -> None:
    """Analyse one dataset row with the atlas's model and keep it for the inline view."""
    try:
        request = AnalysisRequest(model_id=record.model_id, text=text[:MAX_TEXT_CHARS])
        with st.spinner(f"Running {record.model_id} on this row…"):
            st.session_state[ANALYSIS] = get_service().run(request, actor=current_actor())
    except (HeadlightError, ValueError) as exc:
        st.error(str(exc))


def _open_in_generate(record: AtlasView, text: str) -> None:
    st.session_state[GENERATE.model] = record.model_id
    st.session_state["generate.text"] = text[:MAX_TEXT_CHARS]
    st.switch_page("pages/generate.py")


def _top_rows(record: AtlasView, viewer: Viewer | None, stat: str, layer: int, head: int) -> None:
    """The rows where a head scores highest; ``viewer`` None for a share-link visitor (read-only)."""
    rows = batch.top_rows(viewer=viewer, atlas=record, stat=stat, layer=layer, head=head)
    st.markdown(f"**Rows where L{layer} H{head} scores highest on {STAT_LABELS[stat].lower()}**")
    if not rows:
        st.caption("No row has this score for this head (induction needs a repeated token).")
    for top in rows:
        with st.container(border=True):
            text_col, run_col, open_col = st.columns([6, 1, 1], vertical_alignment="center")
            with text_col:
                escaped(f"row {top.position} · {top.value:.3f}", style="color:#57606a;font-size:0.85em")
                escaped(top.text[:400] + ("…" if len(top.text) > 400 else ""))
            if viewer is None:
                continue
            if run_col.button("Analyse", key=f"batch.atlas.run.{top.row_id}"):
                _run_row(record, top.text)
            if open_col.button("Generate ↗", key=f"batch.atlas.open.{top.row_id}"):
                _open_in_generate(record, top.text)
    analysis = st.session_state.get(ANALYSIS)
    if analysis is not None and analysis.model.model_id == record.model_id:
        st.divider()
        render_analysis(analysis, key="batch.atlas.view")


def _sharing(record: AtlasView, viewer: Viewer) -> None:
    share_panel.render(record.id, is_public=record.is_public, kind=RecordKind.ATLAS)
    with st.expander("Share with a user", icon=":material/group:"):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        username = left.text_input("Share with (username)", key="batch.atlas.share.user")
        if right.button("Share", key="batch.atlas.share") and username.strip():
            FLASH.act(
                lambda viewer: batch.share_atlas(viewer=viewer, atlas_id=record.id, username=username),
                success=f"Shared with {username.strip()}.",
            )
            st.rerun()
        grantees = batch.atlas_grantees(viewer=viewer, atlas_id=record.id)
        for user_id, name in grantees:
            left, right = st.columns([4, 1])
            left.write(name)
            if right.button("Stop sharing", key=f"batch.atlas.unshare.{user_id}"):
                FLASH.act(
                    lambda viewer, user_id=user_id: batch.unshare_atlas(
                        viewer=viewer, atlas_id=record.id, user_id=user_id
                    ),
                    success="Stopped sharing.",
                )
                st.rerun()


def atlas_panel(record: AtlasView, viewer: Viewer | None) -> None:
    """One atlas: facts, export, sharing, heatmaps, top heads and top rows.

    ``viewer`` None shows it read-only to a visitor who followed a share link.
    """
    result = record.result
    escaped(record.title, style="font-size:1.4em;font-weight:600")
    st.caption(
        f"{record.model_id} ({record.n_layers} layers × {record.n_heads} heads) · {record.rows_used:,} rows"
        + (f", {record.rows_failed:,} failed" if record.rows_failed else "")
        + f" · {record.created_at:%Y-%m-%d %H:%M} UTC · {'public' if record.is_public else 'private'}"
    )
    left, right = st.columns(2)
    if viewer is None:
        data = atlas.atlas_csv(result)
    else:
        data = batch.export_atlas_csv(viewer=viewer, atlas_id=record.id)
    left.download_button(
        "Download CSV",
        data,
        file_name=f"headlight-atlas-{record.id}.csv",
        mime="text/csv",
        key="batch.atlas.csv",
    )
    if (
        viewer is not None
        and record.access.can_write
        and right.button("Delete atlas", key="batch.atlas.delete")
    ):
        FLASH.act(
            lambda viewer: records.delete(viewer=viewer, kind=RecordKind.ATLAS, record_id=record.id),
            success="Atlas moved to the Trash.",
        )
        st.session_state.pop(ATLAS, None)
        st.rerun()
    if viewer is not None and record.access.can_share:
        _sharing(record, viewer)
    st.markdown("**Top heads of each kind**")
    st.dataframe(_top_heads_table(result), hide_index=True, key="batch.atlas.top")
    stat = st.radio(
        "Score", ATLAS_STATS, format_func=STAT_LABELS.get, horizontal=True, key="batch.atlas.stat"
    )
    selection = st.plotly_chart(
        plots.head_stat_heatmap(result.means[stat], title=STAT_LABELS[stat], unit=UNITS.get(stat, "")),
        key="batch.atlas.heatmap",
        on_select="rerun",
        selection_mode="points",
    )
    st.caption(
        f"{int(result.rows_scored[stat].max()):,} rows carry this score. Click a cell to pick its head."
    )
    layer, head = _pick_head(result, stat, selection)
    _top_rows(record, viewer, stat, layer, head)


def _atlas_label(record: AtlasSummary | AtlasView) -> str:
    return f"#{record.id} {record.title} · {record.rows_used:,} rows · {record.created_at:%Y-%m-%d}"


def atlases_section(viewer: Viewer) -> None:
    scope = st.radio(
        "Show", list(SCOPE_LABELS), format_func=SCOPE_LABELS.get, horizontal=True, key="batch.atlases.scope"
    )
    items = batch.list_atlases(viewer=viewer, scope=Scope(scope))
    if not items:
        st.info("No head atlases yet: run a head-atlas job on the Jobs tab.")
        return
    by_id = {record.id: record for record in items}
    atlas_id = pick(
        "Atlas",
        list(by_id),
        key="batch.atlases.pick",
        remembered=st.session_state.get(ATLAS),
        describe=lambda i: _atlas_label(by_id[i]),
    )
    if st.session_state.get(ATLAS) != atlas_id:
        st.session_state.pop(ANALYSIS, None)
    st.session_state[ATLAS] = atlas_id
    atlas_panel(batch.open_atlas(viewer=viewer, atlas_id=atlas_id), viewer)


def history_section(viewer: Viewer) -> None:
    """On History: the head atlases the viewer may read; Open shows one below the list."""
    items = batch.list_atlases(viewer=viewer)
    if not items:
        st.info("No head atlases to show. Run a head-atlas job on the Batch screen.")
        return
    for record in items[:HISTORY_LIMIT]:
        with st.container(border=True):
            left, right = st.columns([6, 1], vertical_alignment="center")
            with left:
                escaped(_atlas_label(record), style="font-weight:600")
                escaped(
                    f"{record.model_id} · dataset {record.dataset_name}"
                    + (" · public" if record.is_public else ""),
                    style="color:#57606a;font-size:0.85em",
                )
            if right.button("Open", key=f"history.atlas.{record.id}"):
                st.session_state[HISTORY_OPEN] = record.id
    atlas_id = st.session_state.get(HISTORY_OPEN)
    if atlas_id is None:
        return
    try:
        record = batch.open_atlas(viewer=viewer, atlas_id=atlas_id)
    except HeadlightError as exc:
        st.session_state.pop(HISTORY_OPEN, None)
        st.warning(str(exc))
        return
    st.divider()
    atlas_panel(record, viewer)
