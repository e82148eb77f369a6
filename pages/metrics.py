"""Metrics: latency, requests, cache hit rate, active users, failures, live system load."""

from __future__ import annotations

import time

import streamlit as st

from core.ops.telemetry import TELEMETRY
from core.service import metrics_view, system
from ui.model_analytics_view import render_model_analytics
from ui.resources import get_service
from ui.session import current_viewer, mark_active


@st.fragment(run_every=3)
def _live_system() -> None:
    service = get_service()
    snap = system.snapshot(service.pool, service.settings.model_memory_budget_mb * 2**20)
    columns = st.columns(4)
    columns[0].metric("CPU", f"{snap.cpu_percent:.0f} %")
    columns[1].metric("RAM", f"{snap.ram_used_mb / 1024:.1f} / {snap.ram_total_mb / 1024:.1f} GB")
    columns[2].metric("This process", f"{snap.process_rss_mb / 1024:.2f} GB")
    columns[3].metric("Active users (5 min)", TELEMETRY.seen_count())
    for gpu in snap.gpus:
        utilization = "n/a" if gpu.utilization_percent is None else f"{gpu.utilization_percent:.0f} %"
        st.metric(
            gpu.name, f"{gpu.memory_used_mb / 1024:.1f} / {gpu.memory_total_mb / 1024:.1f} GB", utilization
        )
    if not snap.gpus:
        st.caption("No CUDA device: models run on the CPU.")
    used = sum(m.memory_mb for m in snap.models)
    st.caption(f"Loaded models: {used:,.0f} MB of the {snap.model_budget_mb:,.0f} MB budget")
    st.dataframe([m.__dict__ for m in snap.models], hide_index=True, key="metrics.models")
    checks = [system.database_readiness(), system.cache_readiness(service.cache)]
    for check in checks:
        (st.success if check.ready else st.warning)(
            f"{check.name}: {'ready' if check.ready else 'not ready'} ({check.detail})"
        )
    st.caption(f"Updated {time.strftime('%H:%M:%S')}; refreshes every 3 s.")


def main() -> None:
    st.title("Metrics")
    if current_viewer().user_id is None:
        st.info("Sign in (sidebar) to see the service's metrics.")
        return
    mark_active()
    service_tab, models_tab = st.tabs(["Service", "Models"])
    with models_tab:
        render_model_analytics(current_viewer())
    with service_tab:
        _service_overview()


def _service_overview() -> None:
    service = get_service()
    events = TELEMETRY.events(since=time.time() - 3600)
    rate = metrics_view.hit_rate(events)
    percentiles = metrics_view.latency_percentiles(events)
    columns = st.columns(4)
    columns[0].metric("Analyses (1 h)", len(events))
    columns[1].metric("Cache hit rate", "–" if rate is None else f"{rate:.0%}")
    # Same definition as the Models tab: model runs only, cache hits excluded.
    runs_only = "Over model runs: cache hits are excluded (as on the Models tab)."
    columns[2].metric("p50 latency", f"{percentiles['p50']:.2f} s" if percentiles else "–", help=runs_only)
    columns[3].metric("p95 latency", f"{percentiles['p95']:.2f} s" if percentiles else "–", help=runs_only)
    if service.cache is not None and service.cache.last_error:
        st.warning(
            f"The result cache had trouble ({service.cache.last_error}); requests were computed instead."
        )
    left, right = st.columns(2)
    left.plotly_chart(metrics_view.latency_histogram(events), key="metrics.latency")
    right.plotly_chart(metrics_view.requests_over_time(events), key="metrics.requests")
    st.subheader("Model load failures")
    failures = metrics_view.failures_table(service.pool.failures)
    if failures:
        st.dataframe(failures, hide_index=True, key="metrics.failures")
    else:
        st.caption("None since this process started.")
    st.subheader("System")
    _live_system()


main()
