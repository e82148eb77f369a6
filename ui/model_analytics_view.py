"""The per-model analytics view (the Metrics screen's "Models" tab).

Reads the persisted request log (`core.service.analytics_screen`), so its numbers survive restarts and
cover every replica writing to the database. Other screens can open it on one model by
setting ``st.session_state[MODEL_KEY]`` to a model id before switching to the Metrics page.

The database aggregates (counts, sums, percentiles, length bins); what it returns is
cached by `ui.resources` for a short while, keyed by the database URL and the window, so
reruns (every widget click) do not query again. "Refresh" drops the cache.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core.access import permissions
from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.ops import drift
from core.service.wiring import database_url
from core.store import model_analytics
from ui import analytics_plots as figures
from ui import resources
from ui.text import markdown_text

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
            # NaN, not None, so an empty cell shows blank rather than "None".
            "cache hit p50 (s)": float("nan") if s.hit_p50_s is None else s.hit_p50_s,
            "tokens": s.tokens,
        }
        for model_id, s in summaries.items()
    ]


_LATENCY_HELP = (
    "Over model runs: served requests that were not cache hits (the Service tab counts the same "
    "way). Cache hits are shown on their own."
)


def _headline(summary: model_analytics.Summary) -> None:
    columns = st.columns(6)
    columns[0].metric("Requests", f"{summary.requests:,}")
    columns[1].metric("p50 latency", _seconds(summary.p50_s), help=_LATENCY_HELP)
    columns[2].metric("p95 latency", _seconds(summary.p95_s), help=_LATENCY_HELP)
    columns[3].metric("Cache hit rate", _share(summary.cache_hit_rate))
    columns[4].metric("Tokens processed", f"{summary.tokens:,}")
    errors = f"{summary.errors:,}"
    if summary.errors and summary.error_rate is not None:
        errors += f" ({summary.error_rate:.0%})"
    columns[5].metric("Errors", errors)
    note = "p50/p95 are over model runs (cache hits excluded)"
    if summary.hit_p50_s is not None:
        note += f"; cache hits take {_seconds(summary.hit_p50_s)} at the median"
    st.caption(note + ".")
    if summary.error_kinds:
        kinds = ", ".join(f"{markdown_text(k)} {n:,}" for k, n in summary.error_kinds.items())
        st.caption("Errors by kind: " + kinds)


def _drift_section(model_id: str, key: str) -> drift.DriftReport | None:
    left, right = st.columns(2)
    recent = left.selectbox("Recent window", list(DRIFT_RECENT), key=f"{key}.drift_recent")
    baseline = right.selectbox("Baseline window", list(DRIFT_BASELINE), key=f"{key}.drift_baseline")
    try:
        result = resources.analytics_drift(
            database_url(), model_id, DRIFT_RECENT[recent], DRIFT_BASELINE[baseline]
        )
    except HeadlightError as exc:
        st.error(str(exc))
        return None
    report = result.report
    if not report.enough_data:
        st.info(report.summary)
    elif report.flagged:
        st.error(f"⚠ Input drift: {report.summary}")
    else:
        st.success(report.summary)
    if result.profiles_capped:
        st.caption(
            f"Token profiles: the newest {model_analytics.MAX_PROFILE_ROWS:,} requests of each window were "
            "compared (a window held more); lengths cover every request."
        )
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
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    window_name = left.selectbox("Window", list(WINDOWS), index=1, key=f"{key}.window")
    if right.button(
        "Refresh", key=f"{key}.refresh", help=f"Figures are kept for {resources.ANALYTICS_CACHE_SECONDS} s."
    ):
        resources.clear_analytics_cache()
    database = database_url()
    try:
        since, until, summaries = resources.analytics_overview(database, WINDOWS[window_name])
    except HeadlightError as exc:
        st.error(str(exc))
        return
    if not summaries:
        st.info(f"No requests logged in the {window_name}. Run a model on Generate or Compare.")
        return
    st.dataframe(
        _overview_rows(summaries),
        hide_index=True,
        key=f"{key}.overview",
        column_config={
            "cache hit rate": st.column_config.NumberColumn(format="percent"),
            "p50 (s)": st.column_config.NumberColumn(format="%.2f", help=_LATENCY_HELP),
            "p95 (s)": st.column_config.NumberColumn(format="%.2f", help=_LATENCY_HELP),
            "cache hit p50 (s)": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    models = list(summaries)
    wanted = st.session_state.get(MODEL_KEY)
    if wanted not in models:
        st.session_state[MODEL_KEY] = models[0]
    model_id = st.selectbox("Model", models, key=MODEL_KEY)
    _headline(summaries[model_id])
    try:
        series = resources.analytics_series(database, model_id, since, until)
    except HeadlightError as exc:
        st.error(str(exc))
        return
    left, right = st.columns(2)
    left.plotly_chart(figures.requests_figure(series), key=f"{key}.requests")
    right.plotly_chart(figures.latency_figure(series), key=f"{key}.latency")
    st.plotly_chart(figures.tokens_figure(series), key=f"{key}.tokens")

    st.subheader("Input drift")
    _drift_section(model_id, key)

    if permissions.can_view_request_users(viewer):
        st.subheader("Requests per user")
        breakdown = resources.analytics_users(database, viewer, model_id, since, until)
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
