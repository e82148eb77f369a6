"""The per-model analytics view's reads (the Metrics screen's "Models" tab), one transaction
each, over `core.store.model_analytics`."""

from __future__ import annotations

from datetime import datetime

from core.domain.identity import Viewer
from core.store import model_analytics
from core.store.model_analytics import DriftWindows, ModelDrift, Series, Summary, UserBreakdown
from core.store.transaction import unit_of_work


def overview(*, since: datetime, until: datetime) -> dict[str, Summary]:
    """Per-model totals over ``[since, until)``."""
    with unit_of_work() as session:
        return model_analytics.per_model(session=session, since=since, until=until)


def series(*, model_id: str, since: datetime, until: datetime) -> Series:
    with unit_of_work() as session:
        return model_analytics.time_series(session=session, model_id=model_id, since=since, until=until)


def users(*, viewer: Viewer, model_id: str, since: datetime, until: datetime) -> list[UserBreakdown]:
    """Requests per user (admins only)."""
    with unit_of_work() as session:
        return model_analytics.per_user(viewer, session=session, model_id=model_id, since=since, until=until)


def drift(*, model_id: str, windows: DriftWindows) -> ModelDrift:
    with unit_of_work() as session:
        return model_analytics.model_drift(session=session, model_id=model_id, windows=windows)
