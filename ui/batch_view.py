"""Streamlit pieces of the Batch screen: datasets (upload, checks, preview, tokenization) and
jobs (launch, live progress, cancel, resume, timeline). The head atlas is `atlas_view`.

Every button runs one service call (`core.service.batch`, one transaction each) through
`FLASH`, which keeps its outcome for the next run. The service dispatches a job only after the
transaction that queued it committed, so a worker never looks for a job it cannot see yet.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from typing import Any

import streamlit as st

from core.access import permissions
from core.domain.identity import Viewer
from core.domain.owned import RecordKind
from core.jobs.contract import ACTIVE, JobStatus
from core.service import batch, records
from core.store import datasets
from core.store.datasets import DatasetError, DatasetFormat, ParseReport
from core.store.jobs import JobSummary, JobView
from core.store.saved_datasets import DatasetView
from ui import plots
from ui.actions import Flash
from ui.resources import get_dispatcher, get_service

FLASH = Flash("batch.flash")
SECTION = "batch.section"
DATASET = "batch.dataset"
JOB = "batch.job"
ATLAS = "batch.atlas"
SECTIONS = ("Datasets", "Jobs", "Atlases")
# The job panel refreshes this often while its job is queued or running.
REFRESH_S = 1.0
STATUS_ICONS = {
    JobStatus.QUEUED: "⏳",
    JobStatus.RUNNING: "▶️",
    JobStatus.COMPLETED: "✅",
    JobStatus.FAILED: "❌",
    JobStatus.CANCELLED: "⏹️",
}


def escaped(text: str, *, style: str = "") -> None:
    """User text shown literally (escaped, in a block so Markdown leaves it alone)."""
    st.markdown(f'<div style="{style}">{html.escape(text)}</div>', unsafe_allow_html=True)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "–"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


# -- datasets --------------------------------------------------------------------------------


def _parsed(name: str, data: bytes, fmt: DatasetFormat, column: str | None) -> ParseReport:
    """The checked upload, parsed once per file and column (kept in session state)."""
    key = (name, len(data), hash(data), fmt, column)
    cached = st.session_state.get("batch.upload.parsed")
    if cached is None or cached[0] != key:
        cached = (key, datasets.parse(data, fmt, column=column))
        st.session_state["batch.upload.parsed"] = cached
    return cached[1]


def upload_panel() -> None:
    """File, column or field, checks with the skip report, then Save."""
    upload = st.file_uploader(
        "CSV (choose the text column), JSONL (choose the field) or plain text (one item per line)",
        type=["csv", "tsv", "jsonl", "ndjson", "txt"],
        max_upload_size=datasets.MAX_UPLOAD_BYTES // 2**20,
        # A new key after each save gives an empty uploader for the next file.
        key=f"batch.upload.file.{st.session_state.get('batch.upload.saved', 0)}",
    )
    if upload is None:
        return
    data = upload.getvalue()
    try:
        fmt = datasets.detect_format(upload.name)
        choices = datasets.columns(data, fmt)
        column = None
        if choices:
            label = "Text column" if fmt is DatasetFormat.CSV else "Text field"
            column = st.selectbox(label, choices, key="batch.upload.column")
        report = _parsed(upload.name, data, fmt, column)
    except DatasetError as exc:
        st.error(str(exc))
        return
    summary = report.summary()
    (st.warning if summary["skipped"] else st.success)(datasets.describe(summary))
    if summary["examples"]:
        with st.expander(f"Skipped rows ({summary['skipped']:,})"):
            st.dataframe(summary["examples"], hide_index=True, key="batch.upload.skipped")
    st.dataframe(
        [{"line": row.line, "text": row.text} for row in report.rows[:10]],
        hide_index=True,
        key="batch.upload.preview",
    )
    name = st.text_input("Name", value=upload.name.rsplit(".", 1)[0], max_chars=200, key="batch.upload.name")

    def save(viewer: Viewer) -> str:
        dataset = batch.create_dataset(viewer=viewer, name=name, filename=upload.name, report=report)
        st.session_state[DATASET] = st.session_state["batch.datasets.pick"] = dataset.id
        st.session_state["batch.upload.saved"] = st.session_state.get("batch.upload.saved", 0) + 1
        return f"Saved dataset #{dataset.id} with {dataset.row_count:,} rows."

    if st.button("Save dataset", type="primary", key="batch.upload.save") and FLASH.act(save):
        st.rerun()


def pick(
    label: str, options: list[int], *, key: str, remembered: object, describe: Callable[[int], str]
) -> int:
    """A selectbox over record ids that starts on the ``remembered`` one when it can.

    The browser keeps the chosen option's label from when the value was last sent, and a
    label can change while the choice does not (a job's status and progress): the
    choice is sent again on every run so the box shows the label of this run.
    """
    chosen = st.session_state.get(key)
    if chosen not in options:
        chosen = remembered if remembered in options else options[0]
    st.session_state[key] = chosen
    return st.selectbox(label, options, format_func=describe, key=key)


def choose_dataset(items: list[DatasetView], *, key: str) -> DatasetView | None:
    """A dataset picker that remembers the choice across sections."""
    if not items:
        st.info("No datasets yet: upload one above.")
        return None
    by_id = {d.id: d for d in items}
    chosen = pick(
        "Dataset",
        list(by_id),
        key=key,
        remembered=st.session_state.get(DATASET),
        describe=lambda i: by_id[i].label,
    )
    st.session_state[DATASET] = chosen
    return by_id[chosen]


def _count_tokens(dataset_id: int, model_id: str) -> None:
    """Tokenize every row (outside any transaction) and store the statistics."""

    def count(viewer: Viewer) -> str:
        stats = batch.tokenize_dataset(
            viewer=viewer, dataset_id=dataset_id, service=get_service(), model_id=model_id
        )
        return f"{stats.total_tokens:,} tokens in {stats.rows:,} rows."

    FLASH.act(count)


def _tokenization_panel(dataset: DatasetView, viewer: Viewer) -> None:
    service = get_service()
    usable = [spec for spec, reason in service.model_choices() if reason is None]
    if permissions.can_create(viewer) and usable:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        model_id = left.selectbox(
            "Tokenizer of",
            [s.id for s in usable],
            format_func=lambda i: service.registry.get(i).label,
            key="batch.tokens.model",
        )
        if right.button("Count tokens", key="batch.tokens.run"):
            with st.spinner("Tokenizing every row…"):
                _count_tokens(dataset.id, model_id)
    stored = batch.tokenizations(viewer=viewer, dataset_id=dataset.id)
    for model_id, revision, stats in stored:
        st.markdown(f"**{model_id}** (revision {revision})")
        columns = st.columns(5)
        columns[0].metric("Tokens", f"{stats.total_tokens:,}")
        columns[1].metric("Mean per row", f"{stats.mean_tokens:.1f}")
        columns[2].metric("95th percentile", f"{stats.p95_tokens:.0f}")
        columns[3].metric(f"Over {stats.max_tokens:,}", f"{stats.truncated_share:.1%}")
        columns[4].metric("Unknown / byte pieces", f"{stats.unknown_rate:.2%}")
        st.plotly_chart(
            plots.token_count_histogram(
                stats.histogram_edges,
                stats.histogram_counts,
                max_tokens=stats.max_tokens,
                title="Tokens per row",
            ),
            key=f"batch.tokens.chart.{model_id}",
        )


def datasets_section(viewer: Viewer) -> None:
    if permissions.can_create(viewer):
        with st.expander("Upload a dataset", expanded=False):
            upload_panel()
    items = batch.list_datasets(viewer=viewer)
    trash = batch.deleted_datasets(viewer=viewer)
    dataset = choose_dataset(items, key="batch.datasets.pick")
    if dataset is not None:
        report = dataset.report
        facts = [dataset.format, f"{dataset.row_count:,} rows"]
        if dataset.text_column:
            facts.append(f"text from '{dataset.text_column}'")
        if dataset.source_filename:
            facts.append(f"file {dataset.source_filename}")
        st.caption(" · ".join(facts))
        if report:
            st.caption(datasets.describe(report))
        preview = batch.preview_rows(viewer=viewer, dataset_id=dataset.id)
        st.dataframe(
            [{"row": r.position, "line": r.line, "text": r.text} for r in preview],
            hide_index=True,
            key="batch.preview",
        )
        st.subheader("Tokenization")
        _tokenization_panel(dataset, viewer)
        if dataset.can_write and st.button("Delete dataset", key="batch.datasets.delete"):
            FLASH.act(
                lambda viewer: records.delete(viewer=viewer, kind=RecordKind.DATASET, record_id=dataset.id),
                success="Moved to the Trash.",
            )
            st.session_state.pop(DATASET, None)
            st.rerun()
    if trash:
        with st.expander(f"Deleted datasets ({len(trash)})"):
            for item in trash:
                left, right = st.columns([4, 1])
                left.write(item.label)
                if right.button("Restore", key=f"batch.datasets.restore.{item.id}"):
                    FLASH.act(
                        lambda viewer, item_id=item.id: records.restore(
                            viewer=viewer, kind=RecordKind.DATASET, record_id=item_id
                        ),
                        success="Restored.",
                    )
                    st.rerun()


# -- jobs ------------------------------------------------------------------------------------


def launch_panel(viewer: Viewer) -> None:
    """Dataset, model, token limit, optional webhook, and the Start button."""
    service = get_service()
    settings = service.settings
    items = batch.list_datasets(viewer=viewer)
    dataset = choose_dataset(items, key="batch.launch.dataset")
    usable = [spec for spec, reason in service.model_choices() if reason is None]
    if dataset is None or not usable:
        return
    left, middle, right = st.columns(3)
    model_id = left.selectbox(
        "Model",
        [s.id for s in usable],
        format_func=lambda i: service.registry.get(i).label,
        key="batch.launch.model",
    )
    limit = service.registry.get(model_id).max_input_tokens
    max_tokens = middle.number_input(
        "Tokens per row (longer rows are cut)",
        8,
        limit,
        min(settings.batch_max_tokens, limit),
        key="batch.launch.max_tokens",
    )
    dispatcher = get_dispatcher()
    copies = 1
    if dispatcher.backend == "celery":
        copies = right.number_input(
            "Workers on this job", 1, batch.MAX_PARALLEL, 1, key="batch.launch.copies"
        )
    else:
        right.caption("Runs on this server's background worker (no Redis configured).")
    webhook_url = st.text_input(
        "Webhook (optional): called with a signed JSON body when the job completes or fails",
        key="batch.launch.webhook",
        disabled=not settings.webhook_secret,
        placeholder="https://…" if settings.webhook_secret else "set HEADLIGHT_WEBHOOK_SECRET to enable",
    )
    if st.button("Start head-atlas job", type="primary", key="batch.launch.start"):

        def launch(viewer: Viewer) -> str:
            job = batch.launch_atlas_job(
                viewer=viewer,
                dataset_id=dataset.id,
                model_id=model_id,
                registry=service.registry,
                settings=settings,
                dispatcher=dispatcher,
                copies=int(copies),
                max_tokens=int(max_tokens),
                webhook_url=webhook_url,
            )
            st.session_state[JOB] = st.session_state["batch.jobs.pick"] = job.id
            return f"Job #{job.id} queued: {dataset.row_count:,} rows on {model_id}."

        if FLASH.act(launch):
            st.rerun()


def open_atlas(atlas_id: int) -> None:
    """Callback: show one atlas in the Atlases section (runs before the widgets exist).

    The button sits in the job panel, a fragment, whose clicks rerun only the fragment;
    the section switch needs the whole page run again.
    """
    st.session_state[ATLAS] = atlas_id
    st.session_state[SECTION] = "Atlases"
    st.session_state.pop("batch.atlases.pick", None)
    st.rerun(scope="app")


def _job_label(job: JobSummary) -> str:
    return (
        f"{STATUS_ICONS[job.status]} #{job.id} {job.model_id or job.kind} · {job.status.value} · "
        f"{job.finished_rows:,}/{job.rows_total:,} rows · {_when(job.created_at)}"
    )


def _cancelled(viewer: Viewer, job_id: int) -> str:
    if batch.cancel_job(viewer=viewer, job_id=job_id) is JobStatus.CANCELLED:
        return f"Job #{job_id}: cancelled."
    return f"Job #{job_id}: cancel requested; it stops after the current row."


def _control(job_id: int, verb: str) -> None:
    """Callback of Cancel and Resume, then a run of the whole page.

    The buttons sit in the job panel, a fragment, whose clicks rerun only the fragment:
    the message, the job picker and whether the panel refreshes itself (a resumed job
    is live again) are drawn outside it.
    """
    settings = get_service().settings
    if verb == "cancel":
        FLASH.act(lambda viewer: _cancelled(viewer, job_id))
    else:
        FLASH.act(
            lambda viewer: batch.resume_job(
                viewer=viewer,
                job_id=job_id,
                lease_s=settings.batch_lease_seconds,
                dispatcher=get_dispatcher(),
            ),
            success=f"Job #{job_id} queued again; done rows are kept.",
        )
    st.rerun(scope="app")


def _timeline(view: JobView) -> list[dict[str, Any]]:
    return [
        {"time": e.at.strftime("%H:%M:%S"), "event": e.kind, "worker": e.worker or "", "detail": e.message}
        for e in view.events
    ]


def job_panel(job_id: int, viewer: Viewer) -> None:
    """Status, live progress bar with ETA, cancel/resume, timeline and failed rows."""
    lease_s = get_service().settings.batch_lease_seconds
    view = batch.job_view(viewer=viewer, job_id=job_id, lease_s=lease_s)
    job, progress = view.job, view.progress
    st.markdown(f"#### {STATUS_ICONS[job.status]} Job #{job.id}: {job.status.value}")
    escaped(f"{view.dataset_name} · {job.model_id} · up to {job.max_tokens} tokens per row")
    text = f"{progress.finished:,} of {progress.total:,} rows"
    if job.status is JobStatus.RUNNING:
        text += f" · about {_duration(progress.eta_s)} left"
    st.progress(progress.fraction, text=text)
    columns = st.columns(4)
    columns[0].metric("Done", f"{progress.done:,}")
    columns[1].metric("Failed", f"{progress.failed:,}")
    columns[2].metric("Started", _when(job.started_at)[11:19] if job.started_at else "–")
    columns[3].metric("Worker", (job.worker or "–").split(":")[0])
    if job.error:
        st.error(job.error)
    if view.can_control:
        # Slots written on every run: the run that sees the job end replaces its Cancel
        # button at once. (That run ends in a full rerun, so Streamlit does not clear what
        # it left undrawn; a button left there would cancel a finished job when clicked.)
        left, right = st.columns(2)
        cancel_slot, resume_slot = left.empty(), right.empty()
        if job.status in ACTIVE and not job.cancel_requested:
            cancel_slot.button(
                "Cancel job", key=f"batch.job.cancel.{job.id}", on_click=_control, args=(job.id, "cancel")
            )
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED) or view.stalled:
            resume_slot.button(
                "Resume", key=f"batch.job.resume.{job.id}", on_click=_control, args=(job.id, "resume")
            )
    if job.atlas_id is not None:
        st.button(
            "Open the head atlas", key=f"batch.job.atlas.{job.id}", on_click=open_atlas, args=(job.atlas_id,)
        )
    st.markdown("**Timeline**")
    st.dataframe(_timeline(view), hide_index=True, key=f"batch.job.timeline.{job.id}")
    if view.failed_rows:
        with st.expander(f"Failed rows ({len(view.failed_rows)} shown)"):
            st.dataframe(
                [{"row": p, "error": e, "text": t[:200]} for p, t, e in view.failed_rows],
                hide_index=True,
                key=f"batch.job.failed.{job.id}",
            )
    if job.status not in ACTIVE and st.session_state.get("batch.job.live") == job.id:
        # The job finished while the panel refreshed itself: one full run stops the refresh.
        st.session_state.pop("batch.job.live")
        st.rerun(scope="app")


def jobs_section(viewer: Viewer) -> None:
    if permissions.can_create(viewer):
        with st.container(border=True):
            st.markdown("**New head-atlas job**")
            launch_panel(viewer)
    jobs = batch.list_jobs(viewer=viewer)
    if not jobs:
        st.info("No jobs yet.")
        return
    by_id = {job.id: job for job in jobs}
    job_id = pick(
        "Job",
        list(by_id),
        key="batch.jobs.pick",
        remembered=st.session_state.get(JOB),
        describe=lambda i: _job_label(by_id[i]),
    )
    st.session_state[JOB] = job_id
    live = by_id[job_id].status in ACTIVE
    if live:
        st.session_state["batch.job.live"] = job_id
    st.fragment(job_panel, run_every=REFRESH_S if live else None)(job_id, viewer)
