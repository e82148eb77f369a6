"""Prometheus metrics, registered once per process on the default registry."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
