"""`run_job` on a tiny model against SQLite and Postgres: completion and results, cancel,
retries with backoff, failing rows, a worker dying mid-job and the resume, two workers on
one job, recovery of stale jobs, and the webhook."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from core.attention import atlas
from core.attention.atlas import AtlasResult
from core.domain.errors import HeadlightError
from core.domain.identity import Role, Viewer
from core.jobs import atlas_rows, tasks, webhook
from core.jobs.contract import JobStatus, RowStatus, TransientError
from core.jobs.retry import RetryPolicy
from core.jobs.tasks import RunConfig, run_job
from core.models.huggingface.adapter import HuggingFaceModel
from core.store import jobs as job_store
from db import jobs as jobs_db
from db.models import Atlas, DatasetRow, Job, JobRow, utcnow
from tests.fixtures.batch import (
    FakeService,
    committing_factory,
    event_kinds,
    job_rows,
    seed_job,
    texts,
    without_jobs,
)
from tests.fixtures.tiny import tiny_model

FAST = RunConfig(claim_rows=3, pause_s=0.0, retry=RetryPolicy(attempts=3, base_s=0.01, max_s=0.02))


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


def _run(factory: sessionmaker, job_id: int, loaded: HuggingFaceModel, **kwargs: object) -> JobStatus:
    options = {"worker_name": "w1:1", "config": FAST, "rng": random.Random(0), **kwargs}
    return run_job(job_id, session_factory=factory, service=FakeService(loaded), **options)


def _job(factory: sessionmaker, job_id: int) -> Job:
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _owner(factory: sessionmaker, job_id: int) -> Viewer:
    return Viewer(user_id=_job(factory, job_id).owner_id, role=Role.ANALYST)


def _assert_each_row_once(factory: sessionmaker, job_id: int, n_rows: int) -> None:
    rows = job_rows(factory, job_id)
    assert len(rows) == n_rows and len({r.row_id for r in rows}) == n_rows
    assert all(r.status is RowStatus.DONE for r in rows)


def test_job_completes_with_the_right_atlas(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """Every row is scored once; the saved atlas is the mean of the per-row scores."""
    rows = texts(7)
    job_id = seed_job(factory, rows, loaded)
    assert _run(factory, job_id, loaded) is JobStatus.COMPLETED
    job = _job(factory, job_id)
    assert (job.rows_done, job.rows_failed, job.progress, job.worker) == (7, 0, 1.0, "w1:1")
    assert job.started_at is not None and job.finished_at is not None
    _assert_each_row_once(factory, job_id, 7)
    expected = np.mean(
        [atlas_rows.row_head_scores(loaded, atlas_rows.row_token_ids(loaded, t, 24)[0]) for t in rows], axis=0
    )
    with factory() as session:
        saved = session.get(Atlas, job.result["atlas_id"])
        assert saved is not None and saved.rows_used == 7 and saved.owner_id == job.owner_id
        result = AtlasResult.from_json(saved.result)
    np.testing.assert_allclose(
        result.means["entropy"], expected[atlas.ATLAS_STATS.index("entropy")], rtol=1e-5
    )
    kinds = event_kinds(factory, job_id)
    assert kinds[:2] == ["queued", "started"] and kinds[-1] == "completed"
    assert kinds.count("progress") == 7  # 14%, 28%, ... each crosses a tenth
    assert _run(factory, job_id, loaded) is JobStatus.COMPLETED  # a second delivery does nothing
    assert event_kinds(factory, job_id) == kinds


def test_cancel_stops_within_a_row_and_resume_finishes(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """A cancel during row 3 stops the worker after it; resume does only the rows left."""
    job_id = seed_job(factory, texts(10), loaded)
    viewer = _owner(factory, job_id)
    calls = []

    def scorer(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            with factory.begin() as session:
                assert (
                    job_store.cancel_job(session=session, viewer=viewer, job_id=job_id) is JobStatus.RUNNING
                )
        return atlas_rows.row_head_scores(model, ids)

    assert _run(factory, job_id, loaded, scorer=scorer) is JobStatus.CANCELLED
    job = _job(factory, job_id)
    assert job.rows_done == 3 and len(calls) == 3
    assert {r.status for r in job_rows(factory, job_id)} == {RowStatus.DONE}  # claims handed back
    kinds = event_kinds(factory, job_id)
    assert "cancel requested" in kinds and kinds[-1] == "cancelled"
    with factory.begin() as session, pytest.raises(ValueError, match="already finished"):
        job_store.cancel_job(session=session, viewer=viewer, job_id=job_id)
    with factory.begin() as session:
        job_store.resume_job(session=session, viewer=viewer, job_id=job_id, lease_s=60)
    calls.clear()
    assert _run(factory, job_id, loaded) is JobStatus.COMPLETED
    _assert_each_row_once(factory, job_id, 10)


def test_cancel_while_queued(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """A queued job cancels at once; a worker that picks it up later leaves it alone."""
    job_id = seed_job(factory, texts(2), loaded)
    with factory.begin() as session:
        assert (
            job_store.cancel_job(session=session, viewer=_owner(factory, job_id), job_id=job_id)
            is JobStatus.CANCELLED
        )
    assert _run(factory, job_id, loaded) is JobStatus.CANCELLED
    assert job_rows(factory, job_id) == []


def test_transient_errors_back_off_with_seeded_jitter(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """Two transient failures are retried after 1 s and 2 s (scaled by the seeded jitter)."""
    job_id = seed_job(factory, texts(2), loaded)
    failures = iter([TransientError("busy"), TransientError("busy again")])
    slept: list[float] = []

    def scorer(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
        error = next(failures, None)
        if error is not None:
            raise error
        return atlas_rows.row_head_scores(model, ids)

    policy = RetryPolicy(attempts=4, base_s=1.0, max_s=10.0, jitter=0.5)
    config = RunConfig(claim_rows=3, pause_s=0.0, retry=policy)
    status = _run(
        factory, job_id, loaded, scorer=scorer, config=config, rng=random.Random(7), sleep=slept.append
    )
    assert status is JobStatus.COMPLETED
    check = random.Random(7)
    backoff = [s for s in slept if s > 0]  # the rest are the (zero) pauses between rows
    assert backoff == [1.0 * (1 - 0.5 * check.random()), 2.0 * (1 - 0.5 * check.random())]
    first = job_rows(factory, job_id)[0]
    assert first.attempts == 3 and first.status is RowStatus.DONE
    assert event_kinds(factory, job_id).count("retry") == 2


def test_a_failing_row_is_recorded_and_the_job_goes_on(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """A row whose scoring raises is kept with its error; a transient error that never
    passes fails only its row too; the job completes with the rest."""
    rows = texts(5)
    job_id = seed_job(factory, rows, loaded)

    def scorer(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
        if ids == atlas_rows.row_token_ids(loaded, rows[1], 24)[0]:
            raise ValueError("bad row")
        if ids == atlas_rows.row_token_ids(loaded, rows[3], 24)[0]:
            raise TimeoutError("never answers")
        return atlas_rows.row_head_scores(model, ids)

    assert _run(factory, job_id, loaded, scorer=scorer) is JobStatus.COMPLETED
    job = _job(factory, job_id)
    assert (job.rows_done, job.rows_failed) == (3, 2)
    failed = {r.error: r.attempts for r in job_rows(factory, job_id) if r.status is RowStatus.FAILED}
    assert failed == {"ValueError: bad row": 1, "TimeoutError: never answers": 3}
    with factory() as session:
        view = job_store.job_view(session=session, viewer=_owner(factory, job_id), job_id=job_id, lease_s=60)
    assert [position for position, _, _ in view.failed_rows] == [1, 3]
    assert event_kinds(factory, job_id).count("row failed") == 2


def test_every_row_failing_fails_the_job_resumably(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """With no row done the job fails with the first error; resume retries the failed rows."""
    job_id = seed_job(factory, texts(3), loaded)

    def broken(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
        raise RuntimeError("model on fire")

    assert _run(factory, job_id, loaded, scorer=broken) is JobStatus.FAILED
    assert "every row failed; the first: RuntimeError: model on fire" in _job(factory, job_id).error
    with factory.begin() as session:
        job = job_store.resume_job(session=session, viewer=_owner(factory, job_id), job_id=job_id, lease_s=60)
        assert job.status is JobStatus.QUEUED and job.rows_failed == 0
    assert _run(factory, job_id, loaded) is JobStatus.COMPLETED
    assert "resumed" in event_kinds(factory, job_id)


def test_worker_killed_mid_job_resumes_without_duplicates_or_losses(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """A worker dying (SystemExit) mid-chunk leaves the job running with its claims; the
    restarted node releases them and finishes: every row exactly once."""
    rows = texts(11)
    job_id = seed_job(factory, rows, loaded)
    seen: list[int] = []

    def dies_on_row_5(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
        seen.append(1)
        if len(seen) == 5:
            raise SystemExit("worker killed")
        return atlas_rows.row_head_scores(model, ids)

    with pytest.raises(SystemExit):
        _run(factory, job_id, loaded, scorer=dies_on_row_5, worker_name="node-a:100")
    job = _job(factory, job_id)
    assert job.status is JobStatus.RUNNING and job.rows_done == 4
    statuses = [r.status for r in job_rows(factory, job_id)]
    assert statuses.count(RowStatus.CLAIMED) == 2  # the rest of the dying worker's chunk

    sent: list[int] = []
    assert tasks.recover(factory, worker_prefix="node-a:", lease_s=300, enqueue=sent.append) == [job_id]
    assert sent == [job_id] and "interrupted" in event_kinds(factory, job_id)
    assert _run(factory, job_id, loaded, worker_name="node-a:200") is JobStatus.COMPLETED
    _assert_each_row_once(factory, job_id, 11)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Atlas).where(Atlas.job_id == job_id)) == 1


def test_worker_killed_between_chunks_is_found_by_its_last_report(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """A worker that died holding no claims is still the job's last reporter: its node's
    restart sends the job again."""
    job_id = seed_job(factory, texts(4), loaded)
    with factory.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status=JobStatus.RUNNING, worker="node-d:7", heartbeat_at=utcnow())
        )
    sent: list[int] = []
    assert tasks.recover(factory, worker_prefix="node-d:", lease_s=300, enqueue=sent.append) == [job_id]
    assert _run(factory, job_id, loaded, worker_name="node-d:8") is JobStatus.COMPLETED
    _assert_each_row_once(factory, job_id, 4)


def test_another_worker_takes_over_expired_claims(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """Without a restart, claims older than the lease go to whichever worker comes next."""
    job_id = seed_job(factory, texts(6), loaded)
    seen: list[int] = []

    def dies(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return atlas_rows.row_head_scores(model, ids)

    with pytest.raises(KeyboardInterrupt):
        _run(factory, job_id, loaded, scorer=dies, worker_name="node-b:1")
    with factory.begin() as session:  # the dead worker's claims age past the lease
        session.execute(update(jobs_db.JobRow).values(claimed_at=utcnow() - timedelta(hours=1)))
    assert _run(factory, job_id, loaded, worker_name="node-c:1") is JobStatus.COMPLETED
    _assert_each_row_once(factory, job_id, 6)


def test_two_workers_share_one_job(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """Two workers running one job at once split its rows: both do work, every row is
    scored exactly once by the worker that recorded it, and one of them completes the job.

    Each worker's first row waits (outside the model lock) until the other has a row in
    hand too, so both hold a claim whatever the scheduling: no timing luck involved.
    """
    rows = texts(24)
    job_id = seed_job(factory, rows, loaded)
    row_of = {tuple(atlas_rows.row_token_ids(loaded, t, 24)[0]): i for i, t in enumerate(rows)}
    assert len(row_of) == len(rows)  # the scorer can tell the rows apart by their tokens
    both_working = threading.Barrier(2, timeout=30)
    scored: dict[str, list[int]] = {"node-0:1": [], "node-1:1": []}
    results: dict[str, JobStatus | BaseException] = {}

    def worker(name: str) -> None:
        def scorer(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
            if not scored[name]:
                both_working.wait()
            scored[name].append(row_of[tuple(ids)])
            return atlas_rows.row_head_scores(model, ids)

        try:
            results[name] = _run(factory, job_id, loaded, worker_name=name, scorer=scorer)
        except BaseException as exc:  # reported below, not lost in the thread
            results[name] = exc

    threads = [threading.Thread(target=worker, args=(name,)) for name in scored]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert all(isinstance(status, JobStatus) for status in results.values()), results
    assert JobStatus.COMPLETED in results.values() and len(results) == 2
    assert event_kinds(factory, job_id).count("completed") == 1
    _assert_each_row_once(factory, job_id, 24)

    # Both workers did work: at least the claim each held when they met at the barrier.
    assert all(len(done) >= FAST.claim_rows for done in scored.values()), scored
    # No row scored twice, none missed: the two workers' rows partition the dataset.
    assert sorted(scored["node-0:1"] + scored["node-1:1"]) == list(range(24))
    assert not set(scored["node-0:1"]) & set(scored["node-1:1"])
    # Each row is recorded under the worker that scored it.
    with factory() as session:
        recorded = session.execute(
            select(JobRow.worker, DatasetRow.position)
            .join(DatasetRow, DatasetRow.id == JobRow.row_id)
            .where(JobRow.job_id == job_id)
        ).all()
    assert {name: sorted(p for w, p in recorded if w == name) for name in scored} == {
        name: sorted(done) for name, done in scored.items()
    }


def test_recover_requeues_stale_and_lost_jobs(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """A running job silent past the lease goes back to queued; an old queued job is re-sent."""
    stale_id = seed_job(factory, texts(2), loaded)
    queued_id = seed_job(factory, texts(2), loaded)
    old = utcnow() - timedelta(hours=2)
    with factory.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id == stale_id)
            .values(status=JobStatus.RUNNING, heartbeat_at=old, worker="gone:1")
        )
        session.execute(update(Job).where(Job.id == queued_id).values(created_at=old))
    sent: list[int] = []
    found = tasks.recover(factory, worker_prefix="nobody:", lease_s=60, enqueue=sent.append)
    assert stale_id in found and queued_id in found and sorted(sent) == sorted(found)
    assert _job(factory, stale_id).status is JobStatus.QUEUED
    assert "no news from worker gone:1" in _events_text(factory, stale_id)


def _events_text(factory: sessionmaker, job_id: int) -> str:
    with factory() as session:
        return " ".join(e.message for e in jobs_db.events(session=session, job_id=job_id))


def test_job_level_failures(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """A changed model revision fails the job with advice; an unreachable resource is
    raised (the job stays running for a retry); a finished job is left alone."""
    job_id = seed_job(factory, texts(2), loaded)
    with factory.begin() as session:
        job = session.get(Job, job_id)
        job.params = {**job.params, "revision": "older"}
    assert _run(factory, job_id, loaded) is JobStatus.FAILED
    assert "launch a new job" in _job(factory, job_id).error

    class Unreachable(FakeService):
        def load(self, model_id: str) -> tuple[HuggingFaceModel, float]:
            raise ConnectionError("model store down")

    job_id = seed_job(factory, texts(2), loaded)
    with pytest.raises(ConnectionError):
        run_job(
            job_id,
            session_factory=factory,
            service=Unreachable(loaded),
            worker_name="w:1",
            config=FAST,
            sleep=lambda s: None,
        )
    assert _job(factory, job_id).status is JobStatus.RUNNING
    with pytest.raises(LookupError):
        _run(factory, 999_999, loaded)


def test_a_queued_job_on_a_turned_off_model_fails_without_loading_it(
    factory: sessionmaker, loaded: HuggingFaceModel
) -> None:
    """An admin turns the model off after the job was launched: the worker refuses to run it,
    says why, and never loads the model."""
    job_id = seed_job(factory, texts(3), loaded)
    service = FakeService(loaded, enabled=False)
    options = {"worker_name": "w1:1", "config": FAST, "rng": random.Random(0)}
    assert run_job(job_id, session_factory=factory, service=service, **options) is JobStatus.FAILED
    job = _job(factory, job_id)
    assert job.error is not None and job.error.startswith(
        f"{loaded.spec.label} has been turned off by an admin"
    )
    assert service.loads == 0 and job.rows_done == 0


class _Receiver:
    """Records webhook calls; answers 500 to the first one."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append((body, headers))
        return 500 if len(self.calls) == 1 else 204


def test_webhook_is_signed_and_retried(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """On completion the webhook gets a signed JSON body; a 500 is retried; the timeline says so."""
    job_id = seed_job(factory, texts(2), loaded, webhook_url="https://hooks.example.org/x")
    receiver = _Receiver()
    config = RunConfig(pause_s=0.0, webhook_secret="s3cret", webhook_retry=RetryPolicy(3, 0.01, 0.01))
    assert (
        _run(factory, job_id, loaded, config=config, poster=receiver, sleep=lambda s: None)
        is JobStatus.COMPLETED
    )
    assert len(receiver.calls) == 2
    body, headers = receiver.calls[-1]
    timestamp = int(headers[webhook.TIMESTAMP_HEADER])
    assert webhook.verify(body, "s3cret", timestamp, headers[webhook.SIGNATURE_HEADER])
    assert b'"event":"job.completed"' in body and b'"rows_done":2' in body
    assert "delivered: HTTP 204 after 2 attempts" in _events_text(factory, job_id)


def test_webhook_without_a_secret_is_not_sent(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    job_id = seed_job(factory, texts(1), loaded, webhook_url="https://hooks.example.org/x")
    receiver = _Receiver()
    assert _run(factory, job_id, loaded, poster=receiver) is JobStatus.COMPLETED
    assert receiver.calls == [] and "no HEADLIGHT_WEBHOOK_SECRET" in _events_text(factory, job_id)


# A fixed "now" for the fake clocks below: nothing depends on when the test runs.
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> Callable[[], datetime]:
    """A clock standing ``seconds`` after `NOW`."""
    return lambda: NOW + timedelta(seconds=seconds)


def _finish_rows(factory: sessionmaker, job_id: int, finished_ago_s: list[float]) -> None:
    """Mark the job running and one row done per entry, finished that many seconds before `NOW`."""
    with factory.begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.RUNNING))
        job = session.get(Job, job_id)
        rows = jobs_db.claim_rows(
            session=session,
            job=job,
            dataset_id=job.params["dataset_id"],
            worker="w",
            limit=len(finished_ago_s),
            stale_before=NOW,
        )
        for (row_id, _), ago in zip(rows, finished_ago_s, strict=True):
            jobs_db.record_row(
                session=session, job_id=job_id, row_id=row_id, worker="w", status=RowStatus.DONE, attempts=1
            )
            session.execute(
                update(JobRow)
                .where(JobRow.job_id == job_id, JobRow.row_id == row_id)
                .values(finished_at=NOW - timedelta(seconds=ago))
            )
        jobs_db.refresh_counts(session=session, job_id=job_id)


def _progress(factory: sessionmaker, job_id: int, clock: Callable[[], datetime]) -> job_store.JobProgress:
    with factory() as session:
        return job_store.progress(session=session, job=session.get(Job, job_id), clock=clock)


def test_progress_and_eta(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """The ETA follows the pace since the start, or over the last `ETA_WINDOW_S` once the job
    is older, by the injected clock; no pace, no ETA; finished jobs have none."""
    window = job_store.ETA_WINDOW_S
    young = seed_job(factory, texts(6), loaded)
    _finish_rows(factory, young, [8.0, 3.0])
    with factory.begin() as session:
        session.execute(update(Job).where(Job.id == young).values(started_at=NOW - timedelta(seconds=10)))
    progress = _progress(factory, young, _at(0))
    assert (progress.done, progress.total, progress.fraction) == (2, 6, pytest.approx(1 / 3))
    assert progress.eta_s == pytest.approx(20.0)  # 2 rows in the 10 s since the start, 4 to go

    old = seed_job(factory, texts(6), loaded)
    _finish_rows(factory, old, [1800.0, window - 1, 60.0, 1.0])  # the first is older than the window
    with factory.begin() as session:
        session.execute(update(Job).where(Job.id == old).values(started_at=NOW - timedelta(hours=1)))
    assert _progress(factory, old, _at(0)).eta_s == pytest.approx(2 * window / 3)  # 3 recent rows, 2 to go
    assert _progress(factory, old, _at(window)).eta_s is None  # nothing finished in the last window

    with factory.begin() as session:
        session.execute(update(Job).where(Job.id == old).values(status=JobStatus.COMPLETED))
    assert _progress(factory, old, _at(0)).eta_s is None


def test_a_silent_running_job_stalls_after_a_lease(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """A running job is stalled once no worker has reported for a lease (by the injected
    clock); only then may its owner resume it."""
    job_id = seed_job(factory, texts(2), loaded)
    with factory.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status=JobStatus.RUNNING, started_at=NOW, heartbeat_at=NOW, worker="w:1")
        )
    viewer = _owner(factory, job_id)
    for seconds, stalled in ((59, False), (61, True)):
        with factory() as session:
            view = job_store.job_view(
                session=session, viewer=viewer, job_id=job_id, lease_s=60, clock=_at(seconds)
            )
        assert view.stalled is stalled
    with factory.begin() as session, pytest.raises(HeadlightError, match="needs no resume"):
        job_store.resume_job(session=session, viewer=viewer, job_id=job_id, lease_s=60, clock=_at(59))
    with factory.begin() as session:
        job = job_store.resume_job(session=session, viewer=viewer, job_id=job_id, lease_s=60, clock=_at(61))
        assert job.status is JobStatus.QUEUED
    assert event_kinds(factory, job_id)[-1] == "interrupted"


def test_claims_never_overlap(factory: sessionmaker, loaded: HuggingFaceModel) -> None:
    """Two claims on one job get disjoint rows; a done row is never overwritten."""
    job_id = seed_job(factory, texts(5), loaded)
    with factory.begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.RUNNING))
        job = session.get(Job, job_id)
        dataset_id = job.params["dataset_id"]
        first = jobs_db.claim_rows(
            session=session,
            job=job,
            dataset_id=dataset_id,
            worker="a",
            limit=3,
            stale_before=utcnow() - timedelta(minutes=5),
        )
        second = jobs_db.claim_rows(
            session=session,
            job=job,
            dataset_id=dataset_id,
            worker="b",
            limit=3,
            stale_before=utcnow() - timedelta(minutes=5),
        )
        assert len(first) == 3 and len(second) == 2
        assert not {r for r, _ in first} & {r for r, _ in second}
        row_id = first[0][0]
        assert jobs_db.record_row(
            session=session, job_id=job_id, row_id=row_id, worker="a", status=RowStatus.DONE, attempts=1
        )
        assert not jobs_db.record_row(
            session=session,
            job_id=job_id,
            row_id=row_id,
            worker="b",
            status=RowStatus.FAILED,
            attempts=1,
            error="late",
        )
        statuses = session.scalars(select(JobRow.status).where(JobRow.job_id == job_id)).all()
        assert sorted(statuses) == [RowStatus.CLAIMED] * 4 + [RowStatus.DONE]
