"""`HuggingFaceModel`: the `LanguageModel` protocol over a transformers model and tokenizer.

Attention weights come from a forward hook on each layer's attention module (eager attention
returns ``(output, weights)``), so they can be reduced layer by layer without the model
keeping every layer. Queries and keys come from the attention function itself: the model
runs `EAGER_WITH_CAPTURE`, transformers' own eager attention of the model's family registered
under another name with `AttentionInterface`; it hands the queries and keys (after rotary
embeddings and q/k norms) to the forward that asked for them. Per-head outputs come from a
pre-hook on the output projection, the residual stream from a hook on each decoder layer.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np
import torch
from transformers import (
    AttentionInterface,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from core.domain.analysis import ModelInfo
from core.models.boundary import (
    Capture,
    Forward,
    Generation,
    LogitsWanted,
    Messages,
    Sampling,
    Tokenized,
)
from core.models.registry import ModelSpec

EAGER_WITH_CAPTURE = "headlight_eager"

# The queries/keys callback of the forward running in this thread (None: nobody asked).
_QUERY_KEY_SINK: contextvars.ContextVar[
    Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], None] | None
] = contextvars.ContextVar("headlight_query_key_sink", default=None)


def _family_eager(module: torch.nn.Module) -> Callable[..., Any] | None:
    """The eager attention function of ``module``'s model family (each modeling file has one)."""
    return getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)


def _eager_with_capture(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention that first shows ``query`` ``[1, head, q, d]`` and ``key`` ``[1, kv_head, k, d]``
    to the forward that asked for them."""
    sink = _QUERY_KEY_SINK.get()
    if sink is not None:
        sink(module, query[0], key[0])
    eager = _family_eager(module)
    assert eager is not None  # only models whose every attention module has one use this name
    return eager(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(EAGER_WITH_CAPTURE, _eager_with_capture)
# The same masks as eager (additive, causal or windowed as the layer needs).
AttentionMaskInterface.register(EAGER_WITH_CAPTURE, eager_mask)


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


def _decoder_layers(model: torch.nn.Module, attention: list[torch.nn.Module]) -> list[torch.nn.Module]:
    """The layer list's entries, one per attention module (the residual stream leaves each)."""
    for module in model.modules():
        if (
            isinstance(module, torch.nn.ModuleList)
            and len(module) == len(attention)
            and all(
                any(inner is att for inner in layer.modules())
                for layer, att in zip(module, attention, strict=True)
            )
        ):
            return list(module)
    raise ValueError(
        f"{type(model).__name__}: no list of {len(attention)} layers holds its attention modules."
    )


def _output_projection(model: torch.nn.Module, attention: torch.nn.Module) -> torch.nn.Module:
    """The linear map that mixes the heads' outputs back into the residual stream."""
    for name in ("o_proj", "out_proj", "c_proj", "dense"):
        child = getattr(attention, name, None)
        if isinstance(child, torch.nn.Module):
            return child
    # BERT-style: the self-attention's sibling ``output.dense`` (then dropout, residual and norm).
    for parent in model.modules():
        output = getattr(parent, "output", None)
        if any(child is attention for child in parent.children()) and isinstance(
            getattr(output, "dense", None), torch.nn.Module
        ):
            return output.dense  # type: ignore[union-attr]
    raise ValueError(f"{type(attention).__name__} has no output projection Headlight knows.")


def _weights(output: object) -> torch.Tensor:
    """The ``[head, query, key]`` weights of batch item 0 from an attention module's output."""
    if not isinstance(output, tuple) or len(output) < 2 or output[1] is None:
        raise RuntimeError("attention weights missing: the model must use eager attention")
    return output[1][0]


class _StopForward(Exception):
    """Raised by `layer_attention`'s hook so that the model skips every later layer."""


class _TokenCounter(StoppingCriteria):
    """Reports each generated token; never stops generation itself."""

    def __init__(self, on_token: Callable[[int], None]) -> None:
        self.done, self.on_token = 0, on_token

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        self.done += 1
        self.on_token(self.done)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def weight_bytes(model: torch.nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class HuggingFaceModel:
    """A transformers model and its tokenizer behind the `LanguageModel` protocol.

    Built by `core.models.huggingface.loading.load_model` (or, in tests, from a model made
    from a config). The transformers objects stay inside; ``hf_model`` and ``hf_tokenizer``
    exist for tests and benchmarks that measure against plain transformers, and nothing else
    uses them (a test checks).
    """

    def __init__(
        self,
        spec: ModelSpec,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        device: str | None = None,
        load_seconds: float = 0.0,
    ) -> None:
        """``device`` names where the model runs as the loader chose it (``"cuda"``); by default
        its parameters' device."""
        self.spec = spec
        self._model = model
        self._tokenizer = tokenizer
        self.load_seconds = load_seconds
        self.lock = threading.RLock()
        self._attention = attention_modules(model)
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        n_layers = int(config.num_hidden_layers)
        if len(self._attention) != n_layers:
            raise RuntimeError(f"found {len(self._attention)} attention modules for {n_layers} layers")
        self._layer_of = {id(module): layer for layer, module in enumerate(self._attention)}
        self._n_heads = int(config.num_attention_heads)
        if all(_family_eager(module) is not None for module in self._attention):
            model.set_attn_implementation(EAGER_WITH_CAPTURE)
        first = self._attention[0]
        head_dim = getattr(first, "head_dim", None) or int(config.hidden_size) // self._n_heads
        self.attention_scale = float(getattr(first, "scaling", head_dim**-0.5))
        parameter = next(model.parameters())
        self.info = ModelInfo(
            model_id=spec.id,
            revision=spec.revision,
            kind=spec.kind,
            architecture=(model.config.architectures or [type(model).__name__])[0],
            n_layers=n_layers,
            n_heads=self._n_heads,
            device=device or str(parameter.device),
            dtype=str(parameter.dtype).removeprefix("torch."),
        )
        self.nbytes = weight_bytes(model)
        self.special_ids = frozenset(int(i) for i in getattr(tokenizer, "all_special_ids", None) or ())
        unk = getattr(tokenizer, "unk_token_id", None)
        self.unk_id = int(unk) if unk is not None else None

    def __repr__(self) -> str:
        return f"HuggingFaceModel({self.spec.id}@{self.spec.revision} on {self.device})"

    @property
    def hf_model(self) -> PreTrainedModel:
        """The transformers model, for tests and benchmarks only."""
        return self._model

    @property
    def hf_tokenizer(self) -> PreTrainedTokenizerBase:
        """The transformers tokenizer, for tests and benchmarks only."""
        return self._tokenizer

    @property
    def device(self) -> str:
        return self.info.device

    # --- Tokenizer ---------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> Tokenized:
        encoding = self._tokenizer(text, return_offsets_mapping=True, add_special_tokens=add_special_tokens)
        ids = [int(i) for i in encoding["input_ids"]]
        offsets = [(int(s), int(e)) for s, e in encoding["offset_mapping"]]
        return Tokenized(ids=ids, offsets=offsets, pieces=self.token_strings(ids))

    def token_ids(self, texts: Sequence[str], *, add_special_tokens: bool = True) -> list[list[int]]:
        encoded = self._tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
        return [list(ids) for ids in encoded]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids)))

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [str(piece) for piece in self._tokenizer.convert_ids_to_tokens(list(ids))]

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self._tokenizer, "chat_template", None))

    def render_chat(self, messages: Messages) -> str:
        if not self.has_chat_template:
            raise ValueError(f"{self.spec.label} has no chat template.")
        rendered = self._tokenizer.apply_chat_template(
            [dict(message) for message in messages], tokenize=False, add_generation_prompt=True
        )
        return str(rendered)

    # --- Running the model -------------------------------------------------------------------

    def _input(self, ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        input_ids = torch.tensor([list(ids)], device=self._model.device)
        return input_ids, torch.ones_like(input_ids)

    @contextmanager
    def _captures(self, capture: Capture) -> Iterator[None]:
        """Hooks (and the query/key sink) for ``capture``, removed on the way out."""
        with ExitStack() as stack:
            layers = [layer for layer in range(self.info.n_layers) if capture.wants(layer)]

            def hook(module: torch.nn.Module, register: str, function: Callable[..., None]) -> None:
                handle = getattr(module, register)(function)
                stack.callback(handle.remove)

            if capture.attention is not None:
                on_attention = capture.attention
                for layer in layers:
                    hook(
                        self._attention[layer],
                        "register_forward_hook",
                        lambda _m, _a, output, layer=layer: on_attention(layer, _weights(output)),
                    )
            if capture.head_outputs is not None:
                on_heads = capture.head_outputs
                n_heads = self._n_heads
                for layer in layers:

                    def split(_module: torch.nn.Module, args: tuple[Any, ...], layer: int = layer) -> None:
                        mixed = args[0][0]  # [query, head * head_dim]
                        on_heads(layer, mixed.view(mixed.shape[0], n_heads, -1).transpose(0, 1))

                    hook(
                        _output_projection(self._model, self._attention[layer]),
                        "register_forward_pre_hook",
                        split,
                    )
            if capture.residual is not None:
                on_residual = capture.residual
                decoder_layers = _decoder_layers(self._model, self._attention)
                for layer in layers:

                    def leave(_m: torch.nn.Module, _a: object, output: Any, layer: int = layer) -> None:
                        hidden = output[0] if isinstance(output, tuple) else output
                        on_residual(layer, hidden[0])

                    hook(decoder_layers[layer], "register_forward_hook", leave)
            if capture.queries_keys is not None:
                if self._model.config._attn_implementation != EAGER_WITH_CAPTURE:
                    raise ValueError(f"{self.info.architecture}: queries and keys cannot be captured.")
                on_qk, layer_of = capture.queries_keys, self._layer_of

                def sink(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor) -> None:
                    layer = layer_of[id(module)]
                    if capture.wants(layer):
                        on_qk(layer, query, key)

                token = _QUERY_KEY_SINK.set(sink)
                stack.callback(_QUERY_KEY_SINK.reset, token)
            yield

    def forward(
        self, ids: Sequence[int], *, capture: Capture | None = None, logits: LogitsWanted = "last"
    ) -> Forward:
        if not ids:
            raise ValueError("ids is empty; tokenize some text first.")
        input_ids, mask = self._input(ids)
        causal = self.spec.kind == "causal"
        # Causal models compute logits only where asked; the cache is never reused here.
        extra: dict[str, Any] = (
            {"use_cache": False, "logits_to_keep": 0 if logits == "all" else 1} if causal else {}
        )
        with self.lock, torch.inference_mode(), self._captures(capture or Capture()):
            output = self._model(input_ids=input_ids, attention_mask=mask, **extra)
        if not causal or logits == "none":
            return Forward(logits=None)
        return Forward(logits=output.logits[0].float().cpu().numpy())

    def generate(
        self,
        ids: Sequence[int],
        *,
        max_new_tokens: int,
        sampling: Sampling | None = None,
        seed: int = 0,
        on_token: Callable[[int], None] | None = None,
    ) -> Generation:
        if self.spec.kind != "causal":
            raise ValueError(f"{self.spec.label} is an encoder: it cannot generate text.")
        if not ids:
            raise ValueError("ids is empty; tokenize a prompt first.")
        model, tokenizer = self._model, self._tokenizer
        input_ids, mask = self._input(ids)
        options: dict[str, Any] = (
            {
                "do_sample": True,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "top_k": sampling.top_k,
            }
            if sampling is not None
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        if on_token is not None:
            options["stopping_criteria"] = StoppingCriteriaList([_TokenCounter(on_token)])
        device = model.device
        with (
            self.lock,
            torch.inference_mode(),
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        ):
            torch.manual_seed(seed)
            out = model.generate(
                input_ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                output_attentions=True,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                **options,
            )
            sequence = out.sequences[0]
            # The last generated token was never fed back; one cached step gives its row.
            last = model(
                input_ids=sequence[-1:].unsqueeze(0),
                attention_mask=torch.ones_like(sequence).unsqueeze(0),
                past_key_values=out.past_key_values,
                output_attentions=True,
            )
        # Per step a tuple over layers of [1, head, q, P + s]: the prompt block, then one row.
        steps = [*out.attentions, last.attentions]
        attention = (
            tuple(layer[0] for layer in steps[0]),
            *(tuple(layer[0, :, -1] for layer in step) for step in steps[1:]),
        )
        logits = torch.stack([step[0] for step in out.logits]).float().cpu().numpy()
        return Generation(ids=sequence.tolist(), prompt_len=len(ids), attention=attention, logits=logits)

    def layer_attention(self, ids: Sequence[int], layer: int) -> np.ndarray:
        n_layers = self.info.n_layers
        if not 0 <= layer < n_layers:
            raise ValueError(f"layer must be in 0 .. {n_layers - 1}, got {layer}.")
        if not ids:
            raise ValueError("token_ids is empty; pass the analysis's token ids.")
        captured: list[np.ndarray] = []

        def hook(_module: torch.nn.Module, _args: object, output: object) -> None:
            captured.append(_weights(output).detach().float().cpu().numpy())
            raise _StopForward

        input_ids, mask = self._input(ids)
        # The lock also covers the hook: another session's forward must never meet it.
        with self.lock, torch.inference_mode():
            handle = self._attention[layer].register_forward_hook(hook)
            try:
                self._model(input_ids=input_ids, attention_mask=mask)
            except _StopForward:
                pass
            finally:
                handle.remove()
        return captured[0]
