"""Headlight's encode path vs plain transformers, and bytes sent to the browser vs bertviz.

Baseline (same run, same loaded model, reached through the adapter's `hf_model`):
`model(ids, output_attentions=True)` with the attentions stacked into numpy — the least a
user of plain transformers does — and
bertviz's own `head_view(..., html_action="return")` HTML.
Headlight: `AnalysisService.run` on an encode request (hooks, statistics, compact form,
float16 full map) and the offline head-view HTML it sends for that length.

Last line: RESULT overhead_n128=<x> target<=1.15 PASS|FAIL
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from bertviz import head_view

from core.attention import compact
from core.domain.analysis import AnalysisRequest
from core.domain.settings import get_settings
from core.models.huggingface.adapter import HuggingFaceModel
from core.models.registry import load_registry
from core.service.analysis_service import AnalysisService
from ui import bertviz_html

MODEL_ID = "smollm2-135m-instruct"
LENGTHS = (32, 128, 512)
REPEATS = 5
TARGET = 1.15
WORDS = (
    "the model reads every token and each head decides where to look while the analyst "
    "watches patterns emerge across layers of a small language model trained on text"
).split()


def text_of_length(service: AnalysisService, n_tokens: int) -> str:
    """A natural-ish text that tokenizes to exactly `n_tokens` for the model."""
    model = service.load(MODEL_ID)[0]
    words: list[str] = []
    i = 0
    while len(model.tokenize(" ".join(words))) < n_tokens:
        words.append(WORDS[i % len(WORDS)])
        i += 1
    ids = model.tokenize(" ".join(words)).ids[:n_tokens]
    return model.decode(ids)


def median_seconds(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    settings = get_settings()
    service = AnalysisService(settings, load_registry(settings.registry_path))
    loaded = service.load(MODEL_ID)[0]
    assert isinstance(loaded, HuggingFaceModel)
    print(f"model {MODEL_ID} on {loaded.info.device}, torch threads {torch.get_num_threads()}")
    print(f"{'N':>5} {'plain s':>9} {'headlight s':>12} {'ratio':>6} {'bertviz MB':>11} {'ours MB':>8}")
    ratios: dict[int, float] = {}
    for n in LENGTHS:
        text = text_of_length(service, n)
        request = AnalysisRequest(model_id=MODEL_ID, text=text)
        ids = torch.tensor([loaded.tokenize(text).ids])

        def plain(ids: torch.Tensor = ids) -> list[np.ndarray]:
            with torch.inference_mode():
                out = loaded.hf_model(input_ids=ids, output_attentions=True)
            return [a[0].float().numpy() for a in out.attentions]

        def ours(request: AnalysisRequest = request):
            return service.run(request)

        plain_s = median_seconds(plain)
        ours_s = median_seconds(ours)
        ratios[n] = ours_s / plain_s

        analysis = ours()
        attention = [torch.from_numpy(a[None]) for a in plain()]
        tokens = loaded.token_strings(analysis.token_ids)
        bertviz_bytes = len(head_view(attention, tokens, html_action="return").data)
        info = analysis.model
        if bertviz_html.fits_bertviz(info.n_layers, info.n_heads, n):
            ours_bytes = len(bertviz_html.head_view_html(analysis.attention, analysis.tokens))
        else:
            ours_bytes = len(compact.encode(analysis.compact))
        print(
            f"{n:>5} {plain_s:>9.3f} {ours_s:>12.3f} {ratios[n]:>6.2f} "
            f"{bertviz_bytes / 1e6:>11.1f} {ours_bytes / 1e6:>8.2f}"
        )
    overhead = ratios[128]
    verdict = "PASS" if overhead <= TARGET else "FAIL"
    print(f"RESULT overhead_n128={overhead:.3f} target<={TARGET} {verdict}")


if __name__ == "__main__":
    main()
