"""The result cache: Redis when configured, an in-process LRU otherwise.

Values are `core.attention.codec` bytes (no pickle). A cache never fails a request: any Redis
error is logged, counted (`cache_errors_total`) and treated as a miss, and the cache keeps
the last error for the Metrics screen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis

from core.ops import metrics

log = logging.getLogger(__name__)


class ResultCache(Protocol):
    backend: str
    last_error: str | None

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes) -> None: ...

    def ping(self) -> bool: ...


class MemoryCache:
    """LRU bounded by total bytes, with a TTL per entry (by ``clock``, seconds). Thread safe."""

    backend = "memory"

    def __init__(
        self, *, ttl_seconds: int, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires < self._clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> None:
        if len(value) > self._max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (self._clock() + self._ttl, value)
            self._bytes += len(value)
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self._bytes -= len(value)

    def ping(self) -> bool:
        return True


class RedisCache:
    """Redis with short timeouts, so a dead server costs milliseconds, not a hung page."""

    backend = "redis"
    _PREFIX = "headlight:result:"

    def __init__(self, url: str, *, ttl_seconds: int, timeout_seconds: float = 0.5) -> None:
        self._ttl = ttl_seconds
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self.last_error: str | None = None

    def _failed(self, operation: str, exc: Exception) -> None:
        self.last_error = f"{time.strftime('%H:%M:%S')} {operation}: {exc}"
        metrics.CACHE_ERRORS.labels(backend=self.backend, operation=operation).inc()
        log.warning("cache %s failed", operation, extra={"error": str(exc)})

    def get(self, key: str) -> bytes | None:
        try:
            value = self._client.get(self._PREFIX + key)
        except redis.RedisError as exc:
            self._failed("get", exc)
            return None
        return value  # type: ignore[return-value]

    def set(self, key: str, value: bytes) -> None:
        try:
            self._client.set(self._PREFIX + key, value, ex=self._ttl)
        except redis.RedisError as exc:
            self._failed("set", exc)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError as exc:
            self.last_error = f"{time.strftime('%H:%M:%S')} ping: {exc}"
            return False


def make_cache(redis_url: str | None, *, ttl_seconds: int, memory_max_bytes: int) -> ResultCache:
    if redis_url:
        return RedisCache(redis_url, ttl_seconds=ttl_seconds)
    return MemoryCache(ttl_seconds=ttl_seconds, max_bytes=memory_max_bytes)
