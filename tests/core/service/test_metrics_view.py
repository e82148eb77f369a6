"""Metrics screen data: charts from events, percentiles, readiness, system snapshot, logs."""

from __future__ import annotations

import io
import json
import logging

from core.models.pool import LoadFailure, ModelPool
from core.ops.logs import build_handler, configure_logging, log_context
from core.ops.telemetry import AnalysisEvent
from core.service import metrics_view, system
from core.service.cache import MemoryCache, RedisCache

NOW = 1_700_000_000.0
EVENTS = [
    AnalysisEvent(NOW - 30, "a", "encode", 1.0, False, "u"),
    AnalysisEvent(NOW - 20, "a", "encode", 0.01, True, "u"),
    AnalysisEvent(NOW - 90, "b", "generate", 3.0, False, "v"),
]


def test_hit_rate_and_percentiles() -> None:
    """Hit rate counts hits over all lookups; percentiles use computed runs only."""
    assert metrics_view.hit_rate(EVENTS) == 1 / 3
    assert metrics_view.hit_rate([]) is None
    assert metrics_view.latency_percentiles(EVENTS)["p50"] == 2.0
    assert metrics_view.latency_percentiles([]) == {}


def test_charts_bucket_by_minute_and_model() -> None:
    """Requests per minute are stacked per model; the latency histogram splits hits."""
    figure = metrics_view.requests_over_time(EVENTS, now=NOW, minutes=5)
    assert {trace.name for trace in figure.data} == {"a", "b"}
    assert sum(sum(trace.y) for trace in figure.data) == 3
    assert {t.name for t in metrics_view.latency_histogram(EVENTS).data} == {"computed", "cache hit"}


def test_failures_table_newest_first() -> None:
    rows = metrics_view.failures_table([LoadFailure("a", "old", NOW - 10), LoadFailure("b", "new", NOW)])
    assert [r["reason"] for r in rows] == ["new", "old"]


def test_snapshot_and_readiness(tmp_path) -> None:
    """The snapshot reads real numbers; readiness reports a dead Redis and a live SQLite."""
    snap = system.snapshot(ModelPool(lambda spec: None, budget_bytes=2**30), 2**30)
    assert snap.ram_total_mb > 0 and snap.process_rss_mb > 0 and snap.models == []
    assert system.cache_readiness(MemoryCache(ttl_seconds=1, max_bytes=1)).ready
    dead = system.cache_readiness(RedisCache("redis://127.0.0.1:1/0", ttl_seconds=1, timeout_seconds=0.2))
    assert not dead.ready and "unreachable" in dead.detail
    assert system.database_readiness(f"sqlite:///{tmp_path / 'x.db'}").ready
    assert not system.database_readiness("postgresql+psycopg://nobody@127.0.0.1:1/none").ready


def test_json_logs_carry_context() -> None:
    """Each log line is one JSON object with the request's user and id."""
    stream = io.StringIO()
    logger = logging.getLogger("core.test_json_logs")
    logger.addHandler(build_handler("json", stream))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with log_context(user="alice", request_id="r1"):
        logger.info("analysis", extra={"seconds": 0.5})
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["message"] == "analysis" and record["user"] == "alice" and record["request_id"] == "r1"
    assert record["seconds"] == 0.5 and record["level"] == "INFO"
    configure_logging("json")
    handlers = list(logging.getLogger("core").handlers)
    configure_logging("json")  # idempotent across Streamlit reruns: no second handler
    assert logging.getLogger("core").handlers == handlers
