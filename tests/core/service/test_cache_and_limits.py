"""Result cache, rate limits, telemetry and metrics through the real service path.

Uses the tiny config-built model behind a real `AnalysisService`, and a real `redis-server`
started by the test (killed mid-run to prove requests keep working).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.attention.codec import analysis_from_bytes, analysis_to_bytes
from core.domain.analysis import AnalysisMode, AnalysisRequest, GenerationParams
from core.domain.identity import Actor
from core.domain.settings import Settings
from core.models.pool import ModelPool
from core.models.registry import Registry
from core.ops.telemetry import Telemetry
from core.service.analysis_service import AnalysisService
from core.service.cache import MemoryCache, RedisCache
from core.service.rate_limit import RateLimitedError, RateLimiter
from tests.fixtures import services
from tests.fixtures.tiny import tiny_counter, tiny_model

TINY = tiny_model("causal", n_layers=2, n_heads=4)
LIMITS = {"analyst": "5/minute", "anonymous": "2/minute"}


def _service(settings: Settings, cache=None, limiter=None) -> AnalysisService:
    pool = ModelPool(lambda spec: TINY, budget_bytes=1 << 30)
    registry = Registry([TINY.spec])
    return AnalysisService(
        settings,
        registry,
        pool=pool,
        cache=cache,
        limiter=limiter,
        telemetry=Telemetry(),
        tokenizers=tiny_counter,
    )


def _request(text: str = "cache me if you can", **params) -> AnalysisRequest:
    return AnalysisRequest(
        model_id=TINY.spec.id,
        text=text,
        mode=AnalysisMode.GENERATE,
        generation=GenerationParams(max_new_tokens=4, **params),
    )


def _same(a, b) -> None:
    assert a.token_ids == b.token_ids and a.text == b.text and a.offsets == b.offsets
    np.testing.assert_array_equal(a.attention, b.attention)
    np.testing.assert_array_equal(a.compact.topk_index, b.compact.topk_index)
    for name in a.stats:
        np.testing.assert_array_equal(a.stats[name], b.stats[name])
    assert a.next_tokens == b.next_tokens


def test_serialisation_round_trip(settings: Settings) -> None:
    """Bytes -> Analysis is exact, with or without the full map; foreign bytes refused."""
    analysis = _service(settings).run(_request())
    _same(analysis, analysis_from_bytes(analysis_to_bytes(analysis)))
    light = analysis_from_bytes(analysis_to_bytes(analysis, include_full=False))
    assert light.attention is None and light.seq_len == analysis.seq_len
    for bad in [b"", b"nonsense" * 10, analysis_to_bytes(analysis)[:-5]]:
        with pytest.raises(ValueError):
            analysis_from_bytes(bad)


def test_memory_cache_hit_is_identical_and_skips_the_model(settings: Settings) -> None:
    """The second identical request is a hit with the same result; any change misses."""
    service = _service(settings, cache=MemoryCache(ttl_seconds=60, max_bytes=1 << 26))
    first = service.run(_request())
    service.flush()
    calls = []
    service.pool._loader = lambda spec: calls.append(spec) or TINY  # would count a reload
    service.pool.unload(TINY.spec)  # a hit must not need the model at all
    second = service.run(_request())
    assert second.cache_hit and not first.cache_hit and calls == []
    _same(first, second)
    for changed in [_request("other text"), _request(seed=3, do_sample=True), _request(top_p=0.5)]:
        assert not service.run(changed).cache_hit


def test_memory_cache_ttl_and_byte_bound() -> None:
    """Entries expire after the TTL (by the cache's clock, faked here); the oldest go first
    when bytes run out."""
    now = [100.0]
    cache = MemoryCache(ttl_seconds=1, max_bytes=10, clock=lambda: now[0])
    cache.set("a", b"12345")
    cache.set("b", b"12345")
    cache.set("c", b"123")
    assert cache.get("a") is None and cache.get("b") == b"12345"
    cache.set("huge", b"x" * 11)
    assert cache.get("huge") is None
    now[0] += 1.0
    assert cache.get("b") == b"12345"  # expires after the TTL, not at it
    now[0] += 0.01
    assert cache.get("b") is None and cache.get("c") is None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A private redis-server (the test kills it); without one the test skips, or fails in CI."""
    with services.redis_server(tmp_path) as server:
        yield server


def _metric(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_redis_cache_survives_redis_dying_mid_run(settings: Settings, redis_server) -> None:
    """Hits come from Redis; after the server is killed requests still succeed as misses."""
    url, process = redis_server
    cache = RedisCache(url, ttl_seconds=60)
    limiter = RateLimiter({"analyst": "100/minute", "anonymous": "100/minute"}, url)
    service = _service(settings, cache=cache, limiter=limiter)
    actor = Actor("alice", "analyst")
    first = service.run(_request(), actor=actor)
    service.flush()
    second = service.run(_request(), actor=actor)
    assert second.cache_hit
    _same(first, second)

    process.kill()
    process.wait()
    errors_before = _metric("cache_errors_total", {"backend": "redis", "operation": "get"})
    third = service.run(_request(), actor=actor)  # Redis is gone: a miss, computed again
    assert not third.cache_hit
    _same(first, third)
    service.flush()
    assert _metric("cache_errors_total", {"backend": "redis", "operation": "get"}) > errors_before
    assert cache.last_error and not cache.ping()
    assert service.rate_status(actor).remaining >= 0  # limits fell back to memory


def test_rate_limits_per_user_and_anonymous(settings: Settings) -> None:
    """5/minute per signed-in user and 2/minute anonymous; users do not share a quota."""
    service = _service(settings, limiter=RateLimiter(LIMITS))
    alice, bob, anon = Actor("alice", "analyst"), Actor("bob", "analyst"), Actor("anon-1")
    for _ in range(5):
        service.run(_request(), actor=alice)
    before = _metric("rate_limited_requests_total", {"role": "analyst"})
    with pytest.raises(RateLimitedError, match=r"all 5 analyses allowed per minute.*nothing was run"):
        service.run(_request(), actor=alice)
    assert _metric("rate_limited_requests_total", {"role": "analyst"}) == before + 1
    status = service.rate_status(alice)
    assert status.remaining == 0 and 0 < status.reset_in_seconds <= 60
    service.run(_request(), actor=bob)
    service.run(_request(), actor=anon)
    service.run(_request(), actor=anon)
    with pytest.raises(RateLimitedError, match="all 2 analyses"):
        service.run(_request(), actor=anon)


def test_rate_limit_window_resets() -> None:
    """After the window passes, requests are allowed again."""
    limiter = RateLimiter({"anonymous": "1/second"})
    limiter.acquire("x", "anonymous")
    with pytest.raises(RateLimitedError):
        limiter.acquire("x", "anonymous")
    time.sleep(1.1)
    assert limiter.acquire("x", "anonymous").allowed


def test_limits_need_an_anonymous_role() -> None:
    """A configuration without the anonymous limit is refused at start."""
    with pytest.raises(ValueError, match="anonymous"):
        RateLimiter({"analyst": "5/minute"})


def test_metrics_endpoint_parses_and_counts(settings: Settings) -> None:
    """The exposition parses with prometheus_client's parser and includes our metrics."""
    service = _service(settings, cache=MemoryCache(ttl_seconds=60, max_bytes=1 << 26))
    service.run(_request("metrics please"))
    service.flush()
    service.run(_request("metrics please"))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())}
    for name in [
        "viz_generation_time_seconds",
        "cache_hits",
        "cache_misses",
        "cache_hit_ratio",
        "active_users",
        "model_load_failures",
        "model_load_seconds",
        "rate_limited_requests",
        "analyses",
    ]:
        assert name in families, name
    assert 0.0 < families["cache_hit_ratio"].samples[0].value <= 1.0
    events = service.telemetry.events()
    assert [e.cache_hit for e in events] == [False, True]


def test_active_users_window() -> None:
    """Sessions count as active for five minutes after they were last seen."""
    telemetry = Telemetry()
    assert telemetry.seen("a", now=1000.0) == 1
    assert telemetry.seen("b", now=1100.0) == 2
    assert telemetry.seen("b", now=1400.0) == 1  # a was last seen 400 s ago
    assert _metric("active_users", {}) == 1
