"""Running a loaded model: encode (one forward pass) and generate, both with attention.

Attention is taken layer by layer from forward hooks on each attention module, reduced to
statistics and the compact form as it arrives, and kept in full (float16) only while it is
small. So peak memory never holds every layer's float32 attention at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from core.attention.compact import CompactBuilder, compact_from_full
from core.attention.stats import STAT_NAMES, layer_head_stats
from core.domain.analysis import Analysis, AnalysisMode, AnalysisRequest, NextTokenStep, Timings
from core.domain.errors import HeadlightError, InputTooLongError
from core.models.loading import LoadedModel
from core.ops import metrics

Progress = Callable[[float, str], None]

# Reduces one layer to the compact form while the model computes the next (numpy and torch
# both release the GIL). One worker for the process: reductions are CPU-bound anyway.
_REDUCER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attention-reduce")
# Builds the compact form of short inputs (kept in full) after the forward pass.
_COMPACTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attention-compact")


def _no_progress(_fraction: float, _message: str) -> None:
    return None


def attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The innermost module of each layer that returns attention weights, in layer order.

    Eager attention modules (LlamaAttention, Gemma3Attention, BertSelfAttention,
    GPT2Attention, ...) return ``(output, weights)``; the weights are ``[batch, head, q, k]``.
    """

    def is_attention(module: torch.nn.Module) -> bool:
        return type(module).__name__.endswith("Attention")

    return [
        module
        for module in model.modules()
        if is_attention(module) and not any(is_attention(child) for child in module.children())
    ]


LayerCallback = Callable[[int, torch.Tensor], None]


def _weights(output: object) -> torch.Tensor:
    """The ``[head, query, key]`` weights of batch item 0 from an attention module's output."""
    if not isinstance(output, tuple) or len(output) < 2 or output[1] is None:
        raise RuntimeError("attention weights missing: the model must use eager attention")
    return output[1][0]


@contextmanager
def attention_hooks(model: torch.nn.Module, n_layers: int, on_layer: LayerCallback) -> Iterator[None]:
    """Call ``on_layer(layer, weights[head, query, key])`` as each layer runs."""
    modules = attention_modules(model)
    if len(modules) != n_layers:
        raise RuntimeError(f"found {len(modules)} attention modules for {n_layers} layers")

    def make_hook(layer: int):
        def hook(_module: torch.nn.Module, _args: object, output: object) -> None:
            on_layer(layer, _weights(output))

        return hook

    handles = [module.register_forward_hook(make_hook(i)) for i, module in enumerate(modules)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class _StopForward(Exception):
    """Raised by `layer_attention`'s hook so that the model skips every later layer."""


def layer_attention(loaded: LoadedModel, token_ids: list[int], layer: int) -> np.ndarray:
    """One layer's attention ``[n_heads, seq_len, seq_len]`` float32 over ``token_ids``.

    The model runs only up to ``layer``: a hook on that layer's attention module takes the
    weights and stops the forward pass, so the cost grows with the depth of ``layer`` (the
    last layer costs about one forward). Feeding an analysis's ``token_ids`` reproduces the
    attention it saw, for generated analyses too (the final sequence in one pass).
    """
    n_layers = loaded.info.n_layers
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in 0 .. {n_layers - 1}, got {layer}.")
    if not token_ids:
        raise ValueError("token_ids is empty; pass the analysis's token ids.")
    captured: list[np.ndarray] = []

    def hook(_module: torch.nn.Module, _args: object, output: object) -> None:
        captured.append(_weights(output).detach().float().cpu().numpy())
        raise _StopForward

    input_ids = torch.tensor([token_ids], device=loaded.model.device)
    # The lock also covers the hook: another session's forward must never meet it.
    with loaded.lock, torch.inference_mode():
        modules = attention_modules(loaded.model)
        if len(modules) != n_layers:
            raise RuntimeError(f"found {len(modules)} attention modules for {n_layers} layers")
        handle = modules[layer].register_forward_hook(hook)
        try:
            loaded.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
        except _StopForward:
            pass
        finally:
            handle.remove()
    return captured[0]


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
            # Built once, off the request path: the view of a short input needs only the
            # full map and the statistics; saving and caching wait on the future.
            assert self.full is not None
            self.full.flags.writeable = False
            compact = _COMPACTOR.submit(compact_from_full, self.full)
            return {"attention": self.full, "compact": compact, "stats": self.stats}
        self._wait()
        compact = self.builder.build()
        return {"attention": None, "compact": compact, "stats": compact.stats}


def _keep_full(loaded: LoadedModel, seq_len: int, max_bytes: int) -> bool:
    return loaded.info.n_layers * loaded.info.n_heads * seq_len * seq_len * 2 <= max_bytes


def _display_tokens(text: str, offsets: list[tuple[int, int]], pieces: list[str]) -> list[str]:
    """The text each token covers; special tokens (empty span) keep their own name."""
    return [text[s:e] if e > s else piece for (s, e), piece in zip(offsets, pieces, strict=True)]


def _top_k(logits: torch.Tensor, k: int, tokenizer: object) -> list[tuple[str, float]]:
    probs = torch.softmax(logits.float(), dim=-1)
    values, indices = torch.topk(probs, k)
    decode = tokenizer.decode  # type: ignore[attr-defined]
    return [(decode([int(i)]), float(v)) for v, i in zip(values, indices, strict=True)]


def analyse(
    loaded: LoadedModel,
    request: AnalysisRequest,
    *,
    full_attention_max_bytes: int,
    progress: Progress = _no_progress,
) -> Analysis:
    """Run `request` on `loaded`; raises a HeadlightError for anything the user can fix."""
    if request.model_id != loaded.spec.id:
        raise ValueError(f"request is for {request.model_id}, model is {loaded.spec.id}")
    started = time.perf_counter()
    with loaded.lock, torch.inference_mode():
        if request.mode is AnalysisMode.GENERATE:
            if loaded.spec.kind != "causal":
                raise HeadlightError(
                    f"{loaded.spec.label} is an encoder: it cannot generate text. "
                    "Choose 'Encode' or a causal model."
                )
            analysis = _generate(loaded, request, full_attention_max_bytes, progress)
        else:
            analysis = _encode(loaded, request, full_attention_max_bytes, progress)
    elapsed = time.perf_counter() - started
    metrics.GENERATION_TIME.labels(model=loaded.spec.id, mode=request.mode.value).observe(elapsed)
    metrics.ANALYSES.labels(model=loaded.spec.id, mode=request.mode.value).inc()
    return analysis


def _tokenize(loaded: LoadedModel, text: str, add_special_tokens: bool) -> tuple[list[int], list]:
    encoding = loaded.tokenizer(text, return_offsets_mapping=True, add_special_tokens=add_special_tokens)
    offsets = [(int(s), int(e)) for s, e in encoding["offset_mapping"]]
    return list(encoding["input_ids"]), offsets


def _encode(
    loaded: LoadedModel, request: AnalysisRequest, max_full_bytes: int, progress: Progress
) -> Analysis:
    text = request.text
    ids, offsets = _tokenize(loaded, text, add_special_tokens=True)
    limit = loaded.spec.max_input_tokens
    if len(ids) > limit:
        raise InputTooLongError(len(ids), limit, loaded.spec.label)
    info = loaded.info
    seq_len = len(ids)
    sink = _AttentionSink(info.n_layers, info.n_heads, seq_len, _keep_full(loaded, seq_len, max_full_bytes))

    def on_layer(layer: int, weights: torch.Tensor) -> None:
        sink.add(layer, weights)
        progress((layer + 1) / info.n_layers, f"layer {layer + 1} of {info.n_layers}")

    device = loaded.model.device
    input_ids = torch.tensor([ids], device=device)
    forward_started = time.perf_counter()
    # Causal models only need the last position's logits (the next-token top-k).
    extra = {"logits_to_keep": 1} if loaded.spec.kind == "causal" else {}
    with attention_hooks(loaded.model, info.n_layers, on_layer):
        output = loaded.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **extra)
    forward_s = time.perf_counter() - forward_started

    post_started = time.perf_counter()
    next_tokens: list[NextTokenStep] = []
    if loaded.spec.kind == "causal":
        candidates = _top_k(output.logits[0, -1], request.top_k_next, loaded.tokenizer)
        next_tokens.append(NextTokenStep(seq_len, None, None, tuple(candidates)))
    pieces = loaded.tokenizer.convert_ids_to_tokens(ids)
    return Analysis(
        request=request,
        model=info,
        text=text,
        tokens=_display_tokens(text, offsets, pieces),
        token_ids=ids,
        offsets=offsets,
        prompt_len=seq_len,
        **sink.results(),
        next_tokens=next_tokens,
        timings=Timings(forward_s=forward_s, postprocess_s=time.perf_counter() - post_started),
    )


class _StepProgress(StoppingCriteria):
    """Reports each generated token; never stops generation itself."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        self.done += 1
        self.progress(min(self.done / self.total, 1.0), f"token {self.done} of {self.total}")
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _prompt(loaded: LoadedModel, request: AnalysisRequest) -> tuple[str, bool]:
    """The text fed to the model, and whether the tokenizer should add special tokens."""
    if request.generation.use_chat_template:
        if not loaded.spec.chat_template or not loaded.tokenizer.chat_template:
            raise HeadlightError(f"{loaded.spec.label} has no chat template; turn the option off.")
        messages = [{"role": "user", "content": request.text}]
        rendered = loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(rendered), False
    return request.text, True


def _generated_offsets(
    tokenizer: object, generated_ids: list[int], base: int
) -> tuple[str, list[tuple[int, int]]]:
    """Decode the continuation and give each generated token its span in it.

    Decoding prefixes keeps spans exact even when one character spans several tokens.
    """
    decode = tokenizer.decode  # type: ignore[attr-defined]
    offsets: list[tuple[int, int]] = []
    previous = 0
    for i in range(len(generated_ids)):
        length = len(decode(generated_ids[: i + 1]))
        start = min(previous, length)
        offsets.append((base + start, base + length))
        previous = max(previous, length)
    text = decode(generated_ids)
    return text, [(min(s, base + len(text)), min(e, base + len(text))) for s, e in offsets]


def _generate(
    loaded: LoadedModel, request: AnalysisRequest, max_full_bytes: int, progress: Progress
) -> Analysis:
    params = request.generation
    prompt_text, add_special = _prompt(loaded, request)
    prompt_ids, prompt_offsets = _tokenize(loaded, prompt_text, add_special_tokens=add_special)
    limit = loaded.spec.max_input_tokens
    if len(prompt_ids) + params.max_new_tokens > limit:
        raise InputTooLongError(len(prompt_ids) + params.max_new_tokens, limit, loaded.spec.label)

    model, tokenizer, info = loaded.model, loaded.tokenizer, loaded.info
    input_ids = torch.tensor([prompt_ids], device=model.device)
    sampling = (
        {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k}
        if params.do_sample
        else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    )
    forward_started = time.perf_counter()
    with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
        torch.manual_seed(params.seed)
        out = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=params.max_new_tokens,
            output_attentions=True,
            output_logits=True,
            return_dict_in_generate=True,
            stopping_criteria=StoppingCriteriaList([_StepProgress(params.max_new_tokens, progress)]),
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            **sampling,
        )
        sequence = out.sequences[0]
        # The last generated token was never fed back; one cached step gives its row.
        last = model(
            input_ids=sequence[-1:].unsqueeze(0),
            attention_mask=torch.ones_like(sequence).unsqueeze(0),
            past_key_values=out.past_key_values,
            output_attentions=True,
        )
    forward_s = time.perf_counter() - forward_started

    post_started = time.perf_counter()
    n_prompt, seq_len = len(prompt_ids), int(sequence.shape[0])
    sink = _AttentionSink(info.n_layers, info.n_heads, seq_len, _keep_full(loaded, seq_len, max_full_bytes))
    steps = [*out.attentions, last.attentions]  # step s: per layer [1, head, q, P + s]
    for layer in range(info.n_layers):
        layer_attention = torch.zeros(info.n_heads, seq_len, seq_len, dtype=torch.float32)
        layer_attention[:, :n_prompt, :n_prompt] = steps[0][layer][0].float().cpu()
        for step in range(1, len(steps)):
            row = n_prompt + step - 1
            layer_attention[:, row, : row + 1] = steps[step][layer][0, :, -1].float().cpu()
        sink.add(layer, layer_attention)

    generated_ids = sequence[n_prompt:].tolist()
    generated_text, generated_offsets = _generated_offsets(tokenizer, generated_ids, len(prompt_text))
    next_tokens = []
    for step, logits in enumerate(out.logits):
        position = n_prompt + step
        chosen = int(sequence[position])
        probability = float(torch.softmax(logits[0].float(), dim=-1)[chosen])
        candidates = _top_k(logits[0], request.top_k_next, tokenizer)
        next_tokens.append(
            NextTokenStep(position, tokenizer.decode([chosen]), probability, tuple(candidates))
        )

    text = prompt_text + generated_text
    offsets = prompt_offsets + generated_offsets
    ids = sequence.tolist()
    return Analysis(
        request=request,
        model=info,
        text=text,
        tokens=_display_tokens(text, offsets, tokenizer.convert_ids_to_tokens(ids)),
        token_ids=ids,
        offsets=offsets,
        prompt_len=n_prompt,
        **sink.results(),
        next_tokens=next_tokens,
        timings=Timings(forward_s=forward_s, postprocess_s=time.perf_counter() - post_started),
    )
