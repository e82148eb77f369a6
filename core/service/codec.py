"""A whole `Analysis` as bytes, for the result cache. No pickle: JSON plus raw arrays.

Layout, integers little-endian:

- magic ``b"HLAN"``, uint16 format version, uint32 JSON length, uint64 compact length,
  uint64 full-attention length;
- UTF-8 JSON: request, model info, text, tokens, ids, offsets, prompt length, next-token
  steps, timings, statistics;
- the compact form (`core.attention.compact.encode`);
- optionally the full attention, raw float16 ``[n_layers, n_heads, seq_len, seq_len]``
  (kept for short inputs so a cache hit still offers bertviz).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from core.attention import compact as compact_codec
from core.domain.analysis import SCHEMA_VERSION, Analysis, AnalysisRequest, ModelInfo, NextTokenStep, Timings

MAGIC = b"HLAN"
_PREFIX = struct.Struct("<4sHIQQ")


def analysis_to_bytes(analysis: Analysis, *, include_full: bool = True) -> bytes:
    info = analysis.model
    header: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "request": analysis.request.model_dump(mode="json"),
        "model": info.__dict__,
        "text": analysis.text,
        "tokens": analysis.tokens,
        "token_ids": analysis.token_ids,
        "offsets": analysis.offsets,
        "prompt_len": analysis.prompt_len,
        "next_tokens": [
            {
                "position": s.position,
                "token": s.token,
                "probability": s.probability,
                "candidates": s.candidates,
            }
            for s in analysis.next_tokens
        ],
        "timings": analysis.timings.__dict__,
        "stats": {name: values.tolist() for name, values in analysis.stats.items()},
    }
    header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    compact_bytes = compact_codec.encode(analysis.compact)
    full = b""
    if include_full and analysis.attention is not None:
        full = np.ascontiguousarray(analysis.attention, dtype="<f2").tobytes()
    prefix = _PREFIX.pack(MAGIC, SCHEMA_VERSION, len(header_bytes), len(compact_bytes), len(full))
    return b"".join([prefix, header_bytes, compact_bytes, full])


def analysis_from_bytes(blob: bytes) -> Analysis:
    """Inverse of `analysis_to_bytes`; raises ValueError for foreign or stale data."""
    if len(blob) < _PREFIX.size:
        raise ValueError("Not a serialised analysis: too short.")
    magic, version, header_len, compact_len, full_len = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("Not a serialised analysis: wrong magic bytes.")
    if version != SCHEMA_VERSION:
        raise ValueError(f"Serialised analysis has schema {version}, expected {SCHEMA_VERSION}.")
    if _PREFIX.size + header_len + compact_len + full_len != len(blob):
        raise ValueError("Serialised analysis is truncated or has trailing data.")
    offset = _PREFIX.size
    try:
        header = json.loads(blob[offset : offset + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"Serialised analysis header is not JSON: {exc}") from exc
    offset += header_len
    compact = compact_codec.decode(blob[offset : offset + compact_len])
    offset += compact_len
    info = ModelInfo(**header["model"])
    attention = None
    if full_len:
        shape = (info.n_layers, info.n_heads, compact.seq_len, compact.seq_len)
        attention = np.frombuffer(blob, dtype="<f2", count=int(np.prod(shape)), offset=offset)
        attention = attention.reshape(shape).astype(np.float16)
    return Analysis(
        request=AnalysisRequest.model_validate(header["request"]),
        model=info,
        text=header["text"],
        tokens=header["tokens"],
        token_ids=header["token_ids"],
        offsets=[(int(s), int(e)) for s, e in header["offsets"]],
        prompt_len=header["prompt_len"],
        compact=compact,
        attention=attention,
        stats={name: np.asarray(v, dtype=np.float32) for name, v in header["stats"].items()},
        next_tokens=[
            NextTokenStep(
                position=s["position"],
                token=s["token"],
                probability=s["probability"],
                candidates=tuple((t, p) for t, p in s["candidates"]),
            )
            for s in header["next_tokens"]
        ],
        timings=Timings(**header["timings"]),
    )
