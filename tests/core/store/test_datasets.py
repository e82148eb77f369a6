"""Dataset uploads: formats, checks on malformed files, the skip report, tokenization stats."""

from __future__ import annotations

import json
import re

import pytest

from core.store import datasets
from core.store.datasets import DatasetError, DatasetFormat, SkipReason
from tests.fixtures.tiny import tiny_model


def test_detect_format_by_extension() -> None:
    """.csv/.tsv, .jsonl/.ndjson and .txt are read; anything else is refused with advice."""
    assert datasets.detect_format("a.CSV") is DatasetFormat.CSV
    assert datasets.detect_format("a.tsv") is DatasetFormat.CSV
    assert datasets.detect_format("b.ndjson") is DatasetFormat.JSONL
    assert datasets.detect_format("c.txt") is DatasetFormat.TEXT
    with pytest.raises(DatasetError, match=r"upload \.csv, \.jsonl or \.txt"):
        datasets.detect_format("d.xlsx")


def test_csv_picks_the_chosen_column_and_reports_skips() -> None:
    """Quoted commas and newlines survive; empty, short and over-long rows are skipped by line."""
    data = (
        f'id,text,label\n1,"Hello, world",a\n2,"two\nlines",b\n3,,c\n\n4\n5,{"x" * 50},d\n6,  last one  ,e\n'
    ).encode()
    report = datasets.parse(data, DatasetFormat.CSV, column="text", max_row_chars=40)
    assert [(r.line, r.text) for r in report.rows] == [
        (2, "Hello, world"),
        (3, "two\nlines"),
        (9, "last one"),
    ]
    summary = report.summary()
    assert summary["by_reason"] == {"empty": 2, "missing field": 1, "too long": 1}
    assert [(e["line"], e["reason"]) for e in summary["examples"]] == [
        (5, "empty"),
        (6, "empty"),
        (7, "missing field"),
        (8, "too long"),
    ]
    assert datasets.describe(summary).startswith("Kept 3 rows; skipped 4: 2 empty (lines 5, 6)")


def test_csv_delimiter_follows_the_header() -> None:
    """A semicolon header is read with semicolons; commas in the text then stay text."""
    report = datasets.parse(b"text;n\nA, B and C;1\n", DatasetFormat.CSV, column="text")
    assert [r.text for r in report.rows] == ["A, B and C"]
    assert datasets.columns(b"text;n\nA;1\n", DatasetFormat.CSV) == ["text", "n"]


def test_csv_missing_column_names_the_columns() -> None:
    """Asking for a column the file lacks lists those it has."""
    with pytest.raises(DatasetError, match=r"no column 'body'\. Its columns are: id, text"):
        datasets.parse(b"id,text\n1,a\n", DatasetFormat.CSV, column="body")
    with pytest.raises(DatasetError, match="Choose the column"):
        datasets.parse(b"id,text\n1,a\n", DatasetFormat.CSV)


def test_jsonl_fields_and_malformed_lines() -> None:
    """Nested fields are offered; bad JSON, non-objects, nulls and numbers are each reported."""
    lines = [
        json.dumps({"text": "first", "meta": {"title": "T"}}),
        "{not json",
        "[1, 2]",
        json.dumps({"other": "x"}),
        json.dumps({"text": None}),
        json.dumps({"text": 42}),
        "",
        json.dumps({"text": "  second\x07  "}),
    ]
    data = "\n".join(lines).encode()
    assert datasets.columns(data, DatasetFormat.JSONL) == ["text", "meta.title", "other"]
    report = datasets.parse(data, DatasetFormat.JSONL, column="text")
    assert [(r.line, r.text) for r in report.rows] == [(1, "first"), (8, "second")]
    reasons = {e["line"]: e["reason"] for e in report.summary()["examples"]}
    assert reasons == {
        2: "malformed",
        3: "malformed",
        4: "missing field",
        5: "empty",
        6: "not text",
        7: "empty",
    }
    nested = datasets.parse(data, DatasetFormat.JSONL, column="meta.title")
    assert [r.text for r in nested.rows] == ["T"]


def test_plain_text_one_item_per_line_with_row_limit() -> None:
    """Each non-empty line is a row; rows beyond the limit are skipped and counted."""
    data = b"a\r\nb\n\nc\nd\n"
    report = datasets.parse(data, DatasetFormat.TEXT, max_rows=2)
    assert [r.text for r in report.rows] == ["a", "b"]
    assert report.summary()["by_reason"] == {"empty": 1, "over the row limit": 2}
    assert report.skipped_counts[SkipReason.ROW_LIMIT] == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n \n", "empty"),
        (b"ok\n\xff\xfebad\n", r"not UTF-8: byte 0xff on line 2"),
        (b"text\nab\x00cd\n", "NUL bytes \\(first on line 2\\)"),
        (b"x" * 101, "101 bytes; the limit is 100 bytes"),
    ],
)
def test_files_that_cannot_be_used_say_why(data: bytes, message: str) -> None:
    """Empty, non-UTF-8, binary and oversized files are refused as a whole."""
    with pytest.raises(DatasetError, match=message):
        datasets.parse(data, DatasetFormat.TEXT, max_bytes=100)


def test_bom_is_dropped_and_nothing_usable_is_an_error() -> None:
    """A UTF-8 BOM does not end up in the first column's name; all-empty rows fail clearly."""
    assert datasets.columns("\ufefftext,n\nhi,1\n".encode(), DatasetFormat.CSV) == ["text", "n"]
    with pytest.raises(DatasetError, match=r"No usable rows\. Kept 0 rows; skipped 2: 2 empty"):
        datasets.parse(b"text\n\n ,\n", DatasetFormat.CSV, column="text")


def test_jsonl_without_objects_offers_no_fields() -> None:
    """A JSONL file whose lines are not objects explains the expected shape."""
    with pytest.raises(DatasetError, match=re.escape('{"text": "..."}')):
        datasets.columns(b"[1]\n2\n", DatasetFormat.JSONL)
    assert datasets.columns(b"a\n", DatasetFormat.TEXT) == []


def test_probe_rows_repeat_a_random_block() -> None:
    """Each probe row is n distinct words said twice; the same seed gives the same rows."""
    rows = datasets.probe_texts(3, 8, seed=1)
    assert rows == datasets.probe_texts(3, 8, seed=1)
    for row in rows:
        lead_in, *words = row.split()
        assert lead_in == datasets.PROBE_LEAD_IN
        assert len(words) == 16 and words[:8] == words[8:] and len(set(words[:8])) == 8


def test_clean_name() -> None:
    assert datasets.clean_name("  my   data ", "file") == "my data"
    assert datasets.clean_name("", "upload") == "upload"
    assert len(datasets.clean_name("n" * 300, "")) == datasets.MAX_NAME_CHARS


def test_tokenization_stats_count_truncation_and_unknowns() -> None:
    """Token counts include special tokens; rows over the limit and [UNK] pieces are counted."""
    tokenizer = tiny_model()  # BERT WordPiece: [CLS] ... [SEP]
    texts = ["hello world", "hello " * 20, "\u2603 snowman \U0001f9ff"]
    stats = datasets.tokenization_stats(texts, tokenizer, max_tokens=10, bins=5)
    counts = [len(tokenizer.tokenize(t)) for t in texts]
    assert stats.rows == 3 and stats.total_tokens == sum(counts)
    assert stats.max_tokens_seen == max(counts) and stats.truncated_rows == 1
    assert stats.truncated_share == pytest.approx(1 / 3)
    assert stats.unknown >= 1 and stats.unknown_rate > 0
    assert sum(stats.histogram_counts) == 3 and len(stats.histogram_edges) == len(stats.histogram_counts) + 1
    assert datasets.stats_from_dict(stats.as_dict()) == stats
    with pytest.raises(DatasetError):
        datasets.tokenization_stats([], tokenizer, max_tokens=10)


class _ByteTokenizer:
    """A stand-in with SentencePiece byte pieces: ids 0-2 are text, 3 is <0xE2>, 4 is special."""

    special_ids = frozenset({4})
    unk_id = None
    pieces = ("▁a", "▁b", "c", "<0xE2>", "<s>")

    def token_ids(self, texts: list[str], *, add_special_tokens: bool = True) -> list[list[int]]:
        return [[4, 0, 3, 3], [4, 1, 2]][: len(texts)]

    def token_strings(self, ids: list[int]) -> list[str]:
        return [self.pieces[token_id] for token_id in ids]

    def decode(self, ids: list[int]) -> str:
        return "" if ids == [3] else self.pieces[ids[0]]


def test_byte_fallback_pieces_are_counted() -> None:
    """<0xNN> pieces count as byte fallback; special tokens do not."""
    stats = datasets.tokenization_stats(["x", "y"], _ByteTokenizer(), max_tokens=8)
    assert stats.byte_fallback == 2 and stats.unknown == 0
    assert stats.unknown_rate == pytest.approx(2 / 7)
