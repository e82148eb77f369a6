"""Taking analyses out of the app and back in: JSON document, CSV summary, ZIP bundle.

The JSON document (format ``headlight.analysis``, version `EXPORT_VERSION`) holds the
metadata, the request, tokens, statistics, timings, annotations and the compact attention
as base64 of `core.attention.compact.encode` bytes. Importing it re-creates the same stored analysis.
Imports are untrusted: size-capped, parsed as JSON, validated by pydantic models (no extra
keys, bounded sizes, consistent shapes) and the attention blob decoded and cross-checked.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import zipfile
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.attention import compact as compact_codec
from core.domain.analysis import MAX_TOP_K_NEXT, AnalysisRequest
from core.domain.errors import HeadlightError
from core.domain.spreadsheet import csv_cell
from core.store.offline_viewer import offline_html
from db.models import MAX_ANNOTATION_CHARS, MAX_TITLE_CHARS, Visualization

EXPORT_FORMAT = "headlight.analysis"
EXPORT_VERSION = 1
# The compact form is at most 8 MiB (about 11 MiB as base64); tokens and text add little.
MAX_IMPORT_BYTES = 24 * 1024 * 1024
MAX_TAGS = 20
MAX_ANNOTATIONS = 1_000
MAX_TOKENS = 131_072
CSV_COLUMNS = ("id", "model", "title", "text", "date", "annotation_count", "tags")


class ImportFileError(HeadlightError):
    """An import file that cannot be used; the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExportedModel(_Strict):
    model_id: str = Field(min_length=1, max_length=200)
    revision: str = Field(min_length=1, max_length=200)
    kind: Literal["causal", "encoder"]
    architecture: str = Field(max_length=200)
    n_layers: int = Field(ge=1, le=1_000)
    n_heads: int = Field(ge=1, le=1_000)
    device: str = Field(max_length=50)
    dtype: str = Field(max_length=50)


class ExportedStep(_Strict):
    position: int = Field(ge=0)
    token: str | None
    probability: float | None = Field(ge=0.0, le=1.0)
    candidates: list[tuple[str, float]] = Field(max_length=MAX_TOP_K_NEXT)


class ExportedTokens(_Strict):
    """The analysed text and its tokens; ``offsets[i]`` is token i's ``[start, end)`` span."""

    text: str = Field(max_length=200_000)
    tokens: list[str] = Field(max_length=MAX_TOKENS)
    token_ids: list[int] = Field(max_length=MAX_TOKENS)
    offsets: list[tuple[int, int]] = Field(max_length=MAX_TOKENS)
    prompt_len: int = Field(ge=0)
    next_tokens: list[ExportedStep] = Field(max_length=MAX_TOKENS)

    @model_validator(mode="after")
    def _consistent(self) -> ExportedTokens:
        n = len(self.tokens)
        if n == 0 or len(self.token_ids) != n or len(self.offsets) != n:
            raise ValueError("tokens, token_ids and offsets must be non-empty and of equal length")
        if self.prompt_len > n:
            raise ValueError("prompt_len is larger than the number of tokens")
        if any(not 0 <= s <= e <= len(self.text) for s, e in self.offsets):
            raise ValueError("a token offset lies outside the text")
        return self


class ExportedTimings(_Strict):
    load_s: float = Field(ge=0.0)
    forward_s: float = Field(ge=0.0)
    postprocess_s: float = Field(ge=0.0)


class ExportedAnnotation(_Strict):
    body: str = Field(min_length=1, max_length=MAX_ANNOTATION_CHARS)
    layer: int | None = Field(default=None, ge=0)
    head: int | None = Field(default=None, ge=0)
    token_start: int | None = Field(default=None, ge=0)
    token_end: int | None = Field(default=None, ge=0)
    author: str | None = Field(default=None, max_length=200)
    created_at: datetime | None = None


class ExportedAttention(_Strict):
    encoding: Literal["base64"]
    format_version: int
    data: str


class ExportedAnalysis(_Strict):
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    tags: list[str] = Field(max_length=MAX_TAGS)
    created_at: datetime
    model: ExportedModel
    request: AnalysisRequest
    generated_text: str = Field(max_length=200_000)
    token_data: ExportedTokens
    head_stats: dict[str, list[list[float]]]
    timings: ExportedTimings


class ExportDocument(_Strict):
    """The whole export file; `compact` is the decoded attention once validated."""

    format: Literal["headlight.analysis"]
    version: int
    exported_at: datetime
    analysis: ExportedAnalysis
    annotations: list[ExportedAnnotation] = Field(max_length=MAX_ANNOTATIONS)
    compact_attention: ExportedAttention

    @model_validator(mode="after")
    def _consistent(self) -> ExportDocument:
        if self.version != EXPORT_VERSION:
            raise ValueError(
                f"export version {self.version} is not supported; this build reads {EXPORT_VERSION}"
            )
        analysis, model = self.analysis, self.analysis.model
        if analysis.request.model_id != model.model_id:
            raise ValueError("request.model_id differs from model.model_id")
        shape = (model.n_layers, model.n_heads)
        for name, values in analysis.head_stats.items():
            if len(values) != shape[0] or any(len(row) != shape[1] for row in values):
                raise ValueError(f"head_stats.{name} must be shaped [n_layers][n_heads]")
        n_tokens = len(analysis.token_data.tokens)
        for note in self.annotations:
            if (note.layer is not None and note.layer >= shape[0]) or (
                note.head is not None and (note.head >= shape[1] or note.layer is None)
            ):
                raise ValueError("an annotation is pinned to a layer or head the model does not have")
            if any(t is not None and t >= n_tokens for t in (note.token_start, note.token_end)):
                raise ValueError("an annotation is pinned to a token beyond the text")
        return self


def _decode_attention(document: ExportDocument) -> bytes:
    """The compact attention bytes, checked against the document's model and tokens."""
    meta = document.compact_attention
    if meta.format_version != compact_codec.FORMAT_VERSION:
        raise ImportFileError(
            f"The attention is in format version {meta.format_version}; this build reads "
            f"{compact_codec.FORMAT_VERSION}. Export it again from a matching Headlight."
        )
    try:
        blob = base64.b64decode(meta.data, validate=True)
        compact = compact_codec.decode(blob)
    except (binascii.Error, ValueError) as exc:
        raise ImportFileError(f"The attention data is damaged: {exc}") from exc
    model = document.analysis.model
    expected = (model.n_layers, model.n_heads, len(document.analysis.token_data.tokens))
    if (compact.n_layers, compact.n_heads, compact.seq_len) != expected:
        raise ImportFileError("The attention data does not match the model's shape or the number of tokens.")
    return blob


def export_document(record: Visualization, *, exported_at: datetime) -> dict[str, Any]:
    """The JSON-ready document of one stored visualization and its annotations."""
    model = {"model_id": record.model_id, "revision": record.model_revision, **record.model_info}
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": exported_at.isoformat(),
        "analysis": {
            "title": record.title,
            "tags": record.tag_names,
            "created_at": record.created_at.isoformat(),
            "model": model,
            "request": {"model_id": record.model_id, "text": record.input_text, **record.params},
            "generated_text": record.generated_text,
            "token_data": record.token_data,
            "head_stats": record.head_stats,
            "timings": record.timings,
        },
        "annotations": [
            {
                "body": note.body,
                "layer": note.layer,
                "head": note.head,
                "token_start": note.token_start,
                "token_end": note.token_end,
                "author": note.author.username,
                "created_at": note.created_at.isoformat(),
            }
            for note in record.annotations
        ],
        "compact_attention": {
            "encoding": "base64",
            "format_version": compact_codec.FORMAT_VERSION,
            "data": base64.b64encode(record.compact_attention).decode("ascii"),
        },
    }


def to_json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def parse_import(data: bytes) -> tuple[ExportDocument, dict[str, Any]]:
    """Validate an uploaded export; returns the document and the record's column values.

    The column values are those of `core.attention.codec.analysis_fields` (title, tags, owner and
    visibility are the caller's). Raises `ImportFileError` with a readable reason.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(
            f"The file is {len(data) / 2**20:.1f} MiB; imports are limited to "
            f"{MAX_IMPORT_BYTES / 2**20:.0f} MiB. Is it a Headlight analysis export?"
        )
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ImportFileError("The file is not UTF-8 text; choose a Headlight JSON export.") from exc
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    if not isinstance(raw, dict) or raw.get("format") != EXPORT_FORMAT:
        raise ImportFileError(
            f"This JSON is not a Headlight analysis export (expected format {EXPORT_FORMAT!r})."
        )
    try:
        document = ExportDocument.model_validate(raw)
    except ValidationError as exc:
        raise ImportFileError(f"The export does not validate: {_short_errors(exc)}") from exc
    blob = _decode_attention(document)
    analysis = document.analysis
    request = analysis.request
    fields = {
        "model_id": analysis.model.model_id,
        "model_revision": analysis.model.revision,
        "input_text": request.text,
        "generated_text": analysis.generated_text,
        "params": request.model_dump(mode="json", exclude={"model_id", "text"}),
        "model_info": analysis.model.model_dump(exclude={"model_id", "revision"}),
        "token_data": analysis.token_data.model_dump(mode="json"),
        "token_count": len(analysis.token_data.tokens),
        "head_stats": analysis.head_stats,
        "compact_attention": blob,
        "timings": analysis.timings.model_dump(),
    }
    return document, fields


def _short_errors(exc: ValidationError, limit: int = 3) -> str:
    """The first few problems as ``where: what``; `validation_message` drops the location."""
    problems = [
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in exc.errors()[:limit]
    ]
    more = exc.error_count() - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    """CSV (UTF-8 with BOM, for spreadsheets) of `db.queries.summary_rows` output."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row["id"],
                csv_cell(row["model_id"]),
                csv_cell(row["title"]),
                csv_cell(row["input_text"]),
                row["created_at"].isoformat(),
                row["annotation_count"],
                csv_cell(" ".join(row["tags"])),
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def zip_bundle(document: dict[str, Any], summary_csv: bytes, *, stem: str) -> bytes:
    """ZIP with ``<stem>/analysis.html`` (offline viewer), ``analysis.json`` and ``analyses.csv``."""
    members = {
        "analysis.html": offline_html(document).encode("utf-8"),
        "analysis.json": to_json_bytes(document),
        "analyses.csv": summary_csv,
    }
    stamp = datetime.fromisoformat(document["exported_at"]).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            info = zipfile.ZipInfo(f"{stem}/{name}", date_time=stamp)
            info.external_attr = 0o644 << 16  # readable by everyone once unpacked
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)
    return buffer.getvalue()
