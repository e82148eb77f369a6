"""Per-model analytics on a seeded history, and drift on crafted windows (no Streamlit, no DB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core import drift, model_analytics
from core.analysis import AnalysisMode, AnalysisRequest
from core.errors import ModelLoadError
from core.model_analytics import DriftWindows
from core.permissions import Viewer
from core.rate_limit import RateDecision, RateLimitedError
from core.request_log import RequestTarget, entry_for, error_kind, user_id_from_key
from db.models import Role
from db.request_log import RequestRow

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADMIN = Viewer(user_id=1, role=Role.ADMIN)
ANALYST = Viewer(user_id=2, role=Role.ANALYST)


def _row(i: int, **overrides: object) -> RequestRow:
    fields: dict[str, object] = {
        "at": T0 + timedelta(minutes=i),
        "model_id": "smollm2",
        "model_revision": "r1",
        "user_id": 2,
        "username": "bob",
        "mode": "generate",
        "latency_s": float(i + 1),
        "cache_hit": False,
        "tokens": 10,
        "input_chars": 40,
        "input_tokens": 8,
        "error_kind": None,
        "token_profile": None,
    }
    fields.update(overrides)
    return RequestRow(**fields)  # type: ignore[arg-type]


def _history() -> list[RequestRow]:
    """100 served requests with latencies 1..100 s (every 4th a cache hit), 10 errors, 1 other model."""
    rows = [
        _row(i, cache_hit=i % 4 == 0, user_id=1 if i < 30 else 2, username="ann" if i < 30 else "bob")
        for i in range(100)
    ]
    rows += [
        _row(100 + i, latency_s=0.01, tokens=0, error_kind="rate_limited", user_id=None, username=None)
        for i in range(10)
    ]
    rows.append(_row(5, model_id="minilm", latency_s=0.5))
    return rows


def test_summary_has_known_percentiles_hit_rate_tokens_and_errors() -> None:
    summaries = model_analytics.per_model(_history())
    assert list(summaries) == ["smollm2", "minilm"]
    s = summaries["smollm2"]
    assert (s.requests, s.served, s.errors) == (110, 100, 10)
    assert s.p50_s == pytest.approx(50.5)  # latencies 1..100, linear interpolation
    assert s.p95_s == pytest.approx(95.05)
    assert s.cache_hit_rate == pytest.approx(0.25)
    assert s.tokens == 1000
    assert s.error_kinds == {"rate_limited": 10}
    assert s.error_rate == pytest.approx(10 / 110)
    empty = model_analytics.summarise([])
    assert empty.p50_s is None and empty.cache_hit_rate is None and empty.error_rate is None


def test_time_series_buckets_requests_and_latency() -> None:
    rows = [r for r in _history() if r.model_id == "smollm2"]
    series = model_analytics.time_series(
        rows, since=T0, until=T0 + timedelta(hours=2), width=timedelta(hours=1)
    )
    assert series.starts == [T0, T0 + timedelta(hours=1)]
    assert series.requests == [60, 50]
    assert series.errors == [0, 10]
    assert sum(series.cache_hits) == 25 and sum(series.tokens) == 1000
    assert series.p50_s[0] == pytest.approx(30.5)  # minutes 0..59 -> latencies 1..60
    assert model_analytics.bucket_width(timedelta(hours=1)) == timedelta(minutes=1)
    assert model_analytics.bucket_width(timedelta(days=30)) == timedelta(hours=6)


def test_per_user_breakdown_is_for_admins_only() -> None:
    rows = [r for r in _history() if r.model_id == "smollm2"]
    breakdown = model_analytics.per_user(ADMIN, rows)
    assert [(b.user, b.summary.requests) for b in breakdown] == [
        ("bob", 70),
        ("ann", 30),
        (model_analytics.GUEST_LABEL, 10),
    ]
    with pytest.raises(model_analytics.AnalyticsPermissionError):
        model_analytics.per_user(ANALYST, rows)


def _profiles(
    rng: np.random.Generator, vocabulary: np.ndarray, n: int, length: int
) -> list[drift.WindowInputs]:
    """``n`` requests of 30 tokens drawn Zipf-like from ``vocabulary``, about ``length`` chars."""
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    return [
        drift.WindowInputs(
            int(length + rng.integers(-5, 5)),
            drift.token_profile(rng.choice(vocabulary, 30, p=weights).tolist()),
        )
        for _ in range(n)
    ]


def test_identical_windows_score_about_zero_and_are_not_flagged() -> None:
    rng = np.random.default_rng(1)
    vocabulary = np.arange(1000, 3000)
    same = _profiles(rng, vocabulary, 200, 100)
    report = drift.compare_windows(same, same)
    assert report.length.score == pytest.approx(0.0, abs=1e-12)
    assert report.tokens.score == pytest.approx(0.0, abs=1e-12)
    assert not report.flagged and report.enough_data
    resampled = drift.compare_windows(same, _profiles(rng, vocabulary, 200, 100))
    assert resampled.tokens.score < 0.05 and resampled.length.score < 0.1
    assert not resampled.flagged


def test_shifted_distributions_are_flagged() -> None:
    rng = np.random.default_rng(2)
    baseline = _profiles(rng, np.arange(1000, 3000), 200, 100)
    longer_other_tokens = _profiles(rng, np.arange(20_000, 22_000), 200, 1500)
    report = drift.compare_windows(baseline, longer_other_tokens)
    assert report.length.flagged and report.tokens.flagged and report.flagged
    assert report.length.score > drift.PSI_THRESHOLD and report.tokens.score > 0.3
    assert "Drift detected" in report.summary


def test_small_windows_are_never_flagged() -> None:
    rng = np.random.default_rng(3)
    report = drift.compare_windows(
        _profiles(rng, np.arange(10), 5, 10), _profiles(rng, np.arange(5000, 5010), 5, 5000)
    )
    assert not report.enough_data and not report.flagged and "Not enough" in report.summary


def test_empty_bins_are_smoothed() -> None:
    assert np.isfinite(drift.psi(np.array([10, 0, 0]), np.array([0, 0, 10])))
    assert 0.0 < drift.js_divergence(np.array([10, 0]), np.array([0, 10])) <= 1.0
    assert drift.chi2_quantile_99(10) == pytest.approx(23.21, rel=0.01)


def test_token_profile_keeps_counts_not_text() -> None:
    profile = drift.token_profile([5, 5, 7, 123456])
    assert profile["buckets"] == drift.PROFILE_BUCKETS
    assert sum(profile["counts"].values()) == 4
    assert drift.profile_counts([profile, None, {"buckets": 3, "counts": {"0": 9}}]).sum() == 4


def test_model_drift_splits_rows_into_windows() -> None:
    windows = DriftWindows.ending_at(
        T0 + timedelta(days=8), recent=timedelta(days=1), baseline=timedelta(days=7)
    )
    rows = [_row(60 * 24 * d, input_chars=50) for d in range(8)] + [_row(-1)]
    report = model_analytics.model_drift(rows, windows)
    assert (report.baseline_requests, report.recent_requests) == (7, 1)


def test_log_entries_for_served_and_failed_requests() -> None:
    request = AnalysisRequest(model_id="m", text="hello there", mode=AnalysisMode.ENCODE)
    target = RequestTarget(request.model_id, request.mode.value, len(request.text))
    failed = entry_for(
        target=target,
        revision="r",
        actor_key="user:7",
        request_id="x",
        latency_s=0.2,
        error=ModelLoadError("weights missing " * 100),
    )
    assert (
        failed.user_id == 7 and failed.error_kind == "model_load" and len(failed.error_message or "") == 500
    )
    assert failed.input_chars == 11 and failed.token_profile is None
    decision = RateDecision(allowed=False, limit=2, remaining=0, reset_at=0.0, window="minute")
    assert error_kind(RateLimitedError(decision)) == "rate_limited"
    assert error_kind(RuntimeError("boom")) == "internal"
    assert user_id_from_key("anonymous:1.2.3.4") is None and user_id_from_key("user:x") is None
