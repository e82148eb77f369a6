"""Stored datasets: uploads kept for batch jobs, the built-in probe, previews and tokenization
statistics (`core.store.datasets` parses the files; this module keeps what it returns).

Datasets follow the one lifecycle of `core.store.owned` (their owner and admins use them,
built-in ones are public; Trash). Functions take keyword-only ``session`` and ``viewer`` and
never commit. Datasets are written by batch workers too, so writes take the write lock first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.access import permissions
from core.domain.errors import PermissionDeniedError
from core.domain.identity import Viewer
from core.domain.owned import RecordKind
from core.store import datasets, owned
from core.store.datasets import ParseReport, TokenizationStats
from db import datasets as dataset_db
from db import jobs as jobs_db
from db.models import Dataset, DatasetRow

DATASET = RecordKind.DATASET
PREVIEW_ROWS = 20


@dataclass(frozen=True)
class DatasetView:
    """A dataset as the Batch screen lists and describes it."""

    id: int
    name: str
    format: str
    row_count: int
    builtin: bool
    created_at: datetime
    text_column: str | None
    source_filename: str | None
    report: dict[str, Any]
    can_write: bool

    @property
    def label(self) -> str:
        made = "built-in" if self.builtin else self.created_at.strftime("%Y-%m-%d")
        return f"#{self.id} {self.name} · {self.row_count:,} rows · {made}"


@dataclass(frozen=True)
class PreviewRow:
    """One row of a dataset: its place, its line in the uploaded file, its text."""

    position: int
    line: int | None
    text: str


def dataset_view(dataset: Dataset, viewer: Viewer) -> DatasetView:
    return owned.view_of(
        DatasetView,
        dataset,
        builtin=dataset.builtin_key is not None,
        report=dict(dataset.report or {}),
        can_write=owned.access(viewer, DATASET, dataset).can_write,
    )


def require_create(viewer: Viewer, what: str) -> int:
    """The viewer's user id when their role may create records; ``what`` names the refusal."""
    if not permissions.can_create(viewer):
        raise PermissionDeniedError(f"Your role cannot {what}.")
    assert viewer.user_id is not None
    return viewer.user_id


def create_dataset(
    *, session: Session, viewer: Viewer, name: str, filename: str, report: ParseReport
) -> Dataset:
    """Store a checked upload (rows and report) privately for the viewer."""
    owner_id = require_create(viewer, "upload datasets")
    jobs_db.take_write_lock(session=session)
    dataset = dataset_db.create_dataset(
        session=session,
        owner_id=owner_id,
        name=datasets.clean_name(name, filename.rsplit(".", 1)[0]),
        format=report.format.value,
        texts=[(row.line, row.text) for row in report.rows],
        text_column=report.column,
        source_filename=filename[:255],
        report=report.summary(),
    )
    owned.audit(
        session=session,
        viewer=viewer,
        kind=DATASET,
        action=owned.action(DATASET, "create"),
        record=dataset,
        rows=dataset.row_count,
    )
    return dataset


def probe_dataset(*, session: Session) -> Dataset:
    """The built-in induction probe, created on first use."""
    texts = datasets.probe_texts()
    return dataset_db.get_or_create_builtin(
        session=session,
        builtin_key=datasets.PROBE_KEY,
        name=datasets.PROBE_NAME,
        format="probe",
        texts=[(i + 1, text) for i, text in enumerate(texts)],
    )


def list_datasets(*, session: Session, viewer: Viewer) -> list[Dataset]:
    """The datasets the viewer may use, the built-in probe first."""
    probe_dataset(session=session)
    return dataset_db.list_datasets(session=session, readable=permissions.dataset_filter(viewer))


def deleted_datasets(*, session: Session, viewer: Viewer) -> list[Dataset]:
    """The viewer's datasets in the Trash."""
    return dataset_db.list_datasets(session=session, readable=permissions.trash_filter(viewer, Dataset))


def open_dataset(*, session: Session, viewer: Viewer, dataset_id: int) -> Dataset:
    return owned.open_readable(session=session, viewer=viewer, kind=DATASET, record_id=dataset_id)


def preview_rows(
    *, session: Session, viewer: Viewer, dataset_id: int, limit: int = PREVIEW_ROWS
) -> list[DatasetRow]:
    open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    return dataset_db.rows(session=session, dataset_id=dataset_id, limit=limit)


def dataset_texts(*, session: Session, viewer: Viewer, dataset_id: int) -> list[str]:
    """Every row's text, in order (for tokenizing outside the transaction)."""
    open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    return [text for batch in dataset_db.iter_texts(session=session, dataset_id=dataset_id) for text in batch]


def save_tokenization(
    *,
    session: Session,
    viewer: Viewer,
    dataset_id: int,
    model_id: str,
    revision: str,
    stats: TokenizationStats,
) -> None:
    """Store (or replace) one model revision's statistics for a dataset."""
    require_create(viewer, "compute tokenization statistics")
    jobs_db.take_write_lock(session=session)
    open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    dataset_db.save_tokenization(
        session=session,
        dataset_id=dataset_id,
        model_id=model_id,
        model_revision=revision,
        stats=stats.as_dict(),
    )


def tokenizations(
    *, session: Session, viewer: Viewer, dataset_id: int
) -> list[tuple[str, str, TokenizationStats]]:
    """``(model_id, revision, statistics)`` of every tokenization stored for the dataset."""
    open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    return [
        (record.model_id, record.model_revision, datasets.stats_from_dict(record.stats))
        for record in dataset_db.tokenizations(session=session, dataset_id=dataset_id)
    ]
