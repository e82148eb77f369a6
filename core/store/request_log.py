"""The persisted request log: one row per analysis request, whatever its outcome.

`AnalysisService.submit` and `.run` hand each request's outcome to `RequestLog.record`, which
only puts it on a bounded queue: a daemon thread writes queued entries in batches, one transaction
per batch, so a request never waits for the database. When the database is unavailable
the batch is dropped, logged and counted (`request_log_failures_total`) and the app goes
on; when the queue is full (the database is far behind) new entries are dropped the same
way rather than blocking requests or growing memory without bound. The queue is bounded
both by entries and by bytes (token profiles vary in size with the prompt).

The database an entry goes to is decided when it is recorded, not when the writer gets to
it: tests (and scripts) switch databases between requests, and an entry must not land in
the next one. `close` drains the queue and stops the writer; it runs at interpreter exit
so entries still queued then are written, not lost with the daemon thread.

What is kept never includes the text: its length, and the prompt's token ids hashed into
buckets (`core.ops.drift.token_profile`) for drift.
"""

from __future__ import annotations

import atexit
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

from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError
from core.ops import metrics
from core.ops.drift import token_profile
from db.models import utcnow

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
USER_KEY_PREFIX = "user:"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

SessionFactory = Callable[[], Session]
# Rough fixed cost of one queued entry (the dataclass, its strings and datetime), in bytes.
_ENTRY_BYTES = 600
# Per (bucket, count) pair of a token profile: two small ints in a list.
_PAIR_BYTES = 64


def _current_session_factory() -> SessionFactory:
    # Resolved per entry at record time, so the log follows the configured database.
    from db.session import get_sessionmaker

    return get_sessionmaker()


def entry_bytes(entry: RequestEntry) -> int:
    """An estimate of the memory one queued entry holds (the profile dominates)."""
    profile = entry.token_profile or {}
    pairs = len(profile.get("pairs") or ()) // 2 + len(profile.get("counts") or {})
    return _ENTRY_BYTES + len(entry.error_message or "") + _PAIR_BYTES * pairs


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


# What the writer takes off the queue: the target database, the entry, its estimated bytes.
_Queued = tuple[SessionFactory, RequestEntry, int]


class RequestLog:
    """Writes `RequestEntry` rows on a background thread, in batches, never failing a request.

    ``session_factory`` fixes the database; without it each entry goes to the database
    ``resolve_factory()`` names when the entry is recorded (default: `get_sessionmaker()`).
    """

    def __init__(
        self,
        session_factory: SessionFactory | None = None,
        *,
        resolve_factory: Callable[[], SessionFactory] | None = None,
        max_queue: int = 10_000,
        max_queue_bytes: int = 32 * 1024 * 1024,
        batch_size: int = 200,
    ) -> None:
        if session_factory is not None:
            fixed = session_factory
            self._resolve: Callable[[], SessionFactory] = lambda: fixed
        else:
            self._resolve = resolve_factory or _current_session_factory
        self._queue: queue.Queue[_Queued | None] = queue.Queue(maxsize=max_queue)
        self._max_bytes = max_queue_bytes
        self._batch_size = batch_size
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._queued_bytes = 0
        self._dropped = 0
        self._atexit_registered = False
        self.last_error: str | None = None

    @property
    def dropped(self) -> int:
        """Entries dropped so far (queue full or database error)."""
        with self._idle:
            return self._dropped

    def record(self, entry: RequestEntry) -> None:
        """Queue one entry; never blocks and never raises."""
        try:
            factory = self._resolve()
        except Exception as exc:  # no database configured: drop, as for a failed write
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._drop(1, "database")
            return
        size = entry_bytes(entry)
        with self._idle:
            if self._queued_bytes + size > self._max_bytes:
                full = True
            else:
                full = False
                self._pending += 1
                self._queued_bytes += size
        if full:
            self._drop(1, "queue full")
            return
        self._start()
        try:
            self._queue.put_nowait((factory, entry, size))
        except queue.Full:
            self._done(1, size)
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

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued, then stop the writer; False if it did not finish in time.

        A later `record` starts a new writer.
        """
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return True
        try:
            # The sentinel goes behind every queued entry, so they are all written first.
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return False
        thread.join(timeout)
        return not thread.is_alive()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="request-log", daemon=True)
                self._thread.start()
                if not self._atexit_registered:
                    atexit.register(self.close)
                    self._atexit_registered = True

    def _done(self, count: int, size: int) -> None:
        with self._idle:
            self._pending -= count
            self._queued_bytes -= size
            self._idle.notify_all()

    def _drop(self, count: int, reason: str) -> None:
        with self._idle:
            self._dropped += count
        metrics.REQUEST_LOG_FAILURES.labels(reason=reason).inc(count)

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            batch: list[_Queued] = []
            if first is None:
                stop = True
            else:
                batch.append(first)
            while not stop and len(batch) < self._batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            try:
                self._write_all(batch)
            finally:
                self._done(len(batch), sum(size for _, _, size in batch))

    def _write_all(self, batch: list[_Queued]) -> None:
        # Entries recorded against different databases are written to each in turn.
        groups: dict[int, tuple[SessionFactory, list[RequestEntry]]] = {}
        for factory, entry, _ in batch:
            groups.setdefault(id(factory), (factory, []))[1].append(entry)
        for factory, entries in groups.values():
            self._write(factory, entries)

    def _write(self, factory: SessionFactory, batch: list[RequestEntry]) -> None:
        from db.request_log import insert_requests

        try:
            with factory() as session, session.begin():
                insert_requests(session=session, rows=(entry.as_row() for entry in batch))
            self.last_error = None
        except Exception as exc:  # the log must never take the app down with the database
            self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("request log write failed; %d entries dropped: %s", len(batch), self.last_error)
            self._drop(len(batch), "database")
