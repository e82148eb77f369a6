"""The persisted request log: one row per analysis request, whatever its outcome.

`AnalysisService.run` hands each request's outcome to `RequestLog.record`, which only puts
it on a bounded queue: a daemon thread writes queued entries in batches, one transaction
per batch, so a request never waits for the database. When the database is unavailable
the batch is dropped, logged and counted (`request_log_failures_total`) and the app goes
on; when the queue is full (the database is far behind) new entries are dropped the same
way rather than blocking requests or growing memory without bound.

What is kept never includes the text: its length, and the prompt's token ids hashed into
buckets (`core.drift.token_profile`) for drift.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from core import metrics
from core.analysis import Analysis
from core.drift import token_profile
from core.errors import HeadlightError
from db.models import utcnow

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
USER_KEY_PREFIX = "user:"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

SessionFactory = Callable[[], Session]


def _default_session_factory() -> Session:
    # Resolved per batch, so the log follows the configured database (tests switch it).
    from db.session import get_sessionmaker

    return get_sessionmaker()()


def user_id_from_key(actor_key: str) -> int | None:
    """The user id of an actor key ``"user:<id>"``; None for anonymous visitors."""
    if actor_key.startswith(USER_KEY_PREFIX):
        rest = actor_key[len(USER_KEY_PREFIX) :]
        if rest.isdigit():
            return int(rest)
    return None


def error_kind(error: BaseException) -> str:
    """A short, stable name for what went wrong (the analytics group errors by it).

    A `HeadlightError` subclass names itself: ``RateLimitedError`` is ``rate_limited``,
    ``ModelLoadError`` ``model_load``; so new refusals get a kind without touching this.
    """
    if isinstance(error, ValidationError):
        return "validation"
    if isinstance(error, HeadlightError):
        name = type(error).__name__.removesuffix("Error")
        kind = _CAMEL.sub("_", name).lower()
        return "refused" if kind == "headlight" else kind[:64]
    return "internal"


@dataclass(frozen=True)
class RequestTarget:
    """What was asked, known even when the request never validated."""

    model_id: str
    mode: str
    input_chars: int


@dataclass(frozen=True)
class RequestEntry:
    """One request's outcome, as stored in ``analysis_requests``."""

    model_id: str
    mode: str
    latency_s: float
    at: datetime = field(default_factory=utcnow)
    request_id: str | None = None
    model_revision: str | None = None
    user_id: int | None = None
    cache_hit: bool = False
    tokens: int = 0
    input_chars: int = 0
    input_tokens: int | None = None
    token_profile: dict[str, Any] | None = None
    error_kind: str | None = None
    error_message: str | None = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def entry_for(
    *,
    target: RequestTarget,
    revision: str | None,
    actor_key: str,
    request_id: str | None,
    latency_s: float,
    analysis: Analysis | None = None,
    error: BaseException | None = None,
) -> RequestEntry:
    """The log entry of one finished request: served (``analysis``) or failed (``error``)."""
    base: dict[str, Any] = {
        "model_id": target.model_id[:200],
        "mode": target.mode[:16],
        "latency_s": max(0.0, latency_s),
        "request_id": request_id,
        "model_revision": revision,
        "user_id": user_id_from_key(actor_key),
        "input_chars": target.input_chars,
    }
    if analysis is not None:
        prompt_ids = analysis.token_ids[: analysis.prompt_len]
        return RequestEntry(
            **base,
            cache_hit=analysis.cache_hit,
            tokens=analysis.seq_len,
            input_tokens=analysis.prompt_len,
            token_profile=token_profile(prompt_ids) if prompt_ids else None,
        )
    message = str(error) if error is not None else "unknown error"
    return RequestEntry(
        **base,
        error_kind=error_kind(error) if error is not None else "internal",
        error_message=message[:MAX_ERROR_CHARS],
    )


class RequestLog:
    """Writes `RequestEntry` rows on a background thread, in batches, never failing a request."""

    def __init__(
        self,
        session_factory: SessionFactory | None = None,
        *,
        max_queue: int = 10_000,
        batch_size: int = 200,
    ) -> None:
        self._session_factory = session_factory or _default_session_factory
        self._queue: queue.Queue[RequestEntry | None] = queue.Queue(maxsize=max_queue)
        self._batch_size = batch_size
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self.dropped = 0
        self.last_error: str | None = None

    def record(self, entry: RequestEntry) -> None:
        """Queue one entry; never blocks and never raises."""
        self._start()
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._done(1)
            self._drop(1, "queue full")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued entry is written or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="request-log", daemon=True)
                self._thread.start()

    def _done(self, count: int) -> None:
        with self._idle:
            self._pending -= count
            self._idle.notify_all()

    def _drop(self, count: int, reason: str) -> None:
        self.dropped += count
        metrics.REQUEST_LOG_FAILURES.labels(reason=reason).inc(count)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            while len(batch) < self._batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
            try:
                self._write(batch)
            finally:
                self._done(len(batch))

    def _write(self, batch: list[RequestEntry]) -> None:
        from db.request_log import insert_requests

        try:
            with self._session_factory() as session, session.begin():
                insert_requests(session=session, rows=(entry.as_row() for entry in batch))
            self.last_error = None
        except Exception as exc:  # the log must never take the app down with the database
            self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("request log write failed; %d entries dropped: %s", len(batch), self.last_error)
            self._drop(len(batch), "database")
