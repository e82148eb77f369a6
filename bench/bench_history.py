"""History search at scale: 1,000,000 saved analyses on Postgres, full-text vs an ILIKE scan.

Creates its own database on the server (``HEADLIGHT_BENCH_POSTGRES_URL``, else
``HEADLIGHT_TEST_POSTGRES_URL``, else the local server as user postgres), migrates it, bulk
loads users, analyses and tags with COPY (two streams in parallel, secondary indexes
built afterwards), then times the app's own query path, `core.store.analyses.search_history`
(permission filter, text match, filters, keyset page of 20 and the total count) for a
fixed mix of searches, filtered lists and second pages. The baseline runs the same text
queries with the text match replaced by ``ILIKE '%word%'`` over the same columns. The
database is dropped at the end.

Corpus: texts of 20-60 words drawn from a 20,000-word Zipf vocabulary (s = 1.05), 1,000
users, 10 % of analyses public, 2 % in the Trash, 30 % tagged. Query words are drawn
log-uniformly between vocabulary ranks 30 and 20,000, so some match several percent of all
rows. The attention blob, tokens and statistics are stored small: they live out of line
(TOAST) in real rows and no history query reads them.

Last line: RESULT search_p95_ms=<x> speedup_vs_ilike=<y> target p95<50 and speedup>=20 PASS|FAIL
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import and_, create_engine, or_, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.access.permissions import Scope
from core.domain.identity import Role, Viewer
from core.store import analyses as library
from core.store.analyses import HistoryQuery
from db import search
from db.models import Visualization
from db.search import Sort
from db.session import init_db, make_engine

TARGET_P95_MS = 50.0
TARGET_SPEEDUP = 20.0
VOCABULARY = 20_000
USERS = 1_000
MODELS = ["smollm2-135m-instruct", "all-minilm-l6-v2", "gemma-3-270m", "gpt2", "distilbert"]
TAGS = [f"tag{i}" for i in range(20)]
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_DAYS = 730
SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["qua", "thi", "sho", "chu"]
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
VIS_COLUMNS = (
    "id, owner_id, model_id, model_revision, title, input_text, generated_text, params, model_info, "
    "token_data, token_count, head_stats, compact_attention, timings, annotation_text, is_public, "
    "created_at, updated_at, deleted_at, tag_terms"
)


def vocabulary(rng: np.random.Generator) -> np.ndarray:
    """20,000 distinct pronounceable non-words (so no English stop word sneaks in)."""
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        n = int(rng.integers(2, 5))
        words["".join(rng.choice(SYLLABLES, n))] = None
    return np.array(list(words))


def zipf_probabilities(n: int, s: float = 1.05) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return weights / weights.sum()


def rows(
    start: int, stop: int, total: int, words: np.ndarray, seed: int, tags_out: list[tuple[int, str]]
) -> Iterator[tuple]:
    """Visualization rows ``start .. stop - 1`` (ids 1-based), deterministic per seed.

    Each row's tags are appended to ``tags_out`` as ``(visualization id, tag)``.
    """
    rng = np.random.default_rng(seed)
    probabilities = zipf_probabilities(len(words))
    count = stop - start
    lengths = rng.integers(20, 61, count)
    picks = rng.choice(len(words), size=int(lengths.sum()), p=probabilities)
    title_picks = rng.choice(len(words), size=(count, 4), p=probabilities)
    owners = rng.integers(1, USERS + 1, count)
    models = rng.integers(0, len(MODELS), count)
    public = rng.random(count) < 0.10
    deleted = rng.random(count) < 0.02
    noted = rng.random(count) < 0.05
    tagged = rng.random(count) < 0.30
    tag_picks = rng.integers(0, len(TAGS), (count, 2))
    # Rows arrive in time order, as saved analyses do: ids and created_at rise together.
    span = SPAN_DAYS * 86_400 // total
    seconds = np.sort(rng.integers(start * span, stop * span, count))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for i in range(count):
        row_id = start + i + 1
        tags = sorted({TAGS[t] for t in tag_picks[i]}) if tagged[i] else []
        tags_out.extend((row_id, tag) for tag in tags)
        body = " ".join(words[picks[offsets[i] : offsets[i + 1]]].tolist())
        created = START + timedelta(seconds=int(seconds[i]))
        yield (
            row_id,
            int(owners[i]),
            MODELS[models[i]],
            "1",
            " ".join(words[title_picks[i]].tolist()),
            body,
            "",
            "{}",
            "{}",
            "{}",
            int(lengths[i]),
            "{}",
            b"",
            "{}",
            f"note about {words[title_picks[i][0]]}" if noted[i] else "",
            bool(public[i]),
            created,
            created,
            created + timedelta(days=1) if deleted[i] else None,
            [f"tag:{tag}" for tag in tags],
        )


def load(url: str, n_rows: int, words: np.ndarray) -> float:
    """Bulk load users, visualizations and tags; returns seconds spent.

    Secondary indexes are dropped first and rebuilt after. ``tag_terms`` is written with
    each row and the trigger that would maintain it pauses while the tags are copied.
    """
    started = time.perf_counter()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    secondary = (
        "FROM pg_indexes WHERE tablename IN ('visualizations', 'visualization_tags') "
        "AND indexname NOT LIKE 'pk_%'"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        index_sql = [row[0] for row in conn.execute(f"SELECT indexdef {secondary}")]
        for (name,) in conn.execute(f"SELECT indexname {secondary}").fetchall():
            conn.execute(f'DROP INDEX "{name}"')
        with conn.cursor().copy(
            "COPY users (id, username, display_name, role, is_active, failed_logins, created_at) FROM STDIN"
        ) as copy:
            for i in range(1, USERS + 1):
                copy.write_row((i, f"user{i}", f"User {i}", "analyst", True, 0, START))
        conn.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), %s)", (USERS,))

    tag_rows: list[list[tuple[int, str]]] = [[], []]

    def stream(first: int, last: int, part: int) -> None:
        with (
            psycopg.connect(dsn, autocommit=True) as conn,
            conn.cursor().copy(f"COPY visualizations ({VIS_COLUMNS}) FROM STDIN") as copy,
        ):
            for row in rows(first, last, n_rows, words, seed=part + 1, tags_out=tag_rows[part]):
                copy.write_row(row)

    half = n_rows // 2
    threads = [
        threading.Thread(target=stream, args=(0, half, 0)),
        threading.Thread(target=stream, args=(half, n_rows, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT setval(pg_get_serial_sequence('visualizations', 'id'), %s)", (n_rows,))
        conn.execute("ALTER TABLE visualization_tags DISABLE TRIGGER USER")
        with conn.cursor().copy("COPY visualization_tags (visualization_id, tag) FROM STDIN") as copy:
            for part in tag_rows:
                for row in part:
                    copy.write_row(row)
        conn.execute("ALTER TABLE visualization_tags ENABLE TRIGGER USER")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        for statement in index_sql:
            conn.execute(statement)
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def ilike_match(session: Session, user_text: str):
    """The baseline: every word must occur (case-insensitively) in one of the searched columns."""
    columns = (
        Visualization.title,
        Visualization.input_text,
        Visualization.generated_text,
        Visualization.annotation_text,
    )
    terms = [w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in user_text.split()]
    return and_(*[or_(*[column.ilike(f"%{term}%") for column in columns]) for term in terms])


def workload(words: np.ndarray, n_queries: int, seed: int) -> list[tuple[str, HistoryQuery, bool]]:
    """``(kind, query, second page?)`` in a fixed mix of searches, filters and pages."""
    rng = np.random.default_rng(seed)

    def word() -> str:
        rank = int(math.exp(rng.uniform(math.log(30), math.log(VOCABULARY))))
        return str(words[rank - 1])

    def days(start: int, length: int) -> tuple[date, date]:
        first = (START + timedelta(days=start)).date()
        return first, first + timedelta(days=length)

    makers: list[tuple[str, float, Callable[[], tuple[HistoryQuery, bool]]]] = [
        ("search", 0.35, lambda: (HistoryQuery(text=word()), False)),
        ("search two words", 0.10, lambda: (HistoryQuery(text=f"{word()} {word()}"), False)),
        ("search + model", 0.10, lambda: (HistoryQuery(text=word(), model_ids=(MODELS[0],)), False)),
        (
            "search + dates",
            0.10,
            lambda: (HistoryQuery(text=word(), date_from=days(200, 90)[0], date_to=days(200, 90)[1]), False),
        ),
        (
            "search + tag",
            0.10,
            lambda: (HistoryQuery(text=word(), tags=(TAGS[int(rng.integers(20))],)), False),
        ),
        ("search, page 2", 0.05, lambda: (HistoryQuery(text=word()), True)),
        ("mine, newest", 0.10, lambda: (HistoryQuery(scope=Scope.MINE), False)),
        ("public by title", 0.05, lambda: (HistoryQuery(scope=Scope.PUBLIC, sort=Sort.TITLE), False)),
        ("all, page 2", 0.05, lambda: (HistoryQuery(), True)),
    ]
    weights = np.array([w for _, w, _ in makers])
    out = []
    for choice in rng.choice(len(makers), size=n_queries, p=weights / weights.sum()):
        kind, _, make = makers[choice]
        query, second = make()
        out.append((kind, query, second))
    return out


def timed(session: Session, viewer: Viewer, query: HistoryQuery, second_page: bool) -> tuple[float, int]:
    """Milliseconds for one page (and its total), as the History screen asks for it."""
    cursor = None
    if second_page:
        cursor = library.search_history(session=session, viewer=viewer, query=query).next_cursor
    started = time.perf_counter()
    page = library.search_history(session=session, viewer=viewer, query=query, cursor=cursor)
    return (time.perf_counter() - started) * 1000, page.total


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--baseline-queries", type=int, default=25)
    args = parser.parse_args()
    server = os.environ.get(
        "HEADLIGHT_BENCH_POSTGRES_URL", os.environ.get("HEADLIGHT_TEST_POSTGRES_URL", DEFAULT_URL)
    )
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"headlight_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        init_db(engine)
        words = vocabulary(np.random.default_rng(0))
        print(f"loading {args.rows:,} analyses …", flush=True)
        seconds = load(url, args.rows, words)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
        print(f"loaded in {seconds:.0f} s ({args.rows / seconds:,.0f} rows/s); database {size}")

        viewer = Viewer(user_id=1, role=Role.ANALYST)
        plan = workload(words, args.queries, seed=4)
        with Session(engine) as session:
            for _, query, second in plan[:30]:  # warm caches and plans
                timed(session, viewer, query, second)
            results: dict[str, list[float]] = {}
            totals: list[int] = []
            for kind, query, second in plan:
                ms, total = timed(session, viewer, query, second)
                results.setdefault(kind, []).append(ms)
                totals.append(total)
            every = [ms for values in results.values() for ms in values]
            print(f"\n{'queries':<18}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
            for kind, values in results.items():
                print(
                    f"{kind:<18}{len(values):>5}{percentile(values, 50):>9.1f}"
                    f"{percentile(values, 95):>9.1f}{max(values):>9.1f}"
                )
            print(
                f"{'all':<18}{len(every):>5}{percentile(every, 50):>9.1f}{percentile(every, 95):>9.1f}"
                f"{max(every):>9.1f}   (median total {statistics.median(totals):,.0f} rows)"
            )

            baseline = [(q, s) for kind, q, s in plan if kind == "search"][: args.baseline_queries]
            fts = [timed(session, viewer, q, s)[0] for q, s in baseline]
            original = search.text_match
            search.text_match = ilike_match
            try:
                ilike = [timed(session, viewer, q, s)[0] for q, s in baseline]
            finally:
                search.text_match = original
        speedup = statistics.median(ilike) / statistics.median(fts)
        print(
            f"\nthe same {len(baseline)} one-word searches, full-text vs ILIKE: "
            f"p50 {statistics.median(fts):.1f} vs {statistics.median(ilike):.1f} ms, "
            f"p95 {percentile(fts, 95):.1f} vs {percentile(ilike, 95):.1f} ms"
        )
        p95 = percentile(every, 95)
        verdict = "PASS" if p95 < TARGET_P95_MS and speedup >= TARGET_SPEEDUP else "FAIL"
        print(
            f"RESULT search_p95_ms={p95:.1f} speedup_vs_ilike={speedup:.1f} "
            f"target p95<{TARGET_P95_MS:g} and speedup>={TARGET_SPEEDUP:g} {verdict}"
        )
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
