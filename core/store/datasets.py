"""Datasets for batch analyses: parsing uploads, the built-in probe, tokenization statistics.

An upload is CSV (one column holds the text), JSONL (one field of each object holds it) or
plain text (one item per line). `parse` checks the whole file and returns the rows kept
plus a report of every row skipped and why; problems with the file as a whole (too big, not
UTF-8, binary, no such column, nothing usable) raise `DatasetError` with a message that says
what to do. No Streamlit and no database here: `core.store.saved_datasets` stores what `parse` returns.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from core.domain.analysis import MAX_TEXT_CHARS
from core.domain.errors import HeadlightError

if TYPE_CHECKING:
    from core.models.boundary import Tokenizer

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_ROWS = 20_000
MAX_ROW_CHARS = MAX_TEXT_CHARS
MAX_NAME_CHARS = 200
# The report keeps every count but only this many skipped rows in detail.
REPORT_EXAMPLES = 50
# JSONL fields are offered from the objects on the first lines only.
_FIELD_SCAN_LINES = 200
_CONTROL_CHARS = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


class DatasetError(HeadlightError):
    """The file as a whole cannot be used; the message says how to fix it."""


class DatasetFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    TEXT = "text"


class SkipReason(StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too long"
    MALFORMED = "malformed"
    MISSING_FIELD = "missing field"
    NOT_TEXT = "not text"
    ROW_LIMIT = "over the row limit"


@dataclass(frozen=True)
class ParsedRow:
    """One kept item: its text and the 1-based line of the file it started on."""

    line: int
    text: str


@dataclass(frozen=True)
class SkippedRow:
    line: int
    reason: SkipReason
    detail: str


@dataclass
class ParseReport:
    """What `parse` kept and skipped. ``column`` is the CSV column or JSONL field used."""

    format: DatasetFormat
    column: str | None
    rows: list[ParsedRow] = field(default_factory=list)
    skipped_counts: Counter[SkipReason] = field(default_factory=Counter)
    skipped_examples: list[SkippedRow] = field(default_factory=list)

    def skip(self, line: int, reason: SkipReason, detail: str) -> None:
        self.skipped_counts[reason] += 1
        if len(self.skipped_examples) < REPORT_EXAMPLES:
            self.skipped_examples.append(SkippedRow(line, reason, detail))

    @property
    def skipped(self) -> int:
        return sum(self.skipped_counts.values())

    def summary(self) -> dict[str, Any]:
        """JSON-ready: ``{format, column, kept, skipped, by_reason, examples}``."""
        return {
            "format": self.format.value,
            "column": self.column,
            "kept": len(self.rows),
            "skipped": self.skipped,
            "by_reason": {reason.value: n for reason, n in sorted(self.skipped_counts.items())},
            "examples": [
                {"line": s.line, "reason": s.reason.value, "detail": s.detail} for s in self.skipped_examples
            ],
        }


def describe(summary: dict[str, Any]) -> str:
    """One sentence for the screen, from `ParseReport.summary` (also as stored)."""
    kept = f"Kept {summary['kept']:,} row{'s' if summary['kept'] != 1 else ''}"
    if not summary["skipped"]:
        return kept + "; nothing was skipped."
    parts = []
    for reason, count in summary["by_reason"].items():
        lines = [str(e["line"]) for e in summary["examples"] if e["reason"] == reason][:5]
        more = "…" if count > len(lines) else ""
        where = f" (line{'s' if len(lines) > 1 else ''} {', '.join(lines)}{more})" if lines else ""
        parts.append(f"{count:,} {reason}{where}")
    return f"{kept}; skipped {summary['skipped']:,}: " + "; ".join(parts) + "."


def detect_format(filename: str) -> DatasetFormat:
    """The format implied by a file name's extension."""
    suffix = PurePath(filename).suffix.lower()
    formats = {
        ".csv": DatasetFormat.CSV,
        ".tsv": DatasetFormat.CSV,
        ".jsonl": DatasetFormat.JSONL,
        ".ndjson": DatasetFormat.JSONL,
        ".txt": DatasetFormat.TEXT,
        ".text": DatasetFormat.TEXT,
    }
    if suffix not in formats:
        raise DatasetError(
            f"'{filename}' is not a dataset file Headlight reads; upload .csv, .jsonl or .txt "
            "(one item per line)."
        )
    return formats[suffix]


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes:,} bytes"


def decode(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The file's text: size checked, UTF-8 (a BOM is dropped), never binary."""
    if len(data) > max_bytes:
        raise DatasetError(
            f"The file is {_size(len(data))}; the limit is {_size(max_bytes)}. Split it into smaller files."
        )
    if not data.strip():
        raise DatasetError("The file is empty; choose a file with one item per row.")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise DatasetError(
            f"The file contains NUL bytes (first on line {line}); it looks binary. "
            "Export it as UTF-8 text (CSV, JSONL or plain text)."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"The file is not UTF-8: byte 0x{data[exc.start]:02x} on line {line} cannot be decoded. "
            "Save it as UTF-8 and upload it again."
        ) from None


def clean_text(text: str) -> str:
    """NFC-normalised, control characters dropped, surrounding whitespace stripped."""
    return _CONTROL_CHARS.sub("", unicodedata.normalize("NFC", text)).strip()


def _csv_reader(text: str) -> Any:
    """A reader whose delimiter is the one the header line uses most (comma by default)."""
    header = text.split("\n", 1)[0]
    delimiter = max(",;\t|", key=lambda d: (header.count(d), d == ","))
    # Oversized fields are reported per row ("too long"), not as a parser error.
    csv.field_size_limit(MAX_UPLOAD_BYTES)
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _csv_header(text: str) -> list[str]:
    try:
        header = next(_csv_reader(text), [])
    except csv.Error as exc:
        raise DatasetError(f"The CSV header cannot be read ({exc}); check the file's quoting.") from None
    return [name.strip() for name in header]


def _field(obj: dict[str, Any], path: str) -> tuple[bool, Any]:
    """``obj[path]``, where ``a.b`` reaches into nested objects; ``(found, value)``."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _text_fields(obj: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in obj.items():
        if isinstance(value, dict):
            yield from _text_fields(value, f"{prefix}{key}.")
        elif isinstance(value, str):
            yield f"{prefix}{key}"


def columns(data: bytes, fmt: DatasetFormat) -> list[str]:
    """The columns (CSV) or text fields (JSONL) the user can choose from; [] for plain text."""
    text = decode(data)
    if fmt is DatasetFormat.CSV:
        names = [name for name in _csv_header(text) if name]
        if not names:
            raise DatasetError("The CSV has no header row; add one naming the columns.")
        return names
    if fmt is DatasetFormat.JSONL:
        found: dict[str, None] = {}
        for line in text.splitlines()[:_FIELD_SCAN_LINES]:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                found.update(dict.fromkeys(_text_fields(obj)))
        if not found:
            raise DatasetError(
                "No line of the file's start is a JSON object with a text field; "
                'each line should look like {"text": "..."}.'
            )
        return list(found)
    return []


def _keep(report: ParseReport, line: int, value: str, max_rows: int, max_row_chars: int) -> None:
    text = clean_text(value)
    if not text:
        report.skip(line, SkipReason.EMPTY, "no text")
    elif len(text) > max_row_chars:
        report.skip(line, SkipReason.TOO_LONG, f"{len(text):,} characters; the limit is {max_row_chars:,}")
    elif len(report.rows) >= max_rows:
        report.skip(line, SkipReason.ROW_LIMIT, f"only the first {max_rows:,} rows are kept")
    else:
        report.rows.append(ParsedRow(line, text))


def _parse_csv(text: str, column: str, report: ParseReport, max_rows: int, max_chars: int) -> None:
    header = _csv_header(text)
    if column not in header:
        raise DatasetError(f"The CSV has no column '{column}'. Its columns are: {', '.join(header)}.")
    index = header.index(column)
    reader = _csv_reader(text)
    next(reader)
    line = reader.line_num + 1
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                report.skip(line, SkipReason.EMPTY, "empty line")
            elif index >= len(record):
                detail = f"{len(record)} fields; '{column}' is field {index + 1}"
                report.skip(line, SkipReason.MISSING_FIELD, detail)
            else:
                _keep(report, line, record[index], max_rows, max_chars)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise DatasetError(
            f"The CSV cannot be read after line {line - 1}: {exc}. Check its quoting."
        ) from None


def _parse_jsonl(text: str, column: str, report: ParseReport, max_rows: int, max_chars: int) -> None:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            report.skip(line, SkipReason.EMPTY, "empty line")
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            report.skip(line, SkipReason.MALFORMED, f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(obj, dict):
            report.skip(line, SkipReason.MALFORMED, f"a JSON {type(obj).__name__}, not an object")
            continue
        found, value = _field(obj, column)
        if not found:
            report.skip(line, SkipReason.MISSING_FIELD, f"no field '{column}'")
        elif value is None:
            report.skip(line, SkipReason.EMPTY, f"'{column}' is null")
        elif not isinstance(value, str):
            report.skip(line, SkipReason.NOT_TEXT, f"'{column}' is a {type(value).__name__}, not a string")
        else:
            _keep(report, line, value, max_rows, max_chars)


def parse(
    data: bytes,
    fmt: DatasetFormat,
    *,
    column: str | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_rows: int = MAX_ROWS,
    max_row_chars: int = MAX_ROW_CHARS,
) -> ParseReport:
    """Check every row of an upload; ``column`` names the CSV column or JSONL field.

    Raises `DatasetError` for a file that cannot be used at all, including one where no row
    survives the checks (the message then carries the report).
    """
    text = decode(data, max_bytes=max_bytes)
    if fmt is not DatasetFormat.TEXT and not column:
        what = "column" if fmt is DatasetFormat.CSV else "field"
        raise DatasetError(f"Choose the {what} that holds the text.")
    report = ParseReport(fmt, column if fmt is not DatasetFormat.TEXT else None)
    if fmt is DatasetFormat.CSV:
        _parse_csv(text, column or "", report, max_rows, max_row_chars)
    elif fmt is DatasetFormat.JSONL:
        _parse_jsonl(text, column or "", report, max_rows, max_row_chars)
    else:
        for line, raw in enumerate(text.splitlines(), start=1):
            _keep(report, line, raw, max_rows, max_row_chars)
    if not report.rows:
        raise DatasetError("No usable rows. " + describe(report.summary()))
    return report


def clean_name(name: str, fallback: str) -> str:
    """A one-line dataset name of at most `MAX_NAME_CHARS`; the fallback when empty."""
    name = " ".join(name.split()) or " ".join(fallback.split()) or "Untitled dataset"
    return name[:MAX_NAME_CHARS]


# Common short English words; each is one token (with its leading space) in most
# vocabularies, so a probe row's second half repeats its first half token for token.
PROBE_WORDS = (
    "able acid aged also area army away baby back ball band bank base bath bear beat bell belt "
    "bird blow blue boat body bone book boot born boss both bowl bulk burn bush busy cake calm "
    "camp card care case cash cast cell chat chip city club coal coat code cold cook cool cope "
    "copy core cost crew crop dark data date dawn deal dear debt deck deep deer desk diet dish "
    "door dose down draw drop drug dust duty earn ease east easy edge else even ever face fact "
    "fair fall farm fast fate fear feed feel file fill film find fine fire firm fish flag flat "
    "flow food foot form fuel full fund gain game gate gear gift girl glad goal gold golf good "
    "grey grow hair half hall hand hard harm head heat hero hill hire hold hole home hope host "
    "hour huge hunt idea inch iron item jazz join joke jump jury keen kind king knee lack lady "
    "lake lamp land lane last late lead leaf left lend life lift line link list live load loan "
    "lock long look lord loss love luck mail main make male mark mass meal meat menu mile milk "
    "mind mine miss mode moon most move much name navy neck need news nice node nose note okay"
).split()
PROBE_NAME = "Induction probe (random words, repeated twice)"
PROBE_KEY = "induction-probe"
PROBE_LEAD_IN = "Words:"


def probe_texts(n_rows: int = 32, n_words: int = 24, *, seed: int = 0) -> list[str]:
    """The built-in probe: each row is a lead-in, ``n_words`` distinct random words, then the
    same words again.

    On such a row an induction head, at each word of the second half, attends to the word
    that followed its first occurrence; `core.attention.atlas` scores it with
    `core.attention.stats.induction_score`.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrecy
    rows = []
    for _ in range(n_rows):
        words = " ".join(rng.sample(PROBE_WORDS, n_words))
        # The lead-in gives both copies' first word a space before it, so they tokenize alike.
        rows.append(f"{PROBE_LEAD_IN} {words} {words}")
    return rows


@dataclass(frozen=True)
class TokenizationStats:
    """How one model's tokenizer sees a dataset.

    ``histogram`` holds ``counts[i]`` rows with ``edges[i] <= tokens < edges[i+1]`` (the last
    bin includes its right edge). ``truncated_rows`` exceed ``max_tokens``; ``unknown`` are
    unknown-token ids and ``byte_fallback`` tokens that stand for raw bytes rather than text
    (``<0xNN>`` pieces, or byte-level pieces that decode to an incomplete character).
    """

    rows: int
    total_tokens: int
    mean_tokens: float
    median_tokens: float
    p95_tokens: float
    max_tokens_seen: int
    max_tokens: int
    truncated_rows: int
    unknown: int
    byte_fallback: int
    histogram_edges: list[float]
    histogram_counts: list[int]

    @property
    def truncated_share(self) -> float:
        return self.truncated_rows / self.rows if self.rows else 0.0

    @property
    def unknown_rate(self) -> float:
        """Unknown plus byte-fallback tokens per token."""
        return (self.unknown + self.byte_fallback) / self.total_tokens if self.total_tokens else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _byte_tokens(tokenizer: Tokenizer, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` stand for raw bytes in this tokenizer."""
    found = set()
    for token_id in ids:
        (piece,) = tokenizer.token_strings([token_id])
        if _BYTE_PIECE.fullmatch(piece) is not None or "\ufffd" in tokenizer.decode([token_id]):
            found.add(token_id)
    return found


def tokenization_stats(
    texts: Sequence[str], tokenizer: Tokenizer, *, max_tokens: int, bins: int = 20
) -> TokenizationStats:
    """Token counts of ``texts`` (special tokens included, as the model sees them)."""
    if not texts:
        raise DatasetError("The dataset has no rows to tokenize.")
    encoded = tokenizer.token_ids(texts, add_special_tokens=True)
    counts = np.array([len(ids) for ids in encoded], dtype=np.int64)
    frequency: Counter[int] = Counter()
    for ids in encoded:
        frequency.update(ids)
    unk_id = tokenizer.unk_id
    byte_ids = _byte_tokens(tokenizer, (i for i in frequency if i not in tokenizer.special_ids))
    hist_counts, edges = np.histogram(counts, bins=min(bins, max(1, int(counts.max() - counts.min()) + 1)))
    return TokenizationStats(
        rows=len(counts),
        total_tokens=int(counts.sum()),
        mean_tokens=float(counts.mean()),
        median_tokens=float(np.median(counts)),
        p95_tokens=float(np.percentile(counts, 95)),
        max_tokens_seen=int(counts.max()),
        max_tokens=max_tokens,
        truncated_rows=int((counts > max_tokens).sum()),
        unknown=frequency.get(unk_id, 0) if unk_id is not None else 0,
        byte_fallback=sum(frequency[i] for i in byte_ids),
        histogram_edges=[float(e) for e in edges],
        histogram_counts=[int(c) for c in hist_counts],
    )


def stats_from_dict(data: dict[str, Any]) -> TokenizationStats:
    """The inverse of `TokenizationStats.as_dict` (stored statistics)."""
    return TokenizationStats(**{name: data[name] for name in TokenizationStats.__dataclass_fields__})
