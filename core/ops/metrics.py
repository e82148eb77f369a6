"""Prometheus metrics, registered once per process on the default registry."""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram, start_http_server

MODEL_LOAD_SECONDS = Histogram(
    "model_load_seconds",
    "Time to load a model into memory",
    ["model"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 40, 80, 160),
)
MODEL_LOAD_FAILURES = Counter("model_load_failures_total", "Model loads that failed", ["model"])
GENERATION_TIME = Histogram(
    "viz_generation_time_seconds",
    "Time to compute one analysis (forward or generation plus post-processing)",
    ["model", "mode"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60, 120),
)
ANALYSES = Counter("analyses_total", "Analyses computed", ["model", "mode"])
CACHE_HITS = Counter("cache_hits_total", "Result cache hits", ["backend"])
CACHE_MISSES = Counter("cache_misses_total", "Result cache misses", ["backend"])
CACHE_ERRORS = Counter(
    "cache_errors_total", "Failed calls to the cache or rate-limit storage", ["backend", "operation"]
)
CACHE_HIT_RATIO = Gauge("cache_hit_ratio", "Result cache hits / lookups since start")
ACTIVE_USERS = Gauge("active_users", "Sessions seen in the last 5 minutes")
RATE_LIMITED = Counter("rate_limited_requests_total", "Analyses refused by a rate limit", ["role"])
REQUEST_LOG_FAILURES = Counter(
    "request_log_failures_total",
    "Request log entries dropped (database unavailable, or the write queue full)",
    ["reason"],
)


def record_cache_lookup(backend: str, hit: bool) -> None:
    (CACHE_HITS if hit else CACHE_MISSES).labels(backend=backend).inc()
    hits = sum(s.value for m in CACHE_HITS.collect() for s in m.samples if s.name.endswith("_total"))
    misses = sum(s.value for m in CACHE_MISSES.collect() for s in m.samples if s.name.endswith("_total"))
    CACHE_HIT_RATIO.set(hits / (hits + misses) if hits + misses else 0.0)


_server_lock = threading.Lock()
_server_port: int | None = None


def start_http_server_once(port: int) -> int | None:
    """Serve /metrics on `port` once per process (reruns and sessions share it).

    Returns the port, or None if it is taken (another replica on this host has it).
    """
    global _server_port
    with _server_lock:
        if _server_port is None and port:
            try:
                start_http_server(port)
            except OSError:
                return None
            _server_port = port
        return _server_port
