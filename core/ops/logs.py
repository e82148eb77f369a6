"""Structured logs: one JSON object per line, with the request's context attached.

`log_context(user=..., request_id=...)` sets fields that every log line inside the block
carries, across threads of the same request (contextvars).
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

_context: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("log_context", default={})  # noqa: B039
_configured = False


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def build_handler(log_format: str = "json", stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `log_format` lines ("json" or "text") with the request context."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(_ContextFilter())
    return handler


def configure_logging(log_format: str = "json", level: int = logging.INFO) -> None:
    """Install one handler on the `core`/`db` loggers; idempotent across Streamlit reruns."""
    global _configured
    if _configured:
        return
    handler = build_handler(log_format)
    for name in ("core", "db", "headlight"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    _configured = True
