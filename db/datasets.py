"""Reads and writes of datasets, their rows and their tokenization statistics.

Every function takes a keyword-only ``session`` and never commits. Reads that return what
a user asked for take a ``readable`` WHERE clause from `core.access.permissions`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Dataset, DatasetRow, TokenizationStat, utcnow

# Rows are inserted in batches of this many (one round trip each).
_INSERT_BATCH = 1000


def create_dataset(
    *,
    session: Session,
    owner_id: int | None,
    name: str,
    format: str,
    texts: Sequence[tuple[int, str]],
    text_column: str | None = None,
    source_filename: str | None = None,
    report: dict[str, Any] | None = None,
    builtin_key: str | None = None,
    is_public: bool = False,
) -> Dataset:
    """Insert a dataset and its rows; ``texts`` are ``(source line, text)`` in order."""
    dataset = Dataset(
        owner_id=owner_id,
        name=name,
        format=format,
        text_column=text_column,
        source_filename=source_filename,
        builtin_key=builtin_key,
        row_count=len(texts),
        report=report or {},
        is_public=is_public,
    )
    session.add(dataset)
    session.flush()
    for start in range(0, len(texts), _INSERT_BATCH):
        batch = texts[start : start + _INSERT_BATCH]
        session.execute(
            insert(DatasetRow),
            [
                {"dataset_id": dataset.id, "position": start + i, "line": line, "text": text}
                for i, (line, text) in enumerate(batch)
            ],
        )
    return dataset


def get_or_create_builtin(
    *, session: Session, builtin_key: str, name: str, format: str, texts: Sequence[tuple[int, str]]
) -> Dataset:
    """The built-in dataset ``builtin_key``, created (public, no owner) on first use; race safe."""
    existing = session.scalar(select(Dataset).where(Dataset.builtin_key == builtin_key))
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            return create_dataset(
                session=session,
                owner_id=None,
                name=name,
                format=format,
                texts=texts,
                builtin_key=builtin_key,
                is_public=True,
            )
    except IntegrityError:
        # Another session created it between our read and our insert.
        return session.scalars(select(Dataset).where(Dataset.builtin_key == builtin_key)).one()


def get_dataset(*, session: Session, dataset_id: int, readable: ColumnElement[bool]) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.id == dataset_id, readable))


def list_datasets(*, session: Session, readable: ColumnElement[bool]) -> list[Dataset]:
    """Readable datasets, built-in ones first, then newest first."""
    return list(
        session.scalars(
            select(Dataset)
            .where(readable)
            .order_by(Dataset.builtin_key.is_(None), Dataset.created_at.desc(), Dataset.id.desc())
        )
    )


def rows(*, session: Session, dataset_id: int, limit: int) -> list[DatasetRow]:
    """The first ``limit`` rows in order (the preview)."""
    query = (
        select(DatasetRow)
        .where(DatasetRow.dataset_id == dataset_id)
        .order_by(DatasetRow.position)
        .limit(limit)
    )
    return list(session.scalars(query))


def iter_texts(*, session: Session, dataset_id: int, batch: int = 2000) -> Iterator[list[str]]:
    """Every row's text in order, in batches (keyset paging: no offset cost)."""
    after = -1
    while True:
        texts = session.execute(
            select(DatasetRow.position, DatasetRow.text)
            .where(DatasetRow.dataset_id == dataset_id, DatasetRow.position > after)
            .order_by(DatasetRow.position)
            .limit(batch)
        ).all()
        if not texts:
            return
        yield [text for _, text in texts]
        after = texts[-1][0]


def rows_by_id(*, session: Session, row_ids: Sequence[int]) -> dict[int, DatasetRow]:
    if not row_ids:
        return {}
    found = session.scalars(select(DatasetRow).where(DatasetRow.id.in_(row_ids)))
    return {row.id: row for row in found}


def save_tokenization(
    *, session: Session, dataset_id: int, model_id: str, model_revision: str, stats: dict[str, Any]
) -> TokenizationStat:
    """Store (or replace) one model revision's statistics for a dataset."""
    record = session.scalar(
        select(TokenizationStat).where(
            TokenizationStat.dataset_id == dataset_id,
            TokenizationStat.model_id == model_id,
            TokenizationStat.model_revision == model_revision,
        )
    )
    if record is None:
        record = TokenizationStat(dataset_id=dataset_id, model_id=model_id, model_revision=model_revision)
        session.add(record)
    record.stats = stats
    record.created_at = utcnow()
    session.flush()
    return record


def tokenizations(*, session: Session, dataset_id: int) -> list[TokenizationStat]:
    """Every stored tokenization of a dataset, newest first."""
    return list(
        session.scalars(
            select(TokenizationStat)
            .where(TokenizationStat.dataset_id == dataset_id)
            .order_by(TokenizationStat.created_at.desc(), TokenizationStat.id.desc())
        )
    )
