"""The one request type and the one result type that cross every boundary.

Attention arrays are always shaped ``[layer, head, query, key]`` (``n_layers, n_heads,
seq_len, seq_len``). Pages never see tensors: everything here is numpy or plain Python.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.domain.compact import CompactAttention

# Bumped whenever the shape of `Analysis` or its compact form changes: it is part of every
# cache key, so stale cached results are never served after an upgrade.
SCHEMA_VERSION = 2  # 2: one codec for cache, database and exports

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


@dataclass(frozen=True)
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


class Deferred:
    """The compact form of a short input, computed at most once, on first request.

    Its producer hands over the function that builds it; the first reader (the save, the
    cache writer, an export) runs it under a lock and every later reader, on any thread,
    gets the same object. The interactive view of a short input never asks, so it never
    pays for it.
    """

    __slots__ = ("_build", "_lock", "_value")

    def __init__(self, build: Callable[[], CompactAttention]) -> None:
        self._build: Callable[[], CompactAttention] | None = build
        self._lock = threading.Lock()
        self._value: CompactAttention | None = None

    def result(self) -> CompactAttention:
        with self._lock:
            if self._build is not None:
                self._value, self._build = self._build(), None
        assert self._value is not None
        return self._value


class Analysis:
    """One analysis result: tokens, attention, next-token distributions, timings. Immutable.

    ``text`` is what the tokens cover (the prompt as fed to the model, plus the
    continuation); ``offsets[i]`` is token i's ``(start, end)`` character span in it.
    ``attention`` is the full form, ``[n_layers, n_heads, seq_len, seq_len]`` float16, kept
    only while it is small enough. ``compact`` (statistics, overview maps, top-k per query)
    exists for every length and is built once, as its producer says: long inputs build it
    layer by layer during the forward pass; short ones hand over a `Deferred` that builds it
    from the full form on first request (under a lock), so the interactive path never pays
    for it and every reader (cache, save, export) gets the same object. ``stats`` maps each statistic of
    `core.attention.stats` to ``[n_layers, n_heads]``.

    Nothing changes after construction: `replace` returns a changed copy (the service marks
    cache hits and load times that way). Lists handed in are the analysis's own; callers
    must not mutate them.
    """

    __slots__ = (
        "__weakref__",  # the save panel remembers which analysis it saved by a weak reference
        "_compact",
        "_stats",
        "attention",
        "cache_hit",
        "model",
        "next_tokens",
        "offsets",
        "prompt_len",
        "request",
        "text",
        "timings",
        "token_ids",
        "tokens",
    )

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
        compact: CompactAttention | Deferred,
        attention: np.ndarray | None = None,
        stats: dict[str, np.ndarray] | None = None,
        next_tokens: list[NextTokenStep] | None = None,
        timings: Timings | None = None,
        cache_hit: bool = False,
    ) -> None:
        if compact is None:
            raise ValueError("an Analysis needs its compact form (or the future that builds it)")
        if attention is not None:
            attention.flags.writeable = False
        values = {
            "request": request,
            "model": model,
            "text": text,
            "tokens": tokens,
            "token_ids": token_ids,
            "offsets": offsets,
            "prompt_len": prompt_len,
            "attention": attention,
            "_compact": compact,
            "_stats": stats,
            "next_tokens": next_tokens or [],
            "timings": timings or Timings(),
            "cache_hit": cache_hit,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Analysis is immutable: use analysis.replace({name}=...)")

    def replace(self, **changes: object) -> Analysis:
        """A copy with ``changes`` applied (same arguments as the constructor)."""
        fields = {
            "request": self.request,
            "model": self.model,
            "text": self.text,
            "tokens": self.tokens,
            "token_ids": self.token_ids,
            "offsets": self.offsets,
            "prompt_len": self.prompt_len,
            "compact": self._compact,
            "attention": self.attention,
            "stats": self._stats,
            "next_tokens": self.next_tokens,
            "timings": self.timings,
            "cache_hit": self.cache_hit,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"Analysis has no field(s) {sorted(unknown)}")
        return Analysis(**{**fields, **changes})  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (
            f"Analysis(model={self.model.model_id!r}, mode={self.request.mode.value!r}, "
            f"seq_len={self.seq_len}, prompt_len={self.prompt_len}, "
            f"full={'yes' if self.attention is not None else 'no'})"
        )

    @property
    def compact(self) -> CompactAttention:
        """The compact form; waits for the producer's worker if it is still being built."""
        compact = self._compact
        return compact.result() if isinstance(compact, Deferred) else compact

    @property
    def stats(self) -> dict[str, np.ndarray]:
        return self._stats if self._stats is not None else self.compact.stats

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


@dataclass(frozen=True)
class AnalysisForm:
    """What a person typed for one run, before validation: the input of
    `AnalysisService.submit`, which redacts, validates and checks it in one place."""

    model_id: str
    text: str
    mode: AnalysisMode = AnalysisMode.ENCODE
    generation: Mapping[str, object] = field(default_factory=dict)
    top_k_next: int = 5
    redact: bool = False


@dataclass(frozen=True)
class RunResult:
    """One served run: the analysis and how many values of each kind were redacted first."""

    analysis: Analysis
    redactions: Mapping[str, int] = field(default_factory=dict)
