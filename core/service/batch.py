"""The Batch screen's actions: datasets, head-atlas jobs and the atlases they make.

One function per user action; each runs in its own transaction (`unit_of_work`) and returns
plain views (`DatasetView`, `JobSummary`, `JobView`, `AtlasSummary`, `AtlasView`), never
database rows. Deleting, restoring and publishing are the generic `core.service.records`
actions. A job goes to its dispatcher only once the transaction that queued it committed, so
a worker never looks for a job it cannot see yet.
"""

from __future__ import annotations

from core.access.permissions import Scope
from core.domain.identity import Viewer
from core.domain.settings import Settings
from core.jobs.contract import JobStatus
from core.jobs.runner import Dispatcher
from core.jobs.tasks import ModelSource
from core.models.registry import Registry
from core.store import atlases, datasets, saved_datasets
from core.store import jobs as job_store
from core.store.atlases import AtlasSummary, AtlasView, TopRow
from core.store.datasets import ParseReport, TokenizationStats
from core.store.jobs import JobSummary, JobView, job_summary
from core.store.saved_datasets import DatasetView, PreviewRow, dataset_view
from core.store.transaction import unit_of_work

MAX_PARALLEL = 8

# -- datasets --------------------------------------------------------------------------------


def create_dataset(*, viewer: Viewer, name: str, filename: str, report: ParseReport) -> DatasetView:
    """Store a checked upload privately for the viewer."""
    with unit_of_work() as session:
        dataset = saved_datasets.create_dataset(
            session=session, viewer=viewer, name=name, filename=filename, report=report
        )
        return dataset_view(dataset, viewer)


def list_datasets(*, viewer: Viewer) -> list[DatasetView]:
    """The datasets the viewer may use, the built-in probe first."""
    with unit_of_work() as session:
        found = saved_datasets.list_datasets(session=session, viewer=viewer)
        return [dataset_view(dataset, viewer) for dataset in found]


def deleted_datasets(*, viewer: Viewer) -> list[DatasetView]:
    """The viewer's datasets in the Trash."""
    with unit_of_work() as session:
        found = saved_datasets.deleted_datasets(session=session, viewer=viewer)
        return [dataset_view(dataset, viewer) for dataset in found]


def preview_rows(*, viewer: Viewer, dataset_id: int) -> list[PreviewRow]:
    """The first rows of a dataset the viewer may use."""
    with unit_of_work() as session:
        rows = saved_datasets.preview_rows(session=session, viewer=viewer, dataset_id=dataset_id)
        return [PreviewRow(row.position, row.line, row.text) for row in rows]


def count_tokens(texts: list[str], *, service: ModelSource, model_id: str) -> tuple[str, TokenizationStats]:
    """``(model revision, statistics)`` of one model's tokenizer over ``texts``; no database."""
    loaded, _ = service.load(model_id)
    stats = datasets.tokenization_stats(texts, loaded, max_tokens=loaded.spec.max_input_tokens)
    return loaded.spec.revision, stats


def tokenize_dataset(
    *, viewer: Viewer, dataset_id: int, service: ModelSource, model_id: str
) -> TokenizationStats:
    """Tokenize every row with one model's tokenizer and store the statistics.

    The rows are read in one transaction and the statistics stored in another; the
    tokenizer runs between them, outside any transaction.
    """
    with unit_of_work() as session:
        texts = saved_datasets.dataset_texts(session=session, viewer=viewer, dataset_id=dataset_id)
    revision, stats = count_tokens(texts, service=service, model_id=model_id)
    with unit_of_work() as session:
        saved_datasets.save_tokenization(
            session=session,
            viewer=viewer,
            dataset_id=dataset_id,
            model_id=model_id,
            revision=revision,
            stats=stats,
        )
    return stats


def tokenizations(*, viewer: Viewer, dataset_id: int) -> list[tuple[str, str, TokenizationStats]]:
    """``(model_id, revision, statistics)`` of every tokenization stored for the dataset."""
    with unit_of_work() as session:
        return saved_datasets.tokenizations(session=session, viewer=viewer, dataset_id=dataset_id)


# -- jobs ------------------------------------------------------------------------------------


def launch_atlas_job(
    *,
    viewer: Viewer,
    dataset_id: int,
    model_id: str,
    registry: Registry,
    settings: Settings,
    dispatcher: Dispatcher,
    copies: int = 1,
    max_tokens: int | None = None,
    webhook_url: str = "",
) -> JobSummary:
    """Queue a head-atlas job over a dataset and, once queued, hand it to ``copies`` workers."""
    with unit_of_work() as session:
        job = job_store.launch_atlas_job(
            session=session,
            viewer=viewer,
            dataset_id=dataset_id,
            model_id=model_id,
            registry=registry,
            settings=settings,
            max_tokens=max_tokens,
            webhook_url=webhook_url,
        )
        summary = job_summary(job)
    dispatcher.submit(summary.id, copies)
    return summary


def cancel_job(*, viewer: Viewer, job_id: int) -> JobStatus:
    """Cancel a queued job now, or ask a running one to stop; returns its status."""
    with unit_of_work() as session:
        return job_store.cancel_job(session=session, viewer=viewer, job_id=job_id)


def resume_job(*, viewer: Viewer, job_id: int, lease_s: float, dispatcher: Dispatcher) -> JobSummary:
    """Queue a failed, cancelled or stalled job again and hand it to a worker."""
    with unit_of_work() as session:
        summary = job_summary(
            job_store.resume_job(session=session, viewer=viewer, job_id=job_id, lease_s=lease_s)
        )
    dispatcher.submit(summary.id)
    return summary


def list_jobs(*, viewer: Viewer) -> list[JobSummary]:
    with unit_of_work() as session:
        return [job_summary(job) for job in job_store.list_jobs(session=session, viewer=viewer)]


def job_view(*, viewer: Viewer, job_id: int, lease_s: float) -> JobView:
    with unit_of_work() as session:
        return job_store.job_view(session=session, viewer=viewer, job_id=job_id, lease_s=lease_s)


# -- atlases ---------------------------------------------------------------------------------


def list_atlases(*, viewer: Viewer, scope: Scope = Scope.ALL) -> list[AtlasSummary]:
    """Readable atlases in ``scope``, newest first."""
    with unit_of_work() as session:
        return atlases.list_atlases(session=session, viewer=viewer, scope=scope)


def open_atlas(*, viewer: Viewer, atlas_id: int) -> AtlasView:
    with unit_of_work() as session:
        return atlases.open_atlas(session=session, viewer=viewer, atlas_id=atlas_id)


def top_rows(*, viewer: Viewer | None, atlas: AtlasView, stat: str, layer: int, head: int) -> list[TopRow]:
    """The rows where one head scores highest; ``viewer`` None for a share-link visitor, who
    holds the atlas through the link that opened it."""
    with unit_of_work() as session:
        if viewer is None:
            return atlases.top_rows_of(session=session, atlas=atlas, stat=stat, layer=layer, head=head)
        return atlases.top_rows(
            session=session, viewer=viewer, atlas_id=atlas.id, stat=stat, layer=layer, head=head
        )


def share_atlas(*, viewer: Viewer, atlas_id: int, username: str) -> None:
    """Let one more user read the atlas."""
    with unit_of_work() as session:
        atlases.share_with(session=session, viewer=viewer, atlas_id=atlas_id, username=username)


def unshare_atlas(*, viewer: Viewer, atlas_id: int, user_id: int) -> None:
    with unit_of_work() as session:
        atlases.unshare(session=session, viewer=viewer, atlas_id=atlas_id, user_id=user_id)


def atlas_grantees(*, viewer: Viewer, atlas_id: int) -> list[tuple[int, str]]:
    with unit_of_work() as session:
        return atlases.grantees(session=session, viewer=viewer, atlas_id=atlas_id)


def export_atlas_csv(*, viewer: Viewer, atlas_id: int) -> bytes:
    with unit_of_work() as session:
        return atlases.export_csv(session=session, viewer=viewer, atlas_id=atlas_id)
