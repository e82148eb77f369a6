"""A real Celery worker process on a private Redis, running atlas jobs on MiniLM against a
SQLite database shared with the test: results equal the embedded path's, cancel mid-job,
a transient database failure retried, and a worker killed with SIGKILL then restarted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.attention.atlas import AtlasResult
from core.domain.identity import Role, Viewer
from core.domain.settings import Settings, get_settings
from core.jobs.contract import JobStatus, RowStatus
from core.jobs.tasks import RunConfig, run_job
from core.models.registry import Registry
from core.service import celery_worker as celery_app
from core.service.celery_worker import CeleryDispatcher, make_app
from core.store import jobs as job_store
from db import datasets as dataset_db
from db.models import Atlas, Job, JobEvent, JobRow, User
from db.session import dispose_all, init_db, make_engine
from tests.fixtures.batch import FakeService, texts
from tests.fixtures.services import redis_server

ROOT = Path(__file__).resolve().parents[3]
MODEL = "all-minilm-l6-v2"
NODE = "w1@headlight-test"
READY_TIMEOUT = 90

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Redis; without redis-server the tests that need it skip, or fail in CI."""
    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _):
        yield url


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, sessionmaker[Session]]]:
    path = tmp_path_factory.mktemp("celery") / "jobs.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    init_db(engine)
    yield url, sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


class Worker:
    """``celery -A core.service.celery_worker worker -Q batch --pool=solo`` as a subprocess."""

    def __init__(self, database_url: str, redis_url: str, log: Path) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "HF_HUB_OFFLINE": "1",
            "HEADLIGHT_METRICS_PORT": "0",
            "HEADLIGHT_BATCH_TORCH_THREADS": "1",
            # Slow enough that a test can act mid-job whatever the machine's speed.
            "HEADLIGHT_BATCH_ROW_PAUSE_MS": "20",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts_seen = 0

    def start(self) -> Worker:
        celery = str(Path(sys.executable).with_name("celery"))
        command = [
            celery,
            "-A",
            "core.service.celery_worker",
            "worker",
            "-Q",
            "batch",
            "--pool=solo",
            "-n",
            NODE,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.log.read_text(errors="replace").count(" ready.") > self.starts_seen:
                self.starts_seen += 1
                return self
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        raise AssertionError(
            "the Celery worker did not start:\n" + self.log.read_text(errors="replace")[-3000:]
        )

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def wait_for_log(self, text: str, more_than: int, timeout: float = 60.0) -> None:
        """Until ``text`` is in the worker's log more than ``more_than`` times (a process:
        polled, with a deadline)."""
        deadline = time.monotonic() + timeout
        while self.log_count(text) <= more_than:
            assert time.monotonic() < deadline, f"the worker never logged {text!r}"
            assert self.process is not None and self.process.poll() is None, "the worker died"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def worker(
    database: tuple[str, sessionmaker], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    running = Worker(database[0], redis_url, tmp_path_factory.mktemp("celery-log") / "worker.log").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def dispatcher(redis_url: str) -> CeleryDispatcher:
    return CeleryDispatcher(make_app(redis_url))


@pytest.fixture(scope="module")
def viewer(database: tuple[str, sessionmaker]) -> Viewer:
    with database[1].begin() as session:
        user = User(username="celery-analyst", role=Role.ANALYST)
        session.add(user)
        session.flush()
        return Viewer(user_id=user.id, role=Role.ANALYST)


def _launch(
    factory: sessionmaker, viewer: Viewer, rows: list[str], registry: Registry, settings: Settings
) -> int:
    with factory.begin() as session:
        dataset = dataset_db.create_dataset(
            session=session,
            owner_id=viewer.user_id,
            name="celery rows",
            format="text",
            texts=list(enumerate(rows, 1)),
        )
        job = job_store.launch_atlas_job(
            session=session,
            viewer=viewer,
            dataset_id=dataset.id,
            model_id=MODEL,
            registry=registry,
            settings=settings,
            max_tokens=32,
        )
        return job.id


def _wait(factory: sessionmaker, job_id: int, done: Callable[[Job], bool], timeout: float = 120.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            job = session.get(Job, job_id)
            if done(job):
                return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached the expected state")


def _rows(factory: sessionmaker, job_id: int) -> list[JobRow]:
    with factory() as session:
        return list(session.scalars(select(JobRow).where(JobRow.job_id == job_id)))


def _event_messages(factory: sessionmaker, job_id: int) -> list[tuple[str, str]]:
    with factory() as session:
        events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        return [(e.kind, e.message) for e in events]


def test_celery_job_completes_with_the_embedded_results(
    worker: Worker, dispatcher: CeleryDispatcher, database, viewer: Viewer, registry, settings, minilm
) -> None:
    """The worker completes the job; its atlas equals the one the embedded path computes."""
    factory = database[1]
    rows = texts(24)
    job_id = _launch(factory, viewer, rows, registry, settings)
    dispatcher.submit(job_id)
    job = _wait(factory, job_id, lambda j: j.status is JobStatus.COMPLETED)
    assert job.rows_done == 24 and job.worker.startswith(f"{NODE}:")
    assert ("started", f"started on worker {job.worker}") in _event_messages(factory, job_id)

    embedded_id = _launch(factory, viewer, rows, registry, settings)
    assert (
        run_job(
            embedded_id,
            session_factory=factory,
            service=FakeService(minilm),
            worker_name="embedded@t:1",
            config=RunConfig(pause_s=0.0),
        )
        is JobStatus.COMPLETED
    )
    with factory() as session:
        atlases = [session.scalar(select(Atlas).where(Atlas.job_id == i)) for i in (job_id, embedded_id)]
        celery_result, embedded_result = (AtlasResult.from_json(a.result) for a in atlases)
    for name, values in celery_result.means.items():
        np.testing.assert_allclose(values, embedded_result.means[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_cancel_mid_job(
    worker: Worker, dispatcher: CeleryDispatcher, database, viewer: Viewer, registry, settings
) -> None:
    """Cancelling a running job stops the worker within a row or two and hands back its claims."""
    factory = database[1]
    job_id = _launch(factory, viewer, texts(300), registry, settings)
    dispatcher.submit(job_id)
    _wait(factory, job_id, lambda j: j.rows_done >= 10)
    with factory.begin() as session:
        job_store.cancel_job(session=session, viewer=viewer, job_id=job_id)
        asked_at = session.get(Job, job_id).rows_done
    job = _wait(factory, job_id, lambda j: j.status is JobStatus.CANCELLED)
    assert job.rows_done <= asked_at + 2 < 300
    assert {r.status for r in _rows(factory, job_id)} == {RowStatus.DONE}


def test_transient_database_failure_is_retried(
    worker: Worker, dispatcher: CeleryDispatcher, database, viewer: Viewer, registry, settings
) -> None:
    """With the database locked until the worker's write has failed (past its 5 s busy
    timeout), the write is retried with backoff, and the job completes with every row once."""
    url, factory = database
    job_id = _launch(factory, viewer, texts(60), registry, settings)
    dispatcher.submit(job_id)
    _wait(factory, job_id, lambda j: j.rows_done >= 5)
    retry_line = f"job {job_id} on {NODE}:"
    blocker = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        worker.wait_for_log(retry_line, more_than=0)  # the write failed; a retry is due
    finally:
        blocker.rollback()
        blocker.close()
    job = _wait(factory, job_id, lambda j: j.status is JobStatus.COMPLETED)
    rows = _rows(factory, job_id)
    assert job.rows_done == 60 and len({r.row_id for r in rows}) == len(rows) == 60
    assert any(
        kind == "retry" and "database" in message for kind, message in _event_messages(factory, job_id)
    )


def test_killed_worker_restarts_without_duplicate_or_lost_rows(
    worker: Worker, dispatcher: CeleryDispatcher, database, viewer: Viewer, registry, settings
) -> None:
    """SIGKILL mid-job leaves the job running with a few claimed rows; the restarted node
    releases them and re-sends the job, which completes with every row exactly once."""
    factory = database[1]
    job_id = _launch(factory, viewer, texts(150), registry, settings)
    dispatcher.submit(job_id)
    _wait(factory, job_id, lambda j: j.rows_done >= 20)
    worker.kill()
    job = _wait(factory, job_id, lambda j: True)
    assert job.status is JobStatus.RUNNING and job.rows_done < 150
    worker.start()
    job = _wait(factory, job_id, lambda j: j.status is JobStatus.COMPLETED)
    rows = _rows(factory, job_id)
    assert job.rows_done == 150 and len(rows) == 150 and len({r.row_id for r in rows}) == 150
    assert {r.status for r in rows} == {RowStatus.DONE}
    assert "interrupted" in [kind for kind, _ in _event_messages(factory, job_id)]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Atlas).where(Atlas.job_id == job_id)) == 1


def test_task_and_startup_hook_in_process(
    database, viewer: Viewer, registry, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Celery task body and the worker's startup recovery, called in this process: a
    restarted node re-sends the job it was last seen on, and the task then completes it."""
    url, factory = database
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("HEADLIGHT_BATCH_TORCH_THREADS", str(torch.get_num_threads()))
    get_settings.cache_clear()
    sent: list[int] = []
    monkeypatch.setattr(CeleryDispatcher, "submit", lambda self, job_id, copies=1: sent.append(job_id))
    try:
        job_id = _launch(factory, viewer, texts(3), registry, settings)
        with factory.begin() as session:
            session.execute(
                update(Job).where(Job.id == job_id).values(status=JobStatus.RUNNING, worker="w9@test:1")
            )
        celery_app._configure_worker()
        celery_app._recover_on_start(sender=SimpleNamespace(hostname="w9@test"))
        assert job_id in sent
        assert celery_app.run_job_task.run(job_id) == "completed"
    finally:
        get_settings.cache_clear()
        dispose_all()
