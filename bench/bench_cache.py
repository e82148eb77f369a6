"""The same analysis uncached vs served from the Redis result cache, through the whole path.

Both sides run `AnalysisService.run` (rate limit, cache lookup, and on a miss the model
plus post-processing and the cache write). Uncached runs use texts never seen before (a
run number appended); cached runs repeat one request. Needs Redis (REDIS_URL, default
redis://127.0.0.1:6379/15).

Last line: RESULT cache_speedup=<x> target>=20 PASS|FAIL
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.domain.analysis import AnalysisMode, AnalysisRequest, GenerationParams
from core.domain.identity import Actor
from core.domain.settings import get_settings
from core.models.registry import load_registry
from core.service.analysis_service import AnalysisService
from core.service.cache import RedisCache
from core.service.rate_limit import RateLimiter

MODEL_ID = "smollm2-135m-instruct"
REPEATS = 5
TARGET = 20.0
PROMPT = (
    "Attention heads in small language models often specialise: some look at the previous "
    "token, some copy earlier repeats, and some rest on the first token. Describe one."
)


def main() -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    cache = RedisCache(url, ttl_seconds=600)
    if not cache.ping():
        print(f"RESULT cache_speedup=0 target>={TARGET} FAIL (Redis unreachable at {url})")
        return
    settings = get_settings()
    service = AnalysisService(
        settings,
        load_registry(settings.registry_path),
        cache=cache,
        limiter=RateLimiter({"anonymous": "100000/minute"}, url),
    )
    actor = Actor("bench")
    service.load(MODEL_ID)

    def request(suffix: str) -> AnalysisRequest:
        return AnalysisRequest(
            model_id=MODEL_ID,
            text=f"{PROMPT} ({suffix})",
            mode=AnalysisMode.GENERATE,
            generation=GenerationParams(max_new_tokens=20),
        )

    run_id = time.time_ns()
    uncached = []
    for i in range(REPEATS):
        started = time.perf_counter()
        analysis = service.run(request(f"{run_id}-{i}"), actor=actor)
        uncached.append(time.perf_counter() - started)
        assert not analysis.cache_hit
        service.flush()
    cached = []
    repeat = request(f"{run_id}-0")
    for _ in range(REPEATS):
        started = time.perf_counter()
        analysis = service.run(repeat, actor=actor)
        cached.append(time.perf_counter() - started)
        assert analysis.cache_hit
    slow, fast = statistics.median(uncached), statistics.median(cached)
    print(f"model {MODEL_ID}, {analysis.seq_len} tokens ({analysis.seq_len - analysis.prompt_len} generated)")
    print(f"uncached median {slow * 1000:.1f} ms, cached median {fast * 1000:.1f} ms (n={REPEATS} each)")
    speedup = slow / fast
    verdict = "PASS" if speedup >= TARGET else "FAIL"
    print(f"RESULT cache_speedup={speedup:.1f} target>={TARGET:g} {verdict}")


if __name__ == "__main__":
    main()
