"""The per-model analytics view (the Metrics screen's "Models" tab).

Reads the persisted request log (`db.request_log`), so its numbers survive restarts and
cover every replica writing to the database. Other screens can open it on one model by
setting ``st.session_state[MODEL_KEY]`` to a model id before switching to the Metrics page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import streamlit as st

from core import drift, library, model_analytics, permissions
from core import model_analytics_plots as figures
from core.errors import HeadlightError
from core.permissions import Viewer
from db import request_log

MODEL_KEY = "analytics.model"
WINDOWS = {
    "last hour": timedelta(hours=1),
    "last 24 hours": timedelta(days=1),
    "last 7 days": timedelta(days=7),
    "last 30 days": timedelta(days=30),
}
DRIFT_RECENT = {
    "last 24 hours": timedelta(days=1),
    "last hour": timedelta(hours=1),
    "last 7 days": timedelta(days=7),
}
DRIFT_BASELINE = {
    "7 days before": timedelta(days=7),
    "24 hours before": timedelta(days=1),
    "30 days before": timedelta(days=30),
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def markdown_text(text: str) -> str:
    """``text`` shown literally inside Streamlit Markdown (no links, emphasis or HTML)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _overview_rows(summaries: dict[str, model_analytics.Summary]) -> list[dict[str, object]]:
    return [
        {
            "model": model_id,
            "requests": s.requests,
            "errors": s.errors,
            "p50 (s)": s.p50_s,
            "p95 (s)": s.p95_s,
            "cache hit rate": s.cache_hit_rate,
            "tokens": s.tokens,
        }
        for model_id, s in summaries.items()
    ]


def _headline(summary: model_analytics.Summary) -> None:
    columns = st.columns(6)
    columns[0].metric("Requests", f"{summary.requests:,}")
    columns[1].metric("p50 latency", _seconds(summary.p50_s))
    columns[2].metric("p95 latency", _seconds(summary.p95_s))
    columns[3].metric("Cache hit rate", _share(summary.cache_hit_rate))
    columns[4].metric("Tokens processed", f"{summary.tokens:,}")
    columns[5].metric("Errors", f"{summary.errors:,}", _share(summary.error_rate), delta_color="off")
    if summary.error_kinds:
        st.caption("Errors by kind: " + ", ".join(f"{k} {n:,}" for k, n in summary.error_kinds.items()))


def _drift_section(model_id: str, key: str) -> drift.DriftReport | None:
    left, right = st.columns(2)
    recent = left.selectbox("Recent window", list(DRIFT_RECENT), key=f"{key}.drift_recent")
    baseline = right.selectbox("Baseline window", list(DRIFT_BASELINE), key=f"{key}.drift_baseline")
    windows = model_analytics.DriftWindows.ending_at(
        datetime.now(UTC), recent=DRIFT_RECENT[recent], baseline=DRIFT_BASELINE[baseline]
    )
    try:
        with library.unit_of_work() as session:
            rows = request_log.list_requests(
                session=session,
                since=windows.baseline_start,
                until=windows.end,
                model_id=model_id,
                with_profiles=True,
            )
    except HeadlightError as exc:
        st.error(str(exc))
        return None
    report = model_analytics.model_drift(rows, windows)
    if not report.enough_data:
        st.info(report.summary)
    elif report.flagged:
        st.error(f"⚠ Input drift: {report.summary}")
    else:
        st.success(report.summary)
    columns = st.columns(2)
    columns[0].metric(
        "Length PSI",
        f"{report.length.score:.3f}",
        "over threshold" if report.length.flagged else f"threshold {report.length.threshold:g}",
        delta_color="inverse" if report.length.flagged else "off",
    )
    columns[1].metric(
        "Token profile JS (bits)",
        f"{report.tokens.score:.3f}",
        "over threshold" if report.tokens.flagged else f"threshold {report.tokens.threshold:g}",
        delta_color="inverse" if report.tokens.flagged else "off",
    )
    st.caption(
        "A feature is flagged when its score crosses the threshold and the level chance alone reaches "
        f"at these window sizes (length {report.length.chance:.3f}, tokens {report.tokens.chance:.3f}); "
        f"each window needs at least {drift.MIN_REQUESTS} requests."
    )
    left, right = st.columns(2)
    left.plotly_chart(figures.length_histogram(report.length), key=f"{key}.drift_lengths")
    right.plotly_chart(figures.token_profile_figure(report.tokens), key=f"{key}.drift_tokens")
    return report


def render_model_analytics(viewer: Viewer, *, key: str = "analytics") -> None:
    """Per-model requests, latency, cache hits, tokens, errors over time, drift; users for admins."""
    if not permissions.can_view_model_analytics(viewer):
        st.info("Sign in (sidebar) to see per-model analytics.")
        return
    window_name = st.selectbox("Window", list(WINDOWS), index=1, key=f"{key}.window")
    until = datetime.now(UTC)
    since = until - WINDOWS[window_name]
    try:
        with library.unit_of_work() as session:
            rows = request_log.list_requests(session=session, since=since, until=until)
    except HeadlightError as exc:
        st.error(str(exc))
        return
    if len(rows) >= request_log.MAX_ROWS:
        st.caption(f"Showing the newest {request_log.MAX_ROWS:,} requests of this window.")
    summaries = model_analytics.per_model(rows)
    if not summaries:
        st.info(f"No requests logged in the {window_name}. Run a model on Generate or Compare.")
        return
    st.dataframe(
        _overview_rows(summaries),
        hide_index=True,
        key=f"{key}.overview",
        column_config={
            "cache hit rate": st.column_config.NumberColumn(format="percent"),
            "p50 (s)": st.column_config.NumberColumn(format="%.2f"),
            "p95 (s)": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    models = list(summaries)
    wanted = st.session_state.get(MODEL_KEY)
    if wanted not in models:
        st.session_state[MODEL_KEY] = models[0]
    model_id = st.selectbox("Model", models, key=MODEL_KEY)
    model_rows = [r for r in rows if r.model_id == model_id]
    _headline(summaries[model_id])
    series = model_analytics.time_series(model_rows, since=since, until=until)
    left, right = st.columns(2)
    left.plotly_chart(figures.requests_figure(series), key=f"{key}.requests")
    right.plotly_chart(figures.latency_figure(series), key=f"{key}.latency")
    st.plotly_chart(figures.tokens_figure(series), key=f"{key}.tokens")

    st.subheader("Input drift")
    _drift_section(model_id, key)

    if permissions.can_view_request_users(viewer):
        st.subheader("Requests per user")
        breakdown = model_analytics.per_user(viewer, model_rows)
        st.dataframe(
            [
                {
                    "user": b.user,
                    "requests": b.summary.requests,
                    "errors": b.summary.errors,
                    "p50 (s)": b.summary.p50_s,
                    "p95 (s)": b.summary.p95_s,
                    "cache hit rate": b.summary.cache_hit_rate,
                    "tokens": b.summary.tokens,
                }
                for b in breakdown
            ],
            hide_index=True,
            key=f"{key}.users",
        )
