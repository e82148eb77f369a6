"""The embedded runner end to end on a tiny model: jobs from the queue and from the
database, recovery after a restart, and interactive requests getting the model between rows."""

from __future__ import annotations

import time
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
from tests.core.tiny import tiny_model
from tests.db.batch_helpers import FakeService, committing_factory, job_rows, seed_job, texts

CONFIG = RunConfig(claim_rows=2, pause_s=0.005, retry=RetryPolicy(attempts=2, base_s=0.01, max_s=0.01))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker]:
    yield from committing_factory(request, tmp_path_factory)


@pytest.fixture(scope="module")
def loaded() -> HuggingFaceModel:
    return tiny_model("causal", n_layers=2, n_heads=2)


def _wait_for(factory: sessionmaker, job_id: int, status: JobStatus, timeout: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            job = session.get(Job, job_id)
            if job is not None and job.status is status:
                return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not become {status.value}")


def test_runner_runs_submitted_and_waiting_jobs(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """A submitted job runs at once; a job queued before the runner started is found in the db."""
    waiting = seed_job(factory, texts(3), loaded)
    runner = EmbeddedRunner(factory, FakeService(loaded), config=CONFIG, poll_s=0.05, host="test-a").start()
    try:
        submitted = seed_job(factory, texts(4), loaded)
        runner.submit(submitted)
        for job_id, n in ((submitted, 4), (waiting, 3)):
            job = _wait_for(factory, job_id, JobStatus.COMPLETED)
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
    runner = EmbeddedRunner(factory, FakeService(loaded), config=CONFIG, poll_s=0.05, host="test-b").start()
    try:
        job = _wait_for(factory, job_id, JobStatus.COMPLETED)
    finally:
        runner.stop()
    rows = job_rows(factory, job_id)
    assert job.rows_done == 5 and len(rows) == 5 and {r.status for r in rows} == {RowStatus.DONE}


def test_interactive_requests_get_the_model_between_rows(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """While a batch job holds the model one slow row at a time, a request waiting for the
    model's lock gets it after at most about one row, and the job still finishes."""
    row_s = 0.05
    slow_model = tiny_model("causal", n_layers=2, n_heads=2)
    # Each forward pass (run under the model's lock) takes at least row_s.
    handle = slow_model.hf_model.register_forward_pre_hook(lambda *_: time.sleep(row_s))
    job_id = seed_job(factory, texts(16), slow_model)
    runner = EmbeddedRunner(
        factory, FakeService(slow_model), config=CONFIG, poll_s=0.05, host="test-c"
    ).start()
    try:
        runner.submit(job_id)
        _wait_for(factory, job_id, JobStatus.RUNNING)
        waits = []
        for _ in range(5):
            started = time.perf_counter()
            with slow_model.lock:  # what an interactive analysis takes first
                waits.append(time.perf_counter() - started)
                time.sleep(0.01)
            time.sleep(row_s)
        job = _wait_for(factory, job_id, JobStatus.COMPLETED)
    finally:
        runner.stop()
        handle.remove()
    assert max(waits) < 3 * row_s, waits
    assert job.rows_done == 16


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
