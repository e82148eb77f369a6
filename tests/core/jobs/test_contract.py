"""The job contract, retries with seeded jitter, webhook signing and delivery, and the Celery
app's settings: no database, no broker."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy.exc import OperationalError

from core.domain.errors import HeadlightError
from core.jobs import webhook
from core.jobs.contract import (
    ACTIVE,
    FINISHED,
    TRANSITIONS,
    InvalidTransitionError,
    JobStatus,
    TransientError,
    check_transition,
    eta_seconds,
    sources_of,
)
from core.jobs.retry import RetryPolicy, call_with_retries, is_transient


def test_transitions_cover_every_status_and_completed_is_final() -> None:
    """Every status has its allowed successors; completed has none; resume goes via queued."""
    assert set(TRANSITIONS) == set(JobStatus)
    assert TRANSITIONS[JobStatus.COMPLETED] == frozenset()
    assert set(JobStatus) == ACTIVE | FINISHED and not ACTIVE & FINISHED
    check_transition(JobStatus.QUEUED, JobStatus.RUNNING)
    check_transition(JobStatus.RUNNING, JobStatus.QUEUED)  # a worker vanished
    check_transition(JobStatus.FAILED, JobStatus.QUEUED)  # resume
    with pytest.raises(InvalidTransitionError, match="A completed job cannot become running"):
        check_transition(JobStatus.COMPLETED, JobStatus.RUNNING)
    with pytest.raises(InvalidTransitionError, match=r"only: queued"):
        check_transition(JobStatus.CANCELLED, JobStatus.COMPLETED)
    assert sources_of(JobStatus.QUEUED) == {JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}
    assert sources_of(JobStatus.CANCELLED, among=[JobStatus.QUEUED]) == {JobStatus.QUEUED}


def test_eta() -> None:
    assert eta_seconds(0, 0, 0) == 0.0
    assert eta_seconds(10, 0, 60) is None
    assert eta_seconds(10, 5, 60) == pytest.approx(120.0)


def test_backoff_doubles_up_to_the_cap_with_seeded_jitter() -> None:
    """Delays are base * 2^(n-1), capped, each scaled into [1 - jitter, 1] by the RNG."""
    policy = RetryPolicy(attempts=6, base_s=0.5, max_s=3.0, jitter=0.25)
    rng, check = random.Random(42), random.Random(42)
    delays = [policy.delay(n, rng) for n in range(1, 6)]
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0]
    assert delays == [c * (1 - 0.25 * check.random()) for c in ceilings]
    assert all(0.75 * c <= d <= c for d, c in zip(delays, ceilings, strict=True))


def test_call_with_retries_retries_only_transient_errors() -> None:
    """Transient errors are retried until success or the last attempt; others pass at once."""
    calls: list[int] = []
    slept: list[float] = []
    seen: list[tuple[int, str]] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return "ok"

    policy = RetryPolicy(attempts=3, base_s=1.0, max_s=4.0, jitter=0.0)
    result = call_with_retries(
        flaky,
        policy=policy,
        rng=random.Random(0),
        sleep=slept.append,
        on_retry=lambda n, d, e: seen.append((n, str(e))),
    )
    assert result == "ok" and slept == [1.0, 2.0] and seen == [(1, "reset"), (2, "reset")]

    def always(error: Exception):
        def fail() -> None:
            calls.append(1)
            raise error

        return fail

    calls.clear()
    with pytest.raises(TimeoutError):
        call_with_retries(always(TimeoutError()), policy=policy, rng=random.Random(0), sleep=lambda s: None)
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ValueError):
        call_with_retries(always(ValueError()), policy=policy, rng=random.Random(0), sleep=lambda s: None)
    assert len(calls) == 1


def test_what_counts_as_transient() -> None:
    assert is_transient(TransientError()) and is_transient(ConnectionResetError())
    assert is_transient(OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert not is_transient(ValueError()) and not is_transient(KeyError())


def test_webhook_url_checks_and_signature() -> None:
    """Only absolute http(s) URLs; the signature covers timestamp and body."""
    assert webhook.check_url(" https://example.org/hook ") == "https://example.org/hook"
    for bad in ("ftp://example.org", "https://", "/relative", "https://x/" + "a" * 2001):
        with pytest.raises(HeadlightError, match="http:// or https://"):
            webhook.check_url(bad)
    signature = webhook.sign(b'{"a":1}', "key", 1700000000)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert webhook.verify(b'{"a":1}', "key", 1700000000, signature)
    assert not webhook.verify(b'{"a":2}', "key", 1700000000, signature)
    assert not webhook.verify(b'{"a":1}', "key", 1700000001, signature)


def test_webhook_gives_up_on_client_errors_and_after_retries() -> None:
    """A 4xx is not retried; network errors are, until the attempts run out."""
    statuses = iter([404])
    refused = webhook.deliver(
        "https://x.example/h",
        {"a": 1},
        secret="k",
        rng=random.Random(0),
        sleep=lambda s: None,
        post=lambda url, body, headers: next(statuses),
    )
    assert not refused.delivered and refused.attempts == 1 and "HTTP 404" in refused.detail

    def unreachable(url: str, body: bytes, headers: dict[str, str]) -> int:
        raise OSError("connection refused")

    policy = RetryPolicy(attempts=3, base_s=0.01, max_s=0.01)
    failed = webhook.deliver(
        "https://x.example/h",
        {"a": 1},
        secret="k",
        rng=random.Random(0),
        policy=policy,
        sleep=lambda s: None,
        post=unreachable,
    )
    assert not failed.delivered and failed.attempts == 3 and "connection refused" in failed.detail


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012 - shared with the test

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def hook_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_reaches_a_real_http_server(hook_server: str) -> None:
    """The default poster sends the signed JSON body over HTTP."""
    _Hook.received.clear()
    delivery = webhook.deliver(
        hook_server,
        {"job_id": 7},
        secret="s",
        rng=random.Random(0),
        clock=lambda: 1700000000,
        allow_private=True,  # the test receiver listens on loopback
    )
    assert delivery.delivered and delivery.detail == "HTTP 200 after 1 attempt"
    [(headers, body)] = _Hook.received
    assert json.loads(body) == {"job_id": 7}
    assert webhook.verify(
        body, "s", int(headers[webhook.TIMESTAMP_HEADER]), headers[webhook.SIGNATURE_HEADER]
    )


def test_celery_app_routes_to_the_batch_queue_and_acks_late() -> None:
    """The task lives on its own queue, is acknowledged after it returns, and retries transient errors."""
    from core.service import celery_worker as celery_app

    app = celery_app.make_app("redis://127.0.0.1:1/0")
    assert app.conf.task_default_queue == "batch" and app.conf.task_acks_late
    assert app.conf.task_reject_on_worker_lost and app.conf.worker_prefetch_multiplier == 1
    task = celery_app.run_job_task
    assert task.name == celery_app.TASK_NAME and TransientError in task.autoretry_for
    assert task.retry_backoff and task.retry_jitter
    assert celery_app.worker_name("w1@host").startswith("w1@host:")
    sent: list[tuple] = []

    class Recorder:
        def send_task(self, name: str, args: list[int], queue: str) -> None:
            sent.append((name, args, queue))

    celery_app.CeleryDispatcher(Recorder()).submit(5, copies=2)  # type: ignore[arg-type]
    assert sent == [(celery_app.TASK_NAME, [5], "batch")] * 2


def test_webhooks_refuse_private_and_local_destinations(hook_server: str) -> None:
    """A user-typed URL must not reach the deployment's insides (metadata, Redis, localhost)."""
    for url in (
        "http://127.0.0.1:6379/",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/h",
        "http://[::1]/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://localhost:8501/h",
        "http://api.localhost/h",
    ):
        with pytest.raises(HeadlightError, match="public address"):
            webhook.check_url(url)
        assert webhook.check_url(url, allow_private=True) == url
    assert webhook.check_url("https://8.8.8.8/h") == "https://8.8.8.8/h"

    def resolves_to(*addresses: str) -> webhook.Resolver:
        return lambda host, port: list(addresses)

    webhook.check_destination("https://hooks.example.org/x", resolve=resolves_to("93.184.216.34"))
    with pytest.raises(HeadlightError, match="resolves to a private or local address"):
        webhook.check_destination(
            "https://hooks.example.org/x", resolve=resolves_to("93.184.216.34", "10.0.0.5")
        )
    webhook.check_destination(
        "https://hooks.example.org/x", allow_private=True, resolve=resolves_to("10.0.0.5")
    )

    _Hook.received.clear()
    refused = webhook.deliver(
        hook_server, {"job_id": 1}, secret="s", rng=random.Random(0), sleep=lambda s: None
    )
    assert not refused.delivered and refused.detail.startswith("refused:") and _Hook.received == []
