"""Job notifications: a JSON POST signed with HMAC-SHA256, retried with backoff.

The receiver checks ``X-Headlight-Signature: sha256=<hex>``, the HMAC of
``<X-Headlight-Timestamp>.<body>`` under the shared secret (`Settings.webhook_secret`), and
may refuse old timestamps to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core.errors import HeadlightError
from core.jobs.contract import TransientError
from core.jobs.retry import RetryPolicy, call_with_retries

MAX_URL_CHARS = 2000
SIGNATURE_HEADER = "X-Headlight-Signature"
TIMESTAMP_HEADER = "X-Headlight-Timestamp"
TIMEOUT_S = 10.0
POLICY = RetryPolicy(attempts=5, base_s=1.0, max_s=60.0)

# (url, body, headers) -> HTTP status; raises OSError for network failures.
Poster = Callable[[str, bytes, dict[str, str]], int]


def check_url(url: str) -> str:
    """A webhook URL as given, if it is an absolute http(s) URL; else a `HeadlightError`."""
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise HeadlightError("The webhook must be an http:// or https:// URL with a host name.")
    return url


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, secret: str, timestamp: int, signature: str) -> bool:
    """Whether ``signature`` is ours for this body and time (constant-time comparison)."""
    return hmac.compare_digest(sign(body, secret, timestamp), signature)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - checked scheme
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    detail: str


def deliver(
    url: str,
    payload: dict[str, Any],
    *,
    secret: str,
    rng: random.Random,
    policy: RetryPolicy = POLICY,
    sleep: Callable[[float], None] = time.sleep,
    post: Poster = _post,
    clock: Callable[[], float] = time.time,
) -> Delivery:
    """POST ``payload`` to ``url``; network errors, 429 and 5xx are retried, other 4xx are not."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    attempts = 0

    def attempt() -> int:
        nonlocal attempts
        attempts += 1
        timestamp = int(clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Headlight-Webhook/1",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(body, secret, timestamp),
        }
        try:
            status = post(url, body, headers)
        except OSError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        if status == 429 or status >= 500:
            raise TransientError(f"HTTP {status}")
        return status

    try:
        status = call_with_retries(attempt, policy=policy, rng=rng, sleep=sleep)
    except TransientError as exc:
        return Delivery(False, attempts, f"gave up after {attempts} attempts: {exc}")
    if 200 <= status < 300:
        plural = "s" if attempts > 1 else ""
        return Delivery(True, attempts, f"HTTP {status} after {attempts} attempt{plural}")
    return Delivery(False, attempts, f"refused with HTTP {status}; not retried")
