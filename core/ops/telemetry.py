"""Recent events of this process, for the Metrics screen's time series.

Prometheus holds cumulative counters; charts of "requests over time" need the events
themselves. This keeps the last `maxlen` analyses and session heartbeats in memory (per
replica; fleet-wide history is Prometheus' job).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from core.ops import metrics

ACTIVE_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class AnalysisEvent:
    at: float
    model_id: str
    mode: str
    seconds: float
    cache_hit: bool
    user: str


class Telemetry:
    def __init__(self, maxlen: int = 10_000) -> None:
        self._events: deque[AnalysisEvent] = deque(maxlen=maxlen)
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, event: AnalysisEvent) -> None:
        with self._lock:
            self._events.append(event)

    def events(self, since: float = 0.0) -> list[AnalysisEvent]:
        with self._lock:
            return [e for e in self._events if e.at >= since]

    def seen_count(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._lock:
            return sum(1 for t in self._sessions.values() if t >= now - ACTIVE_WINDOW_SECONDS)

    def seen(self, session_id: str, now: float | None = None) -> int:
        """Mark a session active; returns and publishes the number active in the window."""
        now = time.time() if now is None else now
        with self._lock:
            self._sessions[session_id] = now
            cutoff = now - ACTIVE_WINDOW_SECONDS
            self._sessions = {s: t for s, t in self._sessions.items() if t >= cutoff}
            active = len(self._sessions)
        metrics.ACTIVE_USERS.set(active)
        return active


TELEMETRY = Telemetry()
