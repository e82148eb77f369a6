"""Services the tests take from the machine: Postgres and a private ``redis-server``.

Without one, its tests are skipped with the reason; where ``HEADLIGHT_REQUIRE_<SERVICE>``
is set (CI: ``HEADLIGHT_REQUIRE_POSTGRES``, ``HEADLIGHT_REQUIRE_REDIS``) they fail instead,
so a broken CI machine cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
import redis


def unavailable(service: str, reason: str) -> NoReturn:
    """Skip the test for a missing ``service``, or fail it when ``HEADLIGHT_REQUIRE_<SERVICE>`` is set."""
    variable = f"HEADLIGHT_REQUIRE_{service.upper()}"
    if os.environ.get(variable):
        pytest.fail(f"{reason} ({variable} is set)", pytrace=False)
    pytest.skip(f"{reason} (set {variable}=1 to fail instead of skipping)")


@contextmanager
def redis_server(directory: Path, timeout: float = 10.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private ``redis-server`` on a free localhost port: its URL and process, killed at the end.

    Private, so a test may kill it mid-run or fill it without touching anyone else's Redis.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis", "redis-server is not installed (apt-get install -y redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(directory)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2, socket_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if process.poll() is not None or time.monotonic() > deadline:
                    unavailable("redis", f"redis-server did not start on port {port}")
                time.sleep(0.05)
            finally:
                client.close()
        yield url, process
    finally:
        process.kill()
        process.wait()
