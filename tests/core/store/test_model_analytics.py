"""Drift on crafted windows and the request-log writer (no Streamlit, no database; the
SQL aggregates behind the analytics are tested in tests/core/store/test_presets_and_request_log.py)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from core.domain.analysis import AnalysisMode, AnalysisRequest
from core.domain.errors import ModelLoadError
from core.domain.identity import ANONYMOUS_ACTOR
from core.domain.settings import Settings
from core.models.registry import Registry
from core.ops import drift
from core.service.analysis_service import AnalysisService
from core.service.rate_limit import RateDecision, RateLimitedError
from core.store.request_log import (
    RequestEntry,
    RequestLog,
    RequestTarget,
    entry_for,
    error_kind,
    user_id_from_key,
)


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


@pytest.mark.parametrize("recent_size", [20, 50])
def test_unequal_windows_of_one_distribution_are_not_flagged(recent_size: int) -> None:
    """2000 baseline requests against 20 or 50 recent ones of the same source: bins empty in
    both windows once scored PSI 0.89 (per-window smoothing gave them different shares)."""
    rng = np.random.default_rng(7)
    vocabulary = np.arange(1000, 3000)
    baseline = _profiles(rng, vocabulary, 2000, 100)
    report = drift.compare_windows(baseline, _profiles(rng, vocabulary, recent_size, 100))
    assert report.enough_data
    assert report.length.score < 0.1 and report.tokens.score < drift.JS_THRESHOLD
    assert not report.length.flagged and not report.tokens.flagged and not report.flagged
    shifted = drift.compare_windows(baseline, _profiles(rng, np.arange(20_000, 22_000), recent_size, 1500))
    assert shifted.length.flagged and shifted.tokens.flagged


def test_bins_empty_in_both_windows_do_not_count() -> None:
    narrow = np.array([0, 2000, 0, 0, 0])
    assert drift.psi(narrow, np.array([0, 20, 0, 0, 0])) == 0.0  # one bin in use: no evidence
    assert drift.psi(np.array([1000, 1000, 0, 0]), np.array([10, 10, 0, 0])) == pytest.approx(0.0, abs=1e-12)
    # Padding with bins neither window uses changes nothing.
    two = (np.array([900, 1100]), np.array([14, 6]))
    padded = (np.array([900, 1100, 0, 0, 0, 0]), np.array([14, 6, 0, 0, 0, 0]))
    assert drift.psi(*two) == pytest.approx(drift.psi(*padded))
    assert drift.js_divergence(*two) == pytest.approx(drift.js_divergence(*padded))


def test_empty_bins_are_smoothed() -> None:
    assert np.isfinite(drift.psi(np.array([10, 0, 0]), np.array([0, 0, 10])))
    assert 0.0 < drift.js_divergence(np.array([10, 0]), np.array([0, 10])) <= 1.0
    assert drift.chi2_quantile_99(10) == pytest.approx(23.21, rel=0.01)


def test_token_profile_keeps_counts_not_text() -> None:
    profile = drift.token_profile([5, 5, 7, 123456])
    assert profile["buckets"] == drift.PROFILE_BUCKETS
    assert sum(profile["pairs"][1::2]) == 4
    old_form = {"buckets": drift.PROFILE_BUCKETS, "counts": {"3": 2}}
    counts = drift.profile_counts([profile, None, {"buckets": 3, "counts": {"0": 9}}, old_form])
    assert counts.sum() == 6 and counts[3] >= 2


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


class _FakeSession:
    """Stands in for a SQLAlchemy session: records the rows each database receives."""

    def __init__(self, database: list[dict[str, Any]], gate: threading.Event | None = None) -> None:
        self.database, self.gate = database, gate

    def __enter__(self) -> _FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin(self) -> _FakeSession:
        if self.gate is not None:
            self.gate.wait(5)
        return self

    def execute(self, statement: object, rows: list[dict[str, Any]]) -> None:
        self.database.extend(rows)


def _entry(model_id: str = "m") -> RequestEntry:
    return RequestEntry(model_id=model_id, mode="encode", latency_s=0.1)


def test_request_log_writes_where_the_entry_was_recorded() -> None:
    """The database is chosen at record time: an entry recorded while A is configured lands in
    A even when the writer reaches it after the configuration moved to B."""
    first, second = [], []
    entered, release = threading.Event(), threading.Event()

    def factory_a() -> _FakeSession:
        entered.set()
        return _FakeSession(first, gate=release)

    current = {"factory": factory_a}
    log = RequestLog(resolve_factory=lambda: current["factory"])
    log.record(_entry("one"))
    assert entered.wait(5)  # the writer holds entry one and waits inside database A
    log.record(_entry("two"))
    current["factory"] = lambda: _FakeSession(second)
    log.record(_entry("three"))
    release.set()
    assert log.flush(5)
    assert [row["model_id"] for row in first] == ["one", "two"]
    assert [row["model_id"] for row in second] == ["three"]
    assert log.close()


def test_request_log_close_drains_the_queue() -> None:
    written: list[dict[str, Any]] = []
    release = threading.Event()
    log = RequestLog(lambda: _FakeSession(written, gate=release))  # type: ignore[arg-type,return-value]
    for i in range(5):
        log.record(_entry(f"m{i}"))
    threading.Timer(0.2, release.set).start()
    assert log.close(timeout=5)
    assert sorted(row["model_id"] for row in written) == [f"m{i}" for i in range(5)]
    log.record(_entry("after"))  # a later entry starts a new writer
    assert log.flush(5) and written[-1]["model_id"] == "after"
    assert log.close()


def test_request_log_queue_is_bounded_by_bytes() -> None:
    release = threading.Event()
    written: list[dict[str, Any]] = []
    log = RequestLog(
        lambda: _FakeSession(written, gate=release),  # type: ignore[arg-type,return-value]
        max_queue_bytes=20_000,
    )
    profile = drift.token_profile(list(range(1000)))  # about 250 buckets: ~16 kB estimated
    big = RequestEntry(model_id="m", mode="encode", latency_s=0.1, token_profile=profile)
    log.record(big)
    log.record(big)  # over the byte budget while the first is queued: dropped, not queued
    assert log.dropped == 1
    release.set()
    assert log.flush(5) and len(written) == 1
    assert log.close()


def test_service_flush_waits_for_the_request_log(settings: Settings, registry: Registry) -> None:
    written: list[dict[str, Any]] = []
    release = threading.Event()
    log = RequestLog(lambda: _FakeSession(written, gate=release))  # type: ignore[arg-type,return-value]
    service = AnalysisService(settings, registry, request_log=log)
    service.record_refusal(
        RequestTarget("no-such-model", "encode", 2), error=ValueError("bad"), actor=ANONYMOUS_ACTOR
    )
    threading.Timer(0.3, release.set).start()
    service.flush()
    assert [row["model_id"] for row in written] == ["no-such-model"]
    assert log.close()
