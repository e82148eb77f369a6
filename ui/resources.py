"""Every Streamlit-cached resource of the app lives here, and nowhere else.

Each wrapper is thin: the work happens in plain modules that tests call directly. Every
argument that changes the result is part of the cache key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import streamlit as st

from core.domain.identity import Viewer
from core.domain.settings import get_settings
from core.jobs.runner import Dispatcher, backend_for
from core.service import analytics_screen, wiring
from core.service.analysis_service import AnalysisService
from core.service.rate_limit import RateLimiter
from core.store import model_analytics
from core.store.sharing import SHARE_LIMIT_ROLE


@st.cache_resource(show_spinner=False)
def _service(
    registry_path: Path,
    device: str,
    budget_mb: int,
    redis_url: str | None,
    cache_ttl_seconds: int,
    rate_limits: tuple[tuple[str, str], ...],
) -> AnalysisService:
    return wiring.build_service(
        get_settings(),
        registry_path=registry_path,
        redis_url=redis_url,
        cache_ttl_seconds=cache_ttl_seconds,
        rate_limits=dict(rate_limits),
    )


def get_service() -> AnalysisService:
    """One service (registry, model pool, cache, limits) per process, shared by all sessions."""
    s = get_settings()
    return _service(
        s.registry_path,
        s.device,
        s.model_memory_budget_mb,
        s.redis_url,
        s.cache_ttl_seconds,
        tuple(sorted(s.rate_limits.items())),
    )


@st.cache_resource(show_spinner=False)
def _share_limiter(limit: str, redis_url: str | None) -> RateLimiter:
    return RateLimiter({SHARE_LIMIT_ROLE: limit}, redis_url)


def get_share_limiter() -> RateLimiter:
    """Failed share-link lookups per client, one limiter per process (Redis when configured)."""
    s = get_settings()
    return _share_limiter(s.share_link_limit, s.redis_url)


@st.cache_data(show_spinner="Building the neuron view…", max_entries=32)
def neuron_view_html(model_id: str, revision: str, text: str, layer: int, head: int) -> str:
    """bertviz's neuron view runs its own copy of a BERT model; cache its HTML per input."""
    from core.models.registry import availability
    from ui import bertviz_html

    spec = get_service().registry.get(model_id)
    location = availability(spec).location
    if location is None:
        raise ValueError(f"{spec.label} has no local weights for the neuron view.")
    return bertviz_html.neuron_view_html(str(location), text, layer=layer, head=head)


@st.cache_resource(show_spinner="Recomputing this layer's attention…", max_entries=4)
def _layer_attention(
    model_id: str, revision: str, device: str, token_ids: tuple[int, ...], layer: int
) -> np.ndarray:
    weights = get_service().layer_attention(model_id, revision, list(token_ids), layer)
    # float16 halves what the cache holds (75 MB for 9 heads at 2,048 tokens); the view
    # quantises to uint8 anyway. Shared across sessions, so read-only.
    half = weights.astype(np.float16)
    half.flags.writeable = False
    return half


def layer_attention(model_id: str, revision: str, token_ids: Sequence[int], layer: int) -> np.ndarray:
    """One layer of an analysis recomputed, ``[n_heads, seq_len, seq_len]`` float16, cached.

    Selecting several heads of one layer runs the model once. Raises `HeadlightError` when the
    model cannot be used here (see `AnalysisService.layer_attention`).
    """
    return _layer_attention(model_id, revision, get_settings().device, tuple(token_ids), layer)


@st.cache_resource(show_spinner=False)
def _dispatcher(backend: str, database_url: str, redis_url: str | None) -> Dispatcher:
    return wiring.build_dispatcher(backend, database_url, get_service(), get_settings())


def get_dispatcher() -> Dispatcher:
    """Where launched jobs go: Celery workers when Redis is configured (see `backend_for`),
    else this process's embedded runner, started once per process and database."""
    s = get_settings()
    return _dispatcher(backend_for(s), wiring.database_url(), s.redis_url)


# Per-model analytics (the Metrics screen's "Models" tab): long enough that clicking around a
# screen does not query again, short enough to feel live. ``database`` keys each cache.
ANALYTICS_CACHE_SECONDS = 45


@st.cache_data(ttl=ANALYTICS_CACHE_SECONDS, show_spinner=False, max_entries=32)
def analytics_overview(
    database: str, window: timedelta
) -> tuple[datetime, datetime, dict[str, model_analytics.Summary]]:
    """The window ending now: its bounds and the per-model totals."""
    until = datetime.now(UTC)
    since = until - window
    return since, until, analytics_screen.overview(since=since, until=until)


@st.cache_data(ttl=ANALYTICS_CACHE_SECONDS, show_spinner=False, max_entries=32)
def analytics_series(
    database: str, model_id: str, since: datetime, until: datetime
) -> model_analytics.Series:
    return analytics_screen.series(model_id=model_id, since=since, until=until)


@st.cache_data(ttl=ANALYTICS_CACHE_SECONDS, show_spinner=False, max_entries=32)
def analytics_users(
    database: str, viewer: Viewer, model_id: str, since: datetime, until: datetime
) -> list[model_analytics.UserBreakdown]:
    return analytics_screen.users(viewer=viewer, model_id=model_id, since=since, until=until)


@st.cache_data(ttl=ANALYTICS_CACHE_SECONDS, show_spinner="Comparing input windows…", max_entries=32)
def analytics_drift(
    database: str, model_id: str, recent: timedelta, baseline: timedelta
) -> model_analytics.ModelDrift:
    windows = model_analytics.DriftWindows.ending_at(datetime.now(UTC), recent=recent, baseline=baseline)
    return analytics_screen.drift(model_id=model_id, windows=windows)


def clear_analytics_cache() -> None:
    """Forget cached analytics (the Refresh button)."""
    for cached in (analytics_overview, analytics_series, analytics_users, analytics_drift):
        cached.clear()
