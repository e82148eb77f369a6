"""Batch jobs on SmolLM2: rows per second with one Celery worker vs two worker processes,
and the head atlas's cost per row against a plain forward pass with attentions.

Throughput: a 500-row dataset (synthetic sentences of 20-60 words, cut at 128 tokens) runs
as one atlas job on (a) one worker process with one torch thread per core, (b) as a
control, printed but not in the result, one worker held to one thread, and (c) two worker
processes splitting the cores' threads, on a private redis-server and the local Postgres
(SQLite when Postgres is unreachable). Workers are warmed up (model loaded) before timing;
rows/s is rows over the time from submit to the job's completion in the database. On a
machine shared with other work, (a) suffers most: torch's threads wait for each other
whenever one of them is descheduled.

Atlas overhead (same process, same rows, interleaved, median of per-row ratios): the atlas
path (`core.jobs.atlas_rows.row_head_scores`: hooks on every layer, six scores per head, the model's
lock) against `model(ids, output_attentions=True, logits_to_keep=1)`, the same forward with
attentions returned and no statistics. The ratio against a forward that also computes
every position's logits (what `model(ids, output_attentions=True)` does) is printed too.

Last line: RESULT rows_per_s_1w=<x> rows_per_s_2w=<y> atlas_overhead=<z> target<=1.3 PASS|FAIL
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.domain.identity import Role
from core.domain.settings import get_settings
from core.jobs import atlas_rows
from core.jobs.contract import JobStatus
from core.jobs.tasks import KIND_ATLAS, atlas_params
from core.models.huggingface.adapter import HuggingFaceModel
from core.models.registry import load_registry
from core.service.analysis_service import AnalysisService
from core.service.celery_worker import CeleryDispatcher, make_app
from core.store import datasets
from db import datasets as dataset_db
from db import jobs as jobs_db
from db.models import Job, User
from db.session import init_db, make_engine

ROOT = Path(__file__).resolve().parents[1]
MODEL_ID = "smollm2-135m-instruct"
ROWS = 500
MAX_TOKENS = 128
OVERHEAD_ROWS = 40
TARGET = 1.3
POSTGRES = os.environ.get(
    "HEADLIGHT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choices(datasets.PROBE_WORDS, k=rng.randint(20, 60))).capitalize() + "."
        for _ in range(n)
    ]


def atlas_overhead(service: AnalysisService, rows: list[str]) -> tuple[float, float]:
    """Median per-row ratios: atlas / forward with attentions (last logits only), and
    atlas / forward with attentions and every position's logits."""
    loaded, _ = service.load(MODEL_ID)
    assert isinstance(loaded, HuggingFaceModel)
    model = loaded.hf_model  # the baseline is plain transformers
    ratios, ratios_full = [], []

    def timed(fn) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    for text_ in rows[:3]:  # warm-up
        ids, _ = atlas_rows.row_token_ids(loaded, text_, MAX_TOKENS)
        atlas_rows.row_head_scores(loaded, ids)
    for text_ in rows:
        ids, _ = atlas_rows.row_token_ids(loaded, text_, MAX_TOKENS)
        input_ids = torch.tensor([ids])

        def plain(keep: int | None = 1, input_ids: torch.Tensor = input_ids) -> None:
            extra = {"logits_to_keep": keep} if keep else {}
            with torch.inference_mode():
                model(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    output_attentions=True,
                    **extra,
                )

        base = min(timed(plain), timed(plain))
        full = min(timed(lambda: plain(None)), timed(lambda: plain(None)))
        scored = min(timed(lambda ids=ids: atlas_rows.row_head_scores(loaded, ids)) for _ in range(2))
        ratios.append(scored / base)
        ratios_full.append(scored / full)
    return statistics.median(ratios), statistics.median(ratios_full)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database(tmp: Path) -> tuple[str, object | None]:
    """A fresh Postgres database (and the admin engine to drop it), else a SQLite file."""
    try:
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        name = f"headlight_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False), admin
    except Exception:  # no server: the embedded database
        return f"sqlite:///{tmp / 'bench.db'}", None


def _start_workers(n: int, threads: int, env: dict[str, str], log_dir: Path) -> list[subprocess.Popen]:
    celery = str(Path(sys.executable).with_name("celery"))
    workers = []
    for i in range(n):
        log = (log_dir / f"worker-{n}-{i}.log").open("wb")
        command = [
            celery,
            "-A",
            "core.service.celery_worker",
            "worker",
            "-Q",
            "batch",
            "--pool=solo",
            "-n",
            f"bench{n}-{i}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ]
        worker_env = {**env, "HEADLIGHT_BATCH_TORCH_THREADS": str(threads)}
        workers.append(
            subprocess.Popen(command, cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT)
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = [(log_dir / f"worker-{n}-{i}.log").read_text(errors="replace") for i in range(n)]
        if all(" ready." in log for log in logs):
            return workers
        time.sleep(0.2)
    raise RuntimeError("workers did not start:\n" + "\n".join(log[-2000:] for log in logs))


def _job(factory: sessionmaker[Session], owner_id: int, dataset_id: int, revision: str, rows: int) -> int:
    with factory.begin() as session:
        job = jobs_db.create_job(
            session=session,
            kind=KIND_ATLAS,
            owner_id=owner_id,
            params=atlas_params(
                dataset_id=dataset_id, model_id=MODEL_ID, revision=revision, max_tokens=MAX_TOKENS
            ),
            rows_total=rows,
        )
        return job.id


def _wait(factory: sessionmaker[Session], job_id: int, timeout: float = 1800) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            job = session.get(Job, job_id)
            if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                return job
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not finish")


def throughput(rows: list[str], revision: str) -> dict[tuple[int, int], float]:
    """rows/s of one 500-row job per (worker processes, torch threads each)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    url, admin = _database(tmp)
    port = _free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    engine = make_engine(url)
    results: dict[tuple[int, int], float] = {}
    try:
        init_db(engine)
        factory = sessionmaker(engine, expire_on_commit=False)
        with factory.begin() as session:
            user = User(username="bench", role=Role.ANALYST)
            session.add(user)
            session.flush()
            owner_id = user.id
            dataset = dataset_db.create_dataset(
                session=session,
                owner_id=owner_id,
                name="bench",
                format="text",
                texts=list(enumerate(rows, 1)),
            )
            warm = dataset_db.create_dataset(
                session=session,
                owner_id=owner_id,
                name="warm",
                format="text",
                texts=list(enumerate(rows[:8], 1)),
            )
            dataset_id, warm_id = dataset.id, warm.id
        redis_url = f"redis://127.0.0.1:{port}/0"
        dispatcher = CeleryDispatcher(make_app(redis_url))
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "HEADLIGHT_METRICS_PORT": "0"}
        cores = os.cpu_count() or 2
        # (workers, torch threads each): one worker using every core, the same worker held
        # to one thread (a control: threads alone), and one worker per core.
        for n_workers, threads in ((1, cores), (1, 1), (2, max(1, cores // 2))):
            workers = _start_workers(n_workers, threads, env, tmp)
            try:
                warm_job = _job(factory, owner_id, warm_id, revision, 8)
                dispatcher.submit(warm_job, n_workers)
                _wait(factory, warm_job)
                job_id = _job(factory, owner_id, dataset_id, revision, len(rows))
                started = time.perf_counter()
                dispatcher.submit(job_id, n_workers)
                job = _wait(factory, job_id)
                seconds = time.perf_counter() - started
                assert job.status is JobStatus.COMPLETED and job.rows_done == len(rows), job
                rate = len(rows) / seconds
                results[(n_workers, threads)] = rate
                print(
                    f"{n_workers} worker(s) × {threads} thread(s): {len(rows)} rows in {seconds:.1f} s"
                    f" = {rate:.2f} rows/s"
                )
            finally:
                for worker in workers:
                    worker.send_signal(signal.SIGTERM)
                for worker in workers:
                    worker.wait(60)
    finally:
        engine.dispose()
        redis.terminate()
        redis.wait(10)
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    settings = get_settings()
    service = AnalysisService(settings, load_registry(settings.registry_path))
    spec = service.registry.get(MODEL_ID)
    rows = corpus(ROWS)
    print(f"{MODEL_ID}: {ROWS} rows, ≤{MAX_TOKENS} tokens each; torch threads {torch.get_num_threads()}")
    overhead, overhead_full = atlas_overhead(service, rows[:OVERHEAD_ROWS])
    print(f"atlas / forward with attentions (last logits): {overhead:.3f}")
    print(f"atlas / forward with attentions (all logits):  {overhead_full:.3f}")
    rates = throughput(rows, spec.revision)
    cores = os.cpu_count() or 2
    verdict = "PASS" if overhead <= TARGET else "FAIL"
    print(
        f"RESULT rows_per_s_1w={rates[(1, cores)]:.2f} rows_per_s_2w={rates[(2, max(1, cores // 2))]:.2f} "
        f"atlas_overhead={overhead:.3f} target<={TARGET} {verdict}"
    )


if __name__ == "__main__":
    main()
