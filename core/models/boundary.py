"""The one model boundary: what a loaded language model offers the rest of Headlight.

`LanguageModel` is the protocol; `core.models.huggingface` is its one implementation and the
only code that touches a transformers object. Everything crossing the boundary is plain
Python, numpy, or (for per-layer callbacks, where a copy would cost time) torch tensors.

Shapes follow the house names: ``layer``, ``head``, ``query`` and ``key``
positions, ``head_dim``, ``hidden``, ``vocab``. The aliases below name a tensor's dimensions;
the aliases are documentation (they are plain ``torch.Tensor`` / ``np.ndarray`` to a type
checker). Every array is for one sequence: there is no batch dimension.

Tensors handed to callbacks live on the model's device in the model's dtype and are only
valid during the call (they belong to the forward pass): reduce them, or copy what must be
kept (``tensor.detach().to("cpu", torch.float16)`` is several times faster than numpy's cast).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias, runtime_checkable

import numpy as np
import torch

from core.domain.analysis import ModelInfo
from core.models.registry import ModelSpec

HeadQueryKey: TypeAlias = torch.Tensor
"""One layer's attention weights ``[head, query, key]``: softmax rows (each sums to 1)."""

HeadQueryDim: TypeAlias = torch.Tensor
"""Per query head and position ``[head, query, head_dim]``: queries, or per-head outputs."""

KvHeadKeyDim: TypeAlias = torch.Tensor
"""Per key/value head and position ``[kv_head, key, head_dim]``. With grouped-query attention
``kv_head < head``: query head ``h`` reads key/value head ``h // (n_heads // n_kv_heads)``."""

QueryHidden: TypeAlias = torch.Tensor
"""The residual stream ``[query, hidden]``."""

PositionVocab: TypeAlias = np.ndarray
"""Logits ``[position, vocab]`` float32 (numpy, on the CPU)."""

LayerAttentionArray: TypeAlias = np.ndarray
"""One layer's attention ``[head, query, key]`` float32 (numpy, on the CPU)."""

Messages: TypeAlias = Sequence[Mapping[str, str]]
"""Chat messages, e.g. ``[{"role": "user", "content": "Hello"}]``."""

LogitsWanted = Literal["last", "all", "none"]


@dataclass(frozen=True)
class Tokenized:
    """A text as the model sees it: one entry per token, in order.

    ``offsets[i]`` is the ``(start, end)`` character span of ``text`` that token ``i`` covers;
    special tokens the tokenizer adds cover nothing (``start == end``). ``pieces[i]`` is the
    tokenizer's own string for the token (``"Ġthe"``, ``"▁the"``, ``"[CLS]"``).
    """

    ids: list[int]
    offsets: list[tuple[int, int]]
    pieces: list[str]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Capture:
    """What a forward pass hands over, layer by layer, as each layer runs.

    Each callback gets the layer index first. Layers run in order, so a callback may reduce
    and drop what it gets (memory stays at one layer's worth). ``layers`` limits the captures
    to those layers (None: every layer).

    - ``attention(layer, weights)``: `HeadQueryKey`, the softmax weights;
    - ``queries_keys(layer, queries, keys)``: `HeadQueryDim` and `KvHeadKeyDim`, after the
      rotary embedding and any q/k norm, exactly what the scores are computed from:
      ``softmax(queries[h] @ keys[h // group].T * scale + mask)`` is ``weights[h]``, where
      ``scale`` is `LanguageModel.attention_scale` and the mask is causal for causal models
      (and windowed on sliding-window layers);
    - ``head_outputs(layer, outputs)``: `HeadQueryDim`, each head's weighted values, before
      the output projection mixes the heads (the attention block's output is
      ``sum_h o_proj.weight[:, h*d:(h+1)*d] @ outputs[h]`` plus any bias);
    - ``residual(layer, hidden)``: `QueryHidden`, the residual stream after the layer.
    """

    attention: Callable[[int, HeadQueryKey], None] | None = None
    queries_keys: Callable[[int, HeadQueryDim, KvHeadKeyDim], None] | None = None
    head_outputs: Callable[[int, HeadQueryDim], None] | None = None
    residual: Callable[[int, QueryHidden], None] | None = None
    layers: Collection[int] | None = None

    def wants(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers


@dataclass(frozen=True)
class Forward:
    """The result of one forward pass.

    ``logits`` is `PositionVocab`: the last position only (``[1, vocab]``) or every position
    (``[seq_len, vocab]``), as asked; None for encoders (no language-model head) and when no
    logits were asked for.
    """

    logits: PositionVocab | None


@dataclass(frozen=True)
class Sampling:
    """Sampling settings for `LanguageModel.generate`; greedy decoding when there is none."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50


@dataclass(frozen=True)
class Generation:
    """The result of step-by-step generation from a prompt of ``prompt_len`` tokens.

    - ``ids``: the whole sequence, prompt then generated tokens (``seq_len`` of them);
    - ``attention[step][layer]``: step 0 is the prompt, `HeadQueryKey` ``[head, prompt_len,
      prompt_len]``; step ``s >= 1`` is one row ``[head, prompt_len + s]``: the attention of
      query position ``prompt_len + s - 1`` (the ``s``-th generated token, fed back) over keys
      ``0 .. prompt_len + s - 1``. There is one step per generated token, so every position
      has its row. Torch tensors on the model's device, in its dtype.
    - ``logits``: `PositionVocab` ``[step, vocab]``: row ``s`` are the logits that chose token
      ``ids[prompt_len + s]`` (before any sampling filter).
    """

    ids: list[int]
    prompt_len: int
    attention: tuple[tuple[torch.Tensor, ...], ...]
    logits: PositionVocab

    @property
    def seq_len(self) -> int:
        return len(self.ids)

    def layer_attention(self, layer: int) -> torch.Tensor:
        """The rows of ``layer`` assembled: ``[head, seq_len, seq_len]`` float32 on the CPU.

        Equals one forward pass over ``ids`` (up to float error): the prompt block, then one
        row per generated token; zero above the diagonal.
        """
        prompt = self.attention[0][layer]
        n_heads, n_prompt, seq_len = prompt.shape[0], self.prompt_len, self.seq_len
        assembled = torch.zeros(n_heads, seq_len, seq_len, dtype=torch.float32)
        assembled[:, :n_prompt, :n_prompt] = prompt.float().cpu()
        for step in range(1, len(self.attention)):
            row = n_prompt + step - 1
            assembled[:, row, : row + 1] = self.attention[step][layer].float().cpu()
        return assembled


@runtime_checkable
class Tokenizer(Protocol):
    """The tokenizer half of a model: text to token ids and back."""

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids of the tokenizer's special tokens (``[CLS]``, ``<s>``, ``<|im_start|>``...)."""
        ...

    @property
    def unk_id(self) -> int | None:
        """The unknown token's id; None when the tokenizer has none (byte-level BPE)."""
        ...

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> Tokenized:
        """``text`` as token ids with character offsets (`Tokenized`)."""
        ...

    def token_ids(self, texts: Sequence[str], *, add_special_tokens: bool = True) -> list[list[int]]:
        """Each text's token ids, no offsets: many texts at once (about twice as fast per text)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` together (special tokens included)."""
        ...

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """The tokenizer's own string for each id (``"Ġthe"``, ``"<0xE2>"``, ``"[CLS]"``)."""
        ...


@runtime_checkable
class LanguageModel(Tokenizer, Protocol):
    """A loaded model ready for inference.

    Every method that runs the model takes ``lock`` itself (it is re-entrant): a caller that
    needs several calls without another session's work in between holds it around them.
    No method keeps anything between calls; results are new objects.
    """

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def info(self) -> ModelInfo: ...

    @property
    def lock(self) -> threading.RLock:
        """Serialises use of the model across the sessions and jobs sharing it."""
        ...

    @property
    def nbytes(self) -> int:
        """Bytes of weights and buffers (what the pool budgets)."""
        ...

    @property
    def load_seconds(self) -> float: ...

    @property
    def device(self) -> str:
        """Where the model runs: ``"cpu"``, ``"cuda"``, ``"mps"`` (as in `ModelInfo.device`)."""
        ...

    @property
    def attention_scale(self) -> float:
        """The factor the query-key products are multiplied by before the softmax."""
        ...

    @property
    def has_chat_template(self) -> bool: ...

    def render_chat(self, messages: Messages) -> str:
        """``messages`` through the model's chat template, ending with the assistant's turn.

        Tokenize the result with ``add_special_tokens=False`` (the template wrote them).
        Raises ValueError when the model has no chat template.
        """
        ...

    def forward(
        self, ids: Sequence[int], *, capture: Capture | None = None, logits: LogitsWanted = "last"
    ) -> Forward:
        """One pass over ``ids``, calling ``capture``'s callbacks as each layer runs."""
        ...

    def generate(
        self,
        ids: Sequence[int],
        *,
        max_new_tokens: int,
        sampling: Sampling | None = None,
        seed: int = 0,
        on_token: Callable[[int], None] | None = None,
    ) -> Generation:
        """Continue ``ids`` token by token (causal models only), keeping every step's attention
        and logits (`Generation`). ``on_token(n)`` is called after the ``n``-th new token.
        Greedy without ``sampling``; with it, ``seed`` makes the draw reproducible. Generation
        stops early at the end-of-text token.
        """
        ...

    def layer_attention(self, ids: Sequence[int], layer: int) -> LayerAttentionArray:
        """One layer's attention over ``ids``: ``[head, query, key]`` float32 (numpy).

        Runs the model only up to ``layer``, so the cost grows with its depth. Feeding an
        analysis's token ids reproduces the attention it saw, for generated text too.
        Raises ValueError for a layer outside the model or no ids.
        """
        ...
