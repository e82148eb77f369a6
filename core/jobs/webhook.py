"""Job notifications: a JSON POST signed with HMAC-SHA256, retried with backoff.

The receiver checks ``X-Headlight-Signature: sha256=<hex>``, the HMAC of
``<X-Headlight-Timestamp>.<body>`` under the shared secret (`Settings.webhook_secret`), and
may refuse old timestamps to stop replays.

A webhook URL is typed by a user, and the worker that calls it sits inside the deployment,
so by default it may only reach public addresses: loopback, private, link-local (cloud
metadata), multicast and reserved addresses are refused, both when the URL names them and
when its host name resolves to them just before each call
(`Settings.webhook_allow_private_hosts` lifts this for a trusted internal receiver). A host
that changes its DNS answer between that check and the connection is not caught; put the
workers behind an egress proxy where that matters.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core.domain.errors import HeadlightError
from core.jobs.contract import TransientError
from core.jobs.retry import RetryPolicy, call_with_retries

MAX_URL_CHARS = 2000
SIGNATURE_HEADER = "X-Headlight-Signature"
TIMESTAMP_HEADER = "X-Headlight-Timestamp"
TIMEOUT_S = 10.0
POLICY = RetryPolicy(attempts=5, base_s=1.0, max_s=60.0)

# (url, body, headers) -> HTTP status; raises OSError for network failures.
Poster = Callable[[str, bytes, dict[str, str]], int]


# (host, port) -> the IP addresses it resolves to; raises OSError when it does not resolve.
Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool = False) -> str:
    """A webhook URL as given, if it is an absolute http(s) URL that may be called; else a
    `HeadlightError`. Without ``allow_private`` an IP address in it must be public."""
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise HeadlightError("The webhook must be an http:// or https:// URL with a host name.")
    host = parts.hostname
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise HeadlightError("The webhook must point at a public address, not this machine.")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not allow_private and not _is_public(host):
        raise HeadlightError("The webhook must point at a public address, not a private or local one.")
    return url


def check_destination(url: str, *, allow_private: bool = False, resolve: Resolver = _resolve) -> None:
    """Refuse ``url`` unless every address its host resolves to is public (or ``allow_private``)."""
    check_url(url, allow_private=allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(parts.hostname, port)
    except OSError as exc:
        raise TransientError(f"{parts.hostname} does not resolve: {exc}") from exc
    private = sorted({a for a in addresses if not _is_public(a)})
    if not addresses or private:
        raise HeadlightError(f"{parts.hostname} resolves to a private or local address; not called.")


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, secret: str, timestamp: int, signature: str) -> bool:
    """Whether ``signature`` is ours for this body and time (constant-time comparison)."""
    return hmac.compare_digest(sign(body, secret, timestamp), signature)


def _post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool = False) -> int:
    check_destination(url, allow_private=allow_private)
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
    post: Poster | None = None,
    clock: Callable[[], float] = time.time,
    allow_private: bool = False,
) -> Delivery:
    """POST ``payload`` to ``url``; network errors, 429 and 5xx are retried, other 4xx are not.

    The default poster checks the destination before every attempt (`check_destination`);
    a private one is refused without a call.
    """
    send = post or functools.partial(_post, allow_private=allow_private)
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
            status = send(url, body, headers)
        except OSError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        if status == 429 or status >= 500:
            raise TransientError(f"HTTP {status}")
        return status

    try:
        status = call_with_retries(attempt, policy=policy, rng=rng, sleep=sleep)
    except TransientError as exc:
        return Delivery(False, attempts, f"gave up after {attempts} attempts: {exc}")
    except HeadlightError as exc:
        return Delivery(False, attempts, f"refused: {exc}")
    if 200 <= status < 300:
        plural = "s" if attempts > 1 else ""
        return Delivery(True, attempts, f"HTTP {status} after {attempts} attempt{plural}")
    return Delivery(False, attempts, f"refused with HTTP {status}; not retried")
