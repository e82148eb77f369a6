"""Shared pieces of the batch tests: committing databases, a fake service, seeded jobs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.domain.errors import ModelDisabledError
from core.domain.identity import Role
from core.jobs.contract import EventKind
from core.jobs.tasks import KIND_ATLAS, atlas_params
from core.models.huggingface.adapter import HuggingFaceModel
from core.models.registry import ModelSpec
from db import datasets as dataset_db
from db import jobs as jobs_db
from db.models import Job, JobEvent, JobRow, User
from db.session import init_db, make_engine


def committing_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    """A session factory whose transactions really commit, on a database of its own.

    Jobs run in their own transactions (and threads), which a rolled-back test session
    cannot host; each module gets a fresh SQLite file or Postgres database instead.
    """
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'jobs.db'}")
        url = None
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create()
        engine = make_engine(url)
    try:
        init_db(engine)
        yield sessionmaker(engine, expire_on_commit=False)
    finally:
        engine.dispose()
        if url is not None:
            server.drop(url)


def without_jobs(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """``factory`` after deleting every job (rows and events go with them).

    A module's tests share one committing database, and recovery and the runners look at
    every job in it: each test starts from none, whatever ran before it.
    """
    with factory.begin() as session:
        session.execute(delete(Job))
    return factory


class FakeService:
    """`AnalysisService.load` for one preloaded model; ``enabled=False`` plays an admin having
    turned it off."""

    def __init__(self, loaded: HuggingFaceModel, *, enabled: bool = True) -> None:
        self.loaded = loaded
        self.enabled = enabled
        self.loads = 0

    def require_enabled(self, model_id: str) -> ModelSpec:
        assert model_id == self.loaded.spec.id
        if not self.enabled:
            raise ModelDisabledError(
                f"{self.loaded.spec.label} has been turned off by an admin; choose another model."
            )
        return self.loaded.spec

    def load(self, model_id: str) -> tuple[HuggingFaceModel, float]:
        assert model_id == self.loaded.spec.id
        self.loads += 1
        return self.loaded, 0.0


def seed_job(
    factory: sessionmaker[Session],
    texts: list[str],
    loaded: HuggingFaceModel,
    *,
    max_tokens: int = 24,
    webhook_url: str | None = None,
) -> int:
    """A user, a dataset of ``texts`` and a queued atlas job over it; the job's id."""
    with factory.begin() as session:
        user = User(username=f"u{uuid.uuid4().hex[:8]}", role=Role.ANALYST)
        session.add(user)
        session.flush()
        dataset = dataset_db.create_dataset(
            session=session, owner_id=user.id, name="rows", format="text", texts=list(enumerate(texts, 1))
        )
        job = jobs_db.create_job(
            session=session,
            kind=KIND_ATLAS,
            owner_id=user.id,
            params=atlas_params(
                dataset_id=dataset.id,
                model_id=loaded.spec.id,
                revision=loaded.spec.revision,
                max_tokens=max_tokens,
                webhook_url=webhook_url,
            ),
            rows_total=len(texts),
        )
        jobs_db.add_event(session=session, job_id=job.id, kind=EventKind.QUEUED, message="queued")
        return job.id


def job_rows(factory: sessionmaker[Session], job_id: int) -> list[JobRow]:
    with factory() as session:
        return list(session.scalars(select(JobRow).where(JobRow.job_id == job_id).order_by(JobRow.row_id)))


def event_kinds(factory: sessionmaker[Session], job_id: int) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        )


Scorer = Callable[[HuggingFaceModel, list[int]], np.ndarray]


def texts(n: int) -> list[str]:
    """``n`` distinct short rows."""
    words = ["red", "green", "blue", "cat", "dog", "sun", "moon", "tree", "sea", "hill"]
    return [f"row {i}: " + " ".join(words[(i + k) % len(words)] for k in range(3 + i % 4)) for i in range(n)]
