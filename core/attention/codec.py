"""The one versioned encoding of an `Analysis`: the database, the cache, exports, comparisons.

`analysis_fields` gives the stored fields of an analysis: plain JSON values plus the compact
attention as `core.attention.compact.encode` bytes. A saved analysis keeps exactly these as
its columns (`db.models.Visualization`), an export writes them into its document, a saved
comparison keeps one set per side, and the result cache wraps them in one binary blob
(`analysis_to_bytes`) that may also carry the full attention. `analysis_from_fields` and
`analysis_from_bytes` are the inverses. No pickle anywhere.

Fields (all JSON but ``compact_attention``):

- ``model_id``, ``model_revision``, ``model_info`` (kind, architecture, layers, heads,
  device, dtype), ``input_text``, ``generated_text``, ``params`` (the request minus model
  and text);
- ``token_data``: ``text``, ``tokens``, ``token_ids``, ``offsets`` (``[start, end]`` per
  token), ``prompt_len``, ``next_tokens`` (position, token, probability, candidates);
- ``token_count``, ``head_stats`` (``{stat: [n_layers][n_heads]}``), ``timings``;
- ``compact_attention``: bytes.

Cache blob, integers little-endian: magic ``b"HLAN"``, uint16 `SCHEMA_VERSION`, uint32 JSON
length, uint64 compact length, uint64 full-attention length; the UTF-8 JSON of the fields
without ``compact_attention``; the compact bytes; optionally the full attention as raw
float16 ``[n_layers, n_heads, seq_len, seq_len]`` (kept for short inputs so a cache hit
still offers bertviz).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.attention import compact as compact_codec
from core.domain.analysis import SCHEMA_VERSION, Analysis, AnalysisRequest, ModelInfo, NextTokenStep, Timings

MAGIC = b"HLAN"
_PREFIX = struct.Struct("<4sHIQQ")
# Request fields kept in ``params``; text and model id have fields of their own.
_REQUEST_COLUMNS = {"model_id", "text"}
MODEL_INFO_FIELDS = ("kind", "architecture", "n_layers", "n_heads", "device", "dtype")
COMPACT_FIELD = "compact_attention"


def analysis_fields(analysis: Analysis) -> dict[str, Any]:
    """The stored fields of ``analysis`` (see the module docstring)."""
    info = analysis.model
    return {
        "model_id": info.model_id,
        "model_revision": info.revision,
        "input_text": analysis.request.text,
        "generated_text": analysis.generated_text,
        "params": analysis.request.model_dump(mode="json", exclude=_REQUEST_COLUMNS),
        "model_info": {name: getattr(info, name) for name in MODEL_INFO_FIELDS},
        "token_data": {
            "text": analysis.text,
            "tokens": list(analysis.tokens),
            "token_ids": [int(i) for i in analysis.token_ids],
            "offsets": [[int(s), int(e)] for s, e in analysis.offsets],
            "prompt_len": analysis.prompt_len,
            "next_tokens": [_step_json(step) for step in analysis.next_tokens],
        },
        "token_count": analysis.seq_len,
        "head_stats": {name: np.asarray(values).tolist() for name, values in analysis.stats.items()},
        COMPACT_FIELD: compact_codec.encode(analysis.compact),
        "timings": {
            "load_s": analysis.timings.load_s,
            "forward_s": analysis.timings.forward_s,
            "postprocess_s": analysis.timings.postprocess_s,
        },
    }


def request_from_fields(fields: Mapping[str, Any]) -> AnalysisRequest:
    """The request that produced stored fields (validated again)."""
    return AnalysisRequest(model_id=fields["model_id"], text=fields["input_text"], **fields["params"])


def analysis_from_fields(
    fields: Mapping[str, Any], *, attention: np.ndarray | None = None, cache_hit: bool = False
) -> Analysis:
    """Re-create the `Analysis` of stored fields, without running the model.

    ``attention`` (the full form) is None unless the caller kept it (the cache does).
    Raises ValueError for fields that do not decode.
    """
    data = fields["token_data"]
    try:
        return Analysis(
            request=request_from_fields(fields),
            model=ModelInfo(
                model_id=fields["model_id"],
                revision=fields["model_revision"],
                **{name: fields["model_info"][name] for name in MODEL_INFO_FIELDS},
            ),
            text=data["text"],
            tokens=list(data["tokens"]),
            token_ids=list(data["token_ids"]),
            offsets=[(int(s), int(e)) for s, e in data["offsets"]],
            prompt_len=int(data["prompt_len"]),
            compact=compact_codec.decode(fields[COMPACT_FIELD]),
            attention=attention,
            stats={name: np.asarray(values, np.float32) for name, values in fields["head_stats"].items()},
            next_tokens=[_step(step) for step in data["next_tokens"]],
            timings=Timings(**fields["timings"]),
            cache_hit=cache_hit,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"Stored analysis fields are incomplete: {exc}") from exc


def analysis_to_json(analysis: Analysis) -> dict[str, Any]:
    """`analysis_fields` with the compact attention as base64 text: for JSON documents."""
    fields = analysis_fields(analysis)
    fields[COMPACT_FIELD] = base64.b64encode(fields[COMPACT_FIELD]).decode("ascii")
    return fields


def analysis_from_json(fields: Mapping[str, Any]) -> Analysis:
    """Inverse of `analysis_to_json`; raises ValueError for fields that do not decode."""
    if COMPACT_FIELD not in fields:
        raise ValueError(f"Stored analysis fields are incomplete: no {COMPACT_FIELD!r}.")
    try:
        compact = base64.b64decode(fields[COMPACT_FIELD], validate=True)
    except (TypeError, binascii.Error) as exc:
        raise ValueError(f"The stored compact attention is not base64: {exc}") from exc
    return analysis_from_fields({**fields, COMPACT_FIELD: compact})


def analysis_to_bytes(analysis: Analysis, *, include_full: bool = True) -> bytes:
    """The cache blob of ``analysis`` (with the full attention if kept and asked for)."""
    fields = analysis_fields(analysis)
    compact_bytes = fields.pop(COMPACT_FIELD)
    header = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    full = b""
    if include_full and analysis.attention is not None:
        full = np.ascontiguousarray(analysis.attention, dtype="<f2").tobytes()
    prefix = _PREFIX.pack(MAGIC, SCHEMA_VERSION, len(header), len(compact_bytes), len(full))
    return b"".join([prefix, header, compact_bytes, full])


def analysis_from_bytes(blob: bytes, *, cache_hit: bool = False) -> Analysis:
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
        fields = json.loads(blob[offset : offset + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"Serialised analysis header is not JSON: {exc}") from exc
    offset += header_len
    fields[COMPACT_FIELD] = blob[offset : offset + compact_len]
    offset += compact_len
    attention = None
    if full_len:
        info = fields["model_info"]
        seq_len = int(fields["token_count"])
        shape = (int(info["n_layers"]), int(info["n_heads"]), seq_len, seq_len)
        if 2 * int(np.prod(shape)) != full_len:
            raise ValueError("Serialised analysis: the full attention does not match its shape.")
        attention = np.frombuffer(blob, dtype="<f2", count=int(np.prod(shape)), offset=offset)
        attention = attention.reshape(shape).astype(np.float16)
    return analysis_from_fields(fields, attention=attention, cache_hit=cache_hit)


def _step_json(step: NextTokenStep) -> dict[str, Any]:
    return {
        "position": step.position,
        "token": step.token,
        "probability": step.probability,
        "candidates": [[token, float(p)] for token, p in step.candidates],
    }


def _step(data: dict[str, Any]) -> NextTokenStep:
    return NextTokenStep(
        position=int(data["position"]),
        token=data["token"],
        probability=data["probability"],
        candidates=tuple((str(token), float(p)) for token, p in data["candidates"]),
    )
