"""The one request type and the one result type that cross every boundary.

Attention arrays are always shaped ``[layer, head, query, key]`` (``n_layers, n_heads,
seq_len, seq_len``). Pages never see tensors: everything here is numpy or plain Python.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from core.attention.compact import CompactAttention

# Bumped whenever the shape of `Analysis` or its compact form changes: it is part of every
# cache key, so stale cached results are never served after an upgrade.
SCHEMA_VERSION = 1

MAX_TEXT_CHARS = 20_000
MAX_NEW_TOKENS = 256
MAX_TOP_K_NEXT = 20

# Control characters other than tab/newline/carriage return are stripped; NUL is refused
# outright because it usually means a binary file was pasted.
_CONTROL_CHARS = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


class AnalysisMode(StrEnum):
    ENCODE = "encode"
    GENERATE = "generate"


class GenerationParams(BaseModel):
    """Decoding settings. Greedy unless ``do_sample``; ``seed`` makes sampling reproducible."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = Field(default=20, ge=1, le=MAX_NEW_TOKENS)
    do_sample: bool = False
    temperature: float = Field(default=1.0, gt=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=50, ge=0, le=1000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    use_chat_template: bool = False


class AnalysisRequest(BaseModel):
    """What the user asked for. Validated on construction; registry checks come later."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1, max_length=200)
    text: str
    mode: AnalysisMode = AnalysisMode.ENCODE
    generation: GenerationParams = GenerationParams()
    top_k_next: int = Field(default=5, ge=1, le=MAX_TOP_K_NEXT)

    @field_validator("text")
    @classmethod
    def _clean_text(cls, text: str) -> str:
        if "\x00" in text:
            raise ValueError("The text contains a NUL character; paste plain text, not a binary file.")
        text = _CONTROL_CHARS.sub("", unicodedata.normalize("NFC", text))
        if not text.strip():
            raise ValueError("Enter some text to analyse.")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(
                f"The text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}. Shorten it."
            )
        return text

    def cache_key(self, revision: str) -> str:
        """sha256 over everything that changes the result, including the schema version."""
        payload = {
            "schema": SCHEMA_VERSION,
            "model_id": self.model_id,
            "revision": revision,
            "text": self.text,
            "mode": self.mode.value,
            "generation": self.generation.model_dump() if self.mode is AnalysisMode.GENERATE else None,
            "top_k_next": self.top_k_next,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """What the rest of the app may know about a loaded model."""

    model_id: str
    revision: str
    kind: str  # "causal" | "encoder"
    architecture: str
    n_layers: int
    n_heads: int
    device: str
    dtype: str


@dataclass(frozen=True)
class NextTokenStep:
    """The model's distribution at one position: the token that followed and the top-k."""

    position: int  # index in `Analysis.tokens` of the token that followed (may be seq_len)
    token: str | None  # None where nothing followed yet (the end of an encoded text)
    probability: float | None
    candidates: tuple[tuple[str, float], ...]  # (token, probability), most likely first


@dataclass
class Timings:
    load_s: float = 0.0
    forward_s: float = 0.0
    postprocess_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.load_s + self.forward_s + self.postprocess_s


@dataclass
class HeadStats:
    """Per-head summaries, each ``[n_layers, n_heads]``."""

    entropy: np.ndarray  # mean over queries of row entropy, nats
    mean_distance: np.ndarray  # mean over queries of expected |query - key|, tokens

    def as_dict(self) -> dict[str, list[list[float]]]:
        return {"entropy": self.entropy.tolist(), "mean_distance": self.mean_distance.tolist()}


class Analysis:
    """One analysis result: tokens, attention, next-token distributions, timings.

    ``text`` is what the tokens cover (the prompt as fed to the model, plus the
    continuation); ``offsets[i]`` is token i's ``(start, end)`` character span in it.
    ``attention`` is the full form, ``[n_layers, n_heads, seq_len, seq_len]`` float16, kept
    only while it is small enough. ``compact`` (statistics, overview maps, top-k per query)
    exists for every length: long inputs build it layer by layer during the forward pass;
    short ones, which keep the full form, build it from that on first use, so the
    interactive path does not pay for it. ``stats`` maps each statistic of `core.attention.stats` to
    ``[n_layers, n_heads]``.
    """

    def __init__(
        self,
        *,
        request: AnalysisRequest,
        model: ModelInfo,
        text: str,
        tokens: list[str],
        token_ids: list[int],
        offsets: list[tuple[int, int]],
        prompt_len: int,
        compact: CompactAttention | None = None,
        attention: np.ndarray | None = None,
        stats: dict[str, np.ndarray] | None = None,
        next_tokens: list[NextTokenStep] | None = None,
        timings: Timings | None = None,
    ) -> None:
        if compact is None and attention is None:
            raise ValueError("an Analysis needs its compact form, its full attention, or both")
        self.request = request
        self.model = model
        self.text = text
        self.tokens = tokens
        self.token_ids = token_ids
        self.offsets = offsets
        self.prompt_len = prompt_len
        self.attention = attention
        self._compact = compact
        self._stats = stats
        self.next_tokens = next_tokens or []
        self.timings = timings or Timings()
        self.cache_hit = False  # set by the service when served from the result cache

    def __repr__(self) -> str:
        return (
            f"Analysis(model={self.model.model_id!r}, mode={self.request.mode.value!r}, "
            f"seq_len={self.seq_len}, prompt_len={self.prompt_len}, "
            f"full={'yes' if self.attention is not None else 'no'})"
        )

    @property
    def compact(self) -> CompactAttention:
        if self._compact is None:
            from core.attention.compact import compact_from_full

            assert self.attention is not None
            self._compact = compact_from_full(self.attention)
        return self._compact

    @property
    def stats(self) -> dict[str, np.ndarray]:
        if self._stats is None:
            self._stats = self.compact.stats
        return self._stats

    @property
    def head_stats(self) -> HeadStats:
        return HeadStats(entropy=self.stats["entropy"], mean_distance=self.stats["mean_distance"])

    @property
    def seq_len(self) -> int:
        return len(self.tokens)

    @property
    def generated_text(self) -> str:
        if self.prompt_len >= self.seq_len:
            return ""
        return self.text[self.offsets[self.prompt_len][0] :]

    @property
    def prompt_text(self) -> str:
        if self.prompt_len >= self.seq_len:
            return self.text
        return self.text[: self.offsets[self.prompt_len][0]]
