"""The embedded runner end to end on a tiny model: jobs from the queue and from the
database, recovery after a restart, and interactive requests getting the model between rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from core.jobs.contract import JobStatus, RowStatus
from core.jobs.retry import RetryPolicy
from core.jobs.runner import EmbeddedRunner, backend_for
from core.jobs.tasks import RunConfig
from core.models.huggingface.adapter import HuggingFaceModel
from db import jobs as jobs_db
from db.models import Job, utcnow
from tests.fixtures.batch import FakeService, committing_factory, job_rows, seed_job, texts, without_jobs
from tests.fixtures.tiny import tiny_model

CONFIG = RunConfig(claim_rows=2, pause_s=0.005, retry=RetryPolicy(attempts=2, base_s=0.01, max_s=0.01))
# How long a test waits for the runner's thread before failing (it takes well under a second).
TIMEOUT_S = 30.0


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker]:
    yield from committing_factory(request, tmp_path_factory)


@pytest.fixture
def factory(database: sessionmaker) -> sessionmaker:
    """The module's database with no job left by an earlier test."""
    return without_jobs(database)


@pytest.fixture(scope="module")
def loaded() -> HuggingFaceModel:
    return tiny_model("causal", n_layers=2, n_heads=2)


class Finished:
    """An `EmbeddedRunner.on_finished` that tests wait on: no polling, no fixed sleeps."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.runs: dict[int, list[JobStatus]] = {}

    def __call__(self, job_id: int, status: JobStatus) -> None:
        with self._changed:
            self.runs.setdefault(job_id, []).append(status)
            self._changed.notify_all()

    def wait(self, factory: sessionmaker, job_id: int, status: JobStatus = JobStatus.COMPLETED) -> Job:
        """The job once a run of it ended in ``status``; fails after `TIMEOUT_S`."""
        with self._changed:
            reached = self._changed.wait_for(lambda: status in self.runs.get(job_id, []), TIMEOUT_S)
        assert reached, f"job {job_id} did not become {status.value}: runs ended {self.runs.get(job_id)}"
        with factory() as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job


def test_runner_runs_submitted_and_waiting_jobs(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """A submitted job runs at once; a job queued before the runner started is found in the db."""
    waiting = seed_job(factory, texts(3), loaded)
    finished = Finished()
    runner = EmbeddedRunner(
        factory, FakeService(loaded), config=CONFIG, poll_s=0.05, host="test-a", on_finished=finished
    ).start()
    try:
        submitted = seed_job(factory, texts(4), loaded)
        runner.submit(submitted)
        for job_id, n in ((submitted, 4), (waiting, 3)):
            job = finished.wait(factory, job_id)
            assert job.status is JobStatus.COMPLETED
            assert job.rows_done == n and job.worker == runner.worker_name
        assert runner.alive and runner.backend == "embedded"
    finally:
        runner.stop()
    assert not runner.alive


def test_restarted_runner_releases_its_predecessors_rows(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """Rows claimed by an earlier process on this host are released when a runner starts."""
    job_id = seed_job(factory, texts(5), loaded)
    with factory.begin() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(status=JobStatus.RUNNING, heartbeat_at=utcnow())
        )
        job = session.get(Job, job_id)
        claimed = jobs_db.claim_rows(
            session=session,
            job=job,
            dataset_id=job.params["dataset_id"],
            worker="embedded@test-b:1",
            limit=2,
            stale_before=utcnow(),
        )
        assert len(claimed) == 2
    finished = Finished()
    runner = EmbeddedRunner(
        factory, FakeService(loaded), config=CONFIG, poll_s=0.05, host="test-b", on_finished=finished
    ).start()
    try:
        job = finished.wait(factory, job_id)
    finally:
        runner.stop()
    rows = job_rows(factory, job_id)
    assert job.rows_done == 5 and len(rows) == 5 and {r.status for r in rows} == {RowStatus.DONE}


def test_interactive_requests_get_the_model_between_rows(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """While a batch job holds the model for a row, a request waiting for the model's lock
    gets it as soon as that row is done, before the next row starts; the job still finishes.

    Followed by events instead of timed: row 3 stays in hand until a request is waiting,
    and the runner's pause after it (its injected ``sleep``) lasts until the request was
    served, however slowly the threads are scheduled.
    """
    model = tiny_model("causal", n_layers=2, n_heads=2)
    forwards: list[int] = []
    in_row_3 = threading.Event()
    finish_row_3 = threading.Event()
    served = threading.Event()
    served_after: list[int] = []
    served_in_pause: list[bool] = []

    def forward(*_: object) -> None:  # runs under the model's lock, once per row
        forwards.append(1)
        if len(forwards) == 3:
            in_row_3.set()
            assert finish_row_3.wait(TIMEOUT_S)

    def pause(_seconds: float) -> None:  # the runner's pause between rows
        if in_row_3.is_set() and not served_in_pause:
            served_in_pause.append(served.wait(TIMEOUT_S))

    def request() -> None:
        with model.lock:  # what an interactive analysis takes first
            served_after.append(len(forwards))
        served.set()

    handle = model.hf_model.register_forward_pre_hook(forward)
    job_id = seed_job(factory, texts(16), model)
    finished = Finished()
    runner = EmbeddedRunner(
        factory,
        FakeService(model),
        config=CONFIG,
        poll_s=0.05,
        host="test-c",
        sleep=pause,
        on_finished=finished,
    ).start()
    requester = threading.Thread(target=request)
    try:
        runner.submit(job_id)
        assert in_row_3.wait(TIMEOUT_S), "the job never reached its third row"
        assert not model.lock.acquire(blocking=False), "the runner holds the model during a row"
        requester.start()
        finish_row_3.set()
        requester.join(TIMEOUT_S)
        job = finished.wait(factory, job_id)
    finally:
        finish_row_3.set()
        served.set()
        runner.stop()
        handle.remove()
    assert served_in_pause == [True]  # the pause after row 3 saw the request served
    assert served_after == [3]  # between rows 3 and 4
    assert job.rows_done == 16 and len(forwards) == 16


def test_backend_choice(settings) -> None:
    """auto means Celery exactly when Redis is configured; an explicit choice wins."""
    assert backend_for(settings.model_copy(update={"jobs_backend": "auto", "redis_url": None})) == "embedded"
    assert (
        backend_for(settings.model_copy(update={"jobs_backend": "auto", "redis_url": "redis://x"}))
        == "celery"
    )
    assert (
        backend_for(settings.model_copy(update={"jobs_backend": "embedded", "redis_url": "redis://x"}))
        == "embedded"
    )
