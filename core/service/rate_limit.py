"""Per-user rate limits with the `limits` library (Redis storage when configured).

If the Redis storage fails, limits fall back to this process's memory storage: limits
stay enforced (per replica) instead of either blocking everyone or nobody.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis
from limits import RateLimitItem, parse, storage, strategies

from core.domain.errors import HeadlightError
from core.domain.identity import ANONYMOUS_KEY as ANONYMOUS
from core.ops import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix time when the oldest counted request leaves the window
    window: str  # "minute", "10 minutes", ...

    @property
    def reset_in_seconds(self) -> int:
        return max(0, round(self.reset_at - time.time()))


class RateLimitedError(HeadlightError):
    def __init__(self, decision: RateDecision) -> None:
        super().__init__(
            f"You have used all {decision.limit} analyses allowed per {decision.window}. "
            f"Try again in {decision.reset_in_seconds} s; nothing was run or saved."
        )
        self.decision = decision


def _window(item: RateLimitItem) -> str:
    name = item.GRANULARITY.name
    return f"{item.multiples} {name}s" if item.multiples > 1 else name


class RateLimiter:
    """`limits` per role, e.g. ``{"analyst": "5/minute", "anonymous": "2/minute"}``."""

    def __init__(self, limits_by_role: dict[str, str], storage_url: str | None = None) -> None:
        self._items: dict[str, RateLimitItem] = {role: parse(text) for role, text in limits_by_role.items()}
        if ANONYMOUS not in self._items:
            raise ValueError("rate limits must define the 'anonymous' role")
        self._memory = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._limiter = (
            strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_url))
            if storage_url
            else self._memory
        )
        self.backend = "redis" if storage_url else "memory"

    def _item(self, role: str) -> RateLimitItem:
        return self._items.get(role, self._items[ANONYMOUS])

    def _call(self, method: str, *args: object):
        try:
            return getattr(self._limiter, method)(*args)
        except (redis.RedisError, OSError) as exc:
            metrics.CACHE_ERRORS.labels(backend="redis", operation=f"ratelimit_{method}").inc()
            log.warning("rate limit storage failed; using memory", extra={"error": str(exc)})
            return getattr(self._memory, method)(*args)

    def status(self, user_key: str, role: str) -> RateDecision:
        """What remains for this user, without counting a request."""
        item = self._item(role)
        stats = self._call("get_window_stats", item, role, user_key)
        return RateDecision(
            stats.remaining > 0, item.amount, stats.remaining, stats.reset_time, _window(item)
        )

    def acquire(self, user_key: str, role: str) -> RateDecision:
        """Count one analysis, or raise `RateLimitedError` when none remain."""
        item = self._item(role)
        allowed = self._call("hit", item, role, user_key)
        stats = self._call("get_window_stats", item, role, user_key)
        decision = RateDecision(bool(allowed), item.amount, stats.remaining, stats.reset_time, _window(item))
        if not allowed:
            metrics.RATE_LIMITED.labels(role=role).inc()
            raise RateLimitedError(decision)
        return decision
