"""What the persisted request log costs a request: `AnalysisService.run` with and without it.

Two services share one model pool: one logs every request to a SQLite database in a
temporary folder through `core.store.request_log.RequestLog` (the background writer), the other
logs nothing. Both serve the same requests, interleaved, on two paths:

- cached: a repeated request served from the in-memory result cache (the fastest path, so
  the one where the logging work in the request thread shows most);
- model: a new text each time (SmolLM2 encodes it), the usual interactive request.

Last line: RESULT cached_ratio=<x> model_ratio=<y> target cached<=1.10 and model<=1.03 PASS|FAIL
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.domain.analysis import AnalysisMode, AnalysisRequest
from core.domain.identity import Actor
from core.domain.settings import get_settings
from core.models.registry import load_registry
from core.service.analysis_service import AnalysisService
from core.service.cache import MemoryCache
from core.service.rate_limit import RateLimiter
from core.store.request_log import RequestLog
from db.session import get_sessionmaker

MODEL_ID = "smollm2-135m-instruct"
CACHED_RUNS = 400
MODEL_RUNS = 30
TARGET_CACHED, TARGET_MODEL = 1.10, 1.03
PROMPT = (
    "Attention heads in small language models often specialise: some look at the previous "
    "token, some copy earlier repeats, and some rest on the first token."
)


def _service(settings, registry, pool=None, request_log: RequestLog | None = None) -> AnalysisService:
    return AnalysisService(
        settings,
        registry,
        pool=pool,  # one copy of the model for both sides
        cache=MemoryCache(ttl_seconds=3600, max_bytes=512 * 2**20),
        limiter=RateLimiter({"anonymous": "1000000/minute"}),
        request_log=request_log,
    )


def main() -> None:
    settings = get_settings()
    registry = load_registry(settings.registry_path)
    with tempfile.TemporaryDirectory() as folder:
        log = RequestLog(get_sessionmaker(f"sqlite:///{folder}/requests.db"))
        plain = _service(settings, registry)
        logged = _service(settings, registry, pool=plain.pool, request_log=log)
        actor = Actor("bench")
        plain.load(MODEL_ID)

        def request(text: str) -> AnalysisRequest:
            return AnalysisRequest(model_id=MODEL_ID, text=text, mode=AnalysisMode.ENCODE)

        repeat = request(PROMPT)
        for service in (plain, logged):  # warm each cache and the writer thread
            service.run(repeat, actor=actor)
            service.run(repeat, actor=actor)
        log.flush()

        times: dict[str, dict[str, list[float]]] = {"cached": {}, "model": {}}
        for path, runs in (("cached", CACHED_RUNS), ("model", MODEL_RUNS)):
            times[path] = {"plain": [], "logged": []}
            for i in range(runs):
                # Alternate which side goes first so drift in machine load hits both alike.
                order = (
                    (("plain", plain), ("logged", logged))
                    if i % 2 == 0
                    else (("logged", logged), ("plain", plain))
                )
                for name, service in order:
                    item = (
                        repeat if path == "cached" else request(f"{PROMPT} (run {i} {name} {time.time_ns()})")
                    )
                    started = time.perf_counter()
                    analysis = service.run(item, actor=actor)
                    times[path][name].append(time.perf_counter() - started)
                    assert analysis.cache_hit == (path == "cached")
        written = log.flush(timeout=60)
        ratios = {}
        for path in ("cached", "model"):
            plain_s = statistics.median(times[path]["plain"])
            logged_s = statistics.median(times[path]["logged"])
            ratios[path] = logged_s / plain_s
            print(
                f"{path}: plain median {plain_s * 1000:.2f} ms, logged {logged_s * 1000:.2f} ms "
                f"(n={len(times[path]['plain'])} each) -> {ratios[path]:.3f}"
            )
        print(f"request log: all entries written={written}, dropped={log.dropped}")
        log.close()
    ok = ratios["cached"] <= TARGET_CACHED and ratios["model"] <= TARGET_MODEL and written and not log.dropped
    print(
        f"RESULT cached_ratio={ratios['cached']:.3f} model_ratio={ratios['model']:.3f} "
        f"target cached<={TARGET_CACHED:g} and model<={TARGET_MODEL:g} {'PASS' if ok else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
