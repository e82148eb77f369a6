"""Running one analysis on a loaded model: encode (one forward pass) or generate, with attention.

Written against the model boundary (`core.models.boundary.LanguageModel`) only. Attention
arrives layer by layer from the model's captures, is reduced to statistics and the compact
form as it arrives, and is kept in full (float16) only while it is small. So peak memory
never holds every layer's float32 attention at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from core.attention.compact import CompactBuilder, compact_from_full
from core.attention.stats import STAT_NAMES, layer_head_stats
from core.domain.analysis import Analysis, AnalysisMode, AnalysisRequest, Deferred, NextTokenStep, Timings
from core.domain.errors import HeadlightError, InputTooLongError
from core.models.boundary import Capture, LanguageModel, Sampling, Tokenized
from core.ops import metrics

Progress = Callable[[float, str], None]

# Reduces one layer to the compact form while the model computes the next (numpy and torch
# both release the GIL). One worker for the process: reductions are CPU-bound anyway.
_REDUCER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attention-reduce")


def _no_progress(_fraction: float, _message: str) -> None:
    return None


class _AttentionSink:
    """Receives one layer at a time and keeps what the analysis needs.

    Statistics always; the full map as float16 while it is small (the compact form is then
    derived from it only if someone asks); otherwise the compact form, built as layers pass.
    """

    def __init__(self, n_layers: int, n_heads: int, seq_len: int, keep_full: bool) -> None:
        self.stats = {name: np.zeros((n_layers, n_heads), np.float32) for name in STAT_NAMES}
        self.full = np.empty((n_layers, n_heads, seq_len, seq_len), dtype=np.float16) if keep_full else None
        self.builder = None if keep_full else CompactBuilder(n_layers, n_heads, seq_len)
        self._pending: Future[None] | None = None

    def add(self, layer: int, weights: torch.Tensor) -> None:
        """`weights` is ``[n_heads, seq_len, seq_len]`` on any device."""
        weights = weights.detach()
        layer_attention = weights.float().cpu().numpy()  # no copy for float32 on the CPU
        if self.builder is not None:
            # Reduced on the worker while the forward goes on (the array keeps the tensor
            # alive). Waiting for the previous layer first keeps at most two layers' weights
            # in memory. The builder computes the statistics too; `results` takes them.
            self._wait()
            self._pending = _REDUCER.submit(self.builder.add_layer, layer, layer_attention)
            return
        assert self.full is not None
        # Casting in torch is several times faster than numpy's float16 conversion.
        self.full[layer] = weights.to("cpu", torch.float16).numpy()
        for name, values in layer_head_stats(layer_attention).items():
            self.stats[name][layer] = values

    def _wait(self) -> None:
        """Let the layer in flight finish; its error, if any, is raised here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def results(self) -> dict[str, object]:
        if self.builder is None:
            # Built once, on first request: the view of a short input needs only the full
            # map and the statistics; saving and caching build it (a background build
            # would take the cores from the next forward pass).
            full = self.full
            full.flags.writeable = False
            compact = Deferred(lambda: compact_from_full(full))
            return {"attention": self.full, "compact": compact, "stats": self.stats}
        self._wait()
        compact = self.builder.build()
        return {"attention": None, "compact": compact, "stats": compact.stats}


def _keep_full(model: LanguageModel, seq_len: int, max_bytes: int) -> bool:
    return model.info.n_layers * model.info.n_heads * seq_len * seq_len * 2 <= max_bytes


def _display_tokens(text: str, offsets: list[tuple[int, int]], pieces: list[str]) -> list[str]:
    """The text each token covers; special tokens (empty span) keep their own name."""
    return [text[s:e] if e > s else piece for (s, e), piece in zip(offsets, pieces, strict=True)]


def _probabilities(logits: np.ndarray) -> torch.Tensor:
    """Softmax of one position's ``[vocab]`` logits (torch: several times faster than numpy here)."""
    return torch.softmax(torch.from_numpy(logits).float(), dim=-1)


def _top_k(model: LanguageModel, probabilities: torch.Tensor, k: int) -> list[tuple[str, float]]:
    """The ``k`` most likely tokens of ``[vocab]`` probabilities, most likely first."""
    values, indices = torch.topk(probabilities, k)
    return [(model.decode([int(i)]), float(v)) for v, i in zip(values, indices, strict=True)]


def analyse(
    model: LanguageModel,
    request: AnalysisRequest,
    *,
    full_attention_max_bytes: int,
    progress: Progress = _no_progress,
) -> Analysis:
    """Run `request` on `model`; raises a HeadlightError for anything the user can fix."""
    if request.model_id != model.spec.id:
        raise ValueError(f"request is for {request.model_id}, model is {model.spec.id}")
    started = time.perf_counter()
    # One analysis is one unit of work on the model: no other session's run in between.
    with model.lock:
        if request.mode is AnalysisMode.GENERATE:
            if model.spec.kind != "causal":
                raise HeadlightError(
                    f"{model.spec.label} is an encoder: it cannot generate text. "
                    "Choose 'Encode' or a causal model."
                )
            analysis = _generate(model, request, full_attention_max_bytes, progress)
        else:
            analysis = _encode(model, request, full_attention_max_bytes, progress)
    elapsed = time.perf_counter() - started
    metrics.GENERATION_TIME.labels(model=model.spec.id, mode=request.mode.value).observe(elapsed)
    metrics.ANALYSES.labels(model=model.spec.id, mode=request.mode.value).inc()
    return analysis


def _encode(
    model: LanguageModel, request: AnalysisRequest, max_full_bytes: int, progress: Progress
) -> Analysis:
    text = request.text
    tokens = model.tokenize(text, add_special_tokens=True)
    limit = model.spec.max_input_tokens
    if len(tokens) > limit:
        raise InputTooLongError(len(tokens), limit, model.spec.label)
    info = model.info
    seq_len = len(tokens)
    sink = _AttentionSink(info.n_layers, info.n_heads, seq_len, _keep_full(model, seq_len, max_full_bytes))

    def on_layer(layer: int, weights: torch.Tensor) -> None:
        sink.add(layer, weights)
        progress((layer + 1) / info.n_layers, f"layer {layer + 1} of {info.n_layers}")

    forward_started = time.perf_counter()
    # Causal models only need the last position's logits (the next-token top-k).
    output = model.forward(tokens.ids, capture=Capture(attention=on_layer), logits="last")
    forward_s = time.perf_counter() - forward_started

    post_started = time.perf_counter()
    next_tokens: list[NextTokenStep] = []
    if output.logits is not None:
        candidates = _top_k(model, _probabilities(output.logits[-1]), request.top_k_next)
        next_tokens.append(NextTokenStep(seq_len, None, None, tuple(candidates)))
    return Analysis(
        request=request,
        model=info,
        text=text,
        tokens=_display_tokens(text, tokens.offsets, tokens.pieces),
        token_ids=tokens.ids,
        offsets=tokens.offsets,
        prompt_len=seq_len,
        **sink.results(),
        next_tokens=next_tokens,
        timings=Timings(forward_s=forward_s, postprocess_s=time.perf_counter() - post_started),
    )


def _prompt(model: LanguageModel, request: AnalysisRequest) -> tuple[str, Tokenized]:
    """The text fed to the model and its tokens (the chat template writes its own special tokens)."""
    if request.generation.use_chat_template:
        if not model.spec.chat_template or not model.has_chat_template:
            raise HeadlightError(f"{model.spec.label} has no chat template; turn the option off.")
        rendered = model.render_chat([{"role": "user", "content": request.text}])
        return rendered, model.tokenize(rendered, add_special_tokens=False)
    return request.text, model.tokenize(request.text, add_special_tokens=True)


def _generated_offsets(
    model: LanguageModel, generated_ids: list[int], base: int
) -> tuple[str, list[tuple[int, int]]]:
    """Decode the continuation and give each generated token its span in it.

    Decoding prefixes keeps spans exact even when one character spans several tokens.
    """
    offsets: list[tuple[int, int]] = []
    previous = 0
    for i in range(len(generated_ids)):
        length = len(model.decode(generated_ids[: i + 1]))
        start = min(previous, length)
        offsets.append((base + start, base + length))
        previous = max(previous, length)
    text = model.decode(generated_ids)
    return text, [(min(s, base + len(text)), min(e, base + len(text))) for s, e in offsets]


def _generate(
    model: LanguageModel, request: AnalysisRequest, max_full_bytes: int, progress: Progress
) -> Analysis:
    params = request.generation
    prompt_text, prompt = _prompt(model, request)
    limit = model.spec.max_input_tokens
    if len(prompt) + params.max_new_tokens > limit:
        raise InputTooLongError(len(prompt) + params.max_new_tokens, limit, model.spec.label)

    total = params.max_new_tokens

    def on_token(done: int) -> None:
        progress(min(done / total, 1.0), f"token {done} of {total}")

    sampling = Sampling(params.temperature, params.top_p, params.top_k) if params.do_sample else None
    forward_started = time.perf_counter()
    generation = model.generate(
        prompt.ids, max_new_tokens=total, sampling=sampling, seed=params.seed, on_token=on_token
    )
    forward_s = time.perf_counter() - forward_started

    post_started = time.perf_counter()
    info = model.info
    n_prompt, seq_len, ids = len(prompt), generation.seq_len, generation.ids
    sink = _AttentionSink(info.n_layers, info.n_heads, seq_len, _keep_full(model, seq_len, max_full_bytes))
    for layer in range(info.n_layers):
        sink.add(layer, generation.layer_attention(layer))

    generated_text, generated_offsets = _generated_offsets(model, ids[n_prompt:], len(prompt_text))
    next_tokens = []
    for step, logits in enumerate(generation.logits):
        position = n_prompt + step
        chosen = ids[position]
        probabilities = _probabilities(logits)
        candidates = _top_k(model, probabilities, request.top_k_next)
        next_tokens.append(
            NextTokenStep(position, model.decode([chosen]), float(probabilities[chosen]), tuple(candidates))
        )

    text = prompt_text + generated_text
    offsets = prompt.offsets + generated_offsets
    return Analysis(
        request=request,
        model=info,
        text=text,
        tokens=_display_tokens(text, offsets, model.token_strings(ids)),
        token_ids=ids,
        offsets=offsets,
        prompt_len=n_prompt,
        **sink.results(),
        next_tokens=next_tokens,
        timings=Timings(forward_s=forward_s, postprocess_s=time.perf_counter() - post_started),
    )
