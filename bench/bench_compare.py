"""Compare screen: SmolLM2-135M vs Gemma-3-270M on one paragraph (104 words).

Baseline (same run): the two forward passes, as each analysis reports them
(`timings.forward_s`: the model's forward pass with the attention hooks).
Measured: wall time from the start of the Compare action (`run_comparison`: both analyses,
alignment, projection, similarity) to the matched-head heatmap ready to send (its Plotly
figure built and serialised to JSON). Both models are resident first; no result cache.

Last line: RESULT compare_overhead=<total / (forward_a + forward_b)> target<=1.25 PASS|FAIL
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.attention.comparison import CompareRequest
from core.domain.analysis import GenerationParams
from core.domain.identity import ANONYMOUS_ACTOR
from core.domain.settings import get_settings
from core.models.registry import load_registry
from core.service.analysis_service import AnalysisService
from core.service.compare import run_comparison
from ui.compare_view import similarity_figure

MODEL_A = "smollm2-135m-instruct"
MODEL_B = "gemma-3-270m"
REPEATS = 3
TARGET = 1.25
PARAGRAPH = (
    "Attention heads in a transformer decide, for every token, which earlier tokens matter. "
    "Some heads look at the previous word, some at the first token of the text, and others follow "
    "syntax: a verb finds its subject, a pronoun finds the noun it stands for. When two models are "
    "trained on similar data, do they learn the same heads? Analysts compare them by running both "
    "models on one paragraph, aligning their different tokenizers on shared words, and measuring how "
    "similar each head's pattern is. The answer is often surprising, because small models reuse a few "
    "simple strategies in many layers, while larger ones specialise."
)


def main() -> None:
    settings = get_settings()
    service = AnalysisService(settings, load_registry(settings.registry_path))
    for model_id in (MODEL_A, MODEL_B):
        loaded, load_s = service.load(model_id)
        print(
            f"{model_id}: {loaded.info.n_layers}x{loaded.info.n_heads} heads on {loaded.info.device}, "
            f"loaded in {load_s:.1f} s"
        )
    request = CompareRequest.of(
        model_a=(MODEL_A, "causal"),
        model_b=(MODEL_B, "causal"),
        text=PARAGRAPH,
        generate=False,
        generation=GenerationParams(),
        top_k_next=5,
    )
    print(
        f"{'forward A':>10} {'forward B':>10} {'align':>7} {'project':>8} {'similar':>8} "
        f"{'figure':>7} {'total':>7} {'ratio':>6}"
    )
    ratios = []
    for repeat in range(REPEATS + 1):  # the first is a warm-up
        started = time.perf_counter()
        outcome = run_comparison(service, request, actor=ANONYMOUS_ACTOR)
        comparison = outcome.comparison
        assert comparison is not None, (outcome.error_a, outcome.error_b, outcome.comparison_error)
        figure_started = time.perf_counter()
        similarity_figure(comparison, grid="heads", selected=0).to_json()
        done = time.perf_counter()
        total = done - started
        forward_a, forward_b = comparison.a.timings.forward_s, comparison.b.timings.forward_s
        ratio = total / (forward_a + forward_b)
        timings = comparison.timings
        print(
            f"{forward_a:>10.3f} {forward_b:>10.3f} {timings.align_s:>7.3f} {timings.project_s:>8.3f} "
            f"{timings.similarity_s:>8.3f} {done - figure_started:>7.3f} {total:>7.3f} {ratio:>6.3f}"
            + ("  (warm-up)" if repeat == 0 else "")
        )
        if repeat:
            ratios.append(ratio)
    print(
        f"tokens A {comparison.a.seq_len}, tokens B {comparison.b.seq_len}, "
        f"shared spans {comparison.alignment.n_spans}, dropped {len(comparison.alignment.dropped)}, "
        f"only in A {comparison.only_in_a.size}/{comparison.similarity.shape[0]}, "
        f"only in B {comparison.only_in_b.size}/{comparison.similarity.shape[1]}"
    )
    resident = [loaded.spec.id for loaded in service.pool.loaded()]
    print(
        f"resident: {', '.join(resident)} ({service.pool.used_bytes() / 2**20:,.0f} MiB of the "
        f"{settings.model_memory_budget_mb:,} MB budget)"
    )
    overhead = statistics.median(ratios)
    verdict = "PASS" if overhead <= TARGET else "FAIL"
    print(f"RESULT compare_overhead={overhead:.3f} target<={TARGET} {verdict}")


if __name__ == "__main__":
    main()
