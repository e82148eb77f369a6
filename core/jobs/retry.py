"""Retries with exponential backoff and jitter, for errors that may pass on their own.

The random source and the sleep are injected, so tests replay exact delays.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from core.jobs.contract import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; before try ``n + 1`` wait ``min(max_s, base_s * 2**(n-1))``
    scaled by a random factor in ``[1 - jitter, 1]`` (so workers retrying together spread out).
    """

    attempts: int = 4
    base_s: float = 0.5
    max_s: float = 30.0
    jitter: float = 0.5

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failure (1-based)."""
        ceiling = min(self.max_s, self.base_s * 2 ** (failures - 1))
        return ceiling * (1.0 - self.jitter * rng.random())


# Errors worth another try whatever their details: ours, dropped connections, timeouts and
# the database driver's operational errors (a server restart, a lost connection).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,
    TimeoutError,
    OperationalError,
)


def is_transient(exc: BaseException) -> bool:
    """`TRANSIENT_ERRORS`, and database errors the driver marks as connection problems."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
) -> T:
    """``fn()``, retried on transient errors per ``policy``; other errors pass at once.

    ``on_retry(failures, delay_s, error)`` runs before each wait. The last transient error
    is raised when the attempts run out.
    """
    failures = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            failures += 1
            if not is_transient(exc) or failures >= policy.attempts:
                raise
            delay = policy.delay(failures, rng)
            if on_retry is not None:
                on_retry(failures, delay, exc)
            sleep(delay)
