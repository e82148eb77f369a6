"""Token alignment on crafted tokenizations with known spans, and the projection rule."""

from __future__ import annotations

import numpy as np
import pytest

from core.attention.alignment import (
    Granularity,
    SpanPieces,
    align,
    common_prefix_length,
    membership,
    text_spans,
)
from core.domain.errors import HeadlightError

TEXT = "The fox's den."
# Byte-level BPE style (SmolLM2): leading spaces inside tokens, "'s" covers two word spans.
BPE = [(0, 3), (3, 7), (7, 9), (9, 13), (13, 14)]
# WordPiece style (MiniLM): [CLS] and [SEP] have empty spans; "'" and "s" are separate.
WORDPIECE = [(0, 0), (0, 3), (4, 7), (7, 8), (8, 9), (10, 13), (13, 14), (0, 0)]
SPANS = ((0, 3), (4, 7), (7, 8), (8, 9), (10, 13), (13, 14))


def _reference_projection(attention: np.ndarray, member: np.ndarray) -> np.ndarray:
    """The documented rule, written as plainly as possible."""
    n_spans = member.shape[1]
    spans = np.zeros((n_spans, n_spans))
    for r in range(n_spans):
        queries = np.flatnonzero(member[:, r])
        for s in range(n_spans):
            keys = np.flatnonzero(member[:, s])
            share = [attention[q, k] / member[k].sum() for q in queries for k in keys]
            spans[r, s] = sum(share) / len(queries)
    totals = spans.sum(axis=1, keepdims=True)
    return np.where(totals > 0, spans / np.where(totals > 0, totals, 1), 1.0 / n_spans)


def test_word_and_whitespace_spans() -> None:
    """Words, single punctuation marks, and whitespace chunks, with their character spans."""
    text = "Don't panic, 3.5!"
    assert [text[s:e] for s, e in text_spans(text)] == ["Don", "'", "t", "panic", ",", "3", ".", "5", "!"]
    chunks = text_spans(text, Granularity.WHITESPACE)
    assert [text[s:e] for s, e in chunks] == ["Don't", "panic,", "3.5!"]
    assert text_spans("  \n ") == []


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("same", "same", 4),
        ("Hello world", "Hello there", 6),
        ("abc", "abcdef", 3),
        ("", "x", 0),
        ("café", "cafe", 3),
    ],
)
def test_common_prefix_length(a: str, b: str, expected: int) -> None:
    """Counted in characters, also past non-ASCII ones."""
    assert common_prefix_length(a, b) == expected


def test_membership_overlaps_and_special_tokens() -> None:
    """Leading spaces still overlap their word; empty and whitespace-only tokens overlap nothing."""
    spans = [(0, 3), (4, 7)]
    member = membership([(0, 0), (0, 3), (3, 7), (3, 4), (2, 5)], spans)
    assert member.tolist() == [[False, False], [True, False], [False, True], [False, False], [True, True]]


def test_align_bpe_with_wordpiece() -> None:
    """A causal BPE tokenization and an encoder's WordPiece map onto the same six spans."""
    alignment = align(TEXT, BPE, TEXT, WORDPIECE)
    assert alignment.spans == SPANS
    assert alignment.labels == ["The", "fox", "'", "s", "den", "."]
    assert alignment.dropped == ()
    # "'s" (token 2) is a piece of both "'" and "s"; each other token of one span.
    assert alignment.a.membership.astype(int).tolist() == [
        [1, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]
    # [CLS] and [SEP] belong to no span; the others one each, in order.
    expected_b = np.zeros((8, 6), int)
    expected_b[np.arange(1, 7), np.arange(6)] = 1
    assert alignment.b.membership.astype(int).tolist() == expected_b.tolist()


def test_whitespace_granularity_merges_pieces() -> None:
    """At whitespace granularity "fox's" is one span with every piece of it."""
    alignment = align(TEXT, BPE, TEXT, WORDPIECE, Granularity.WHITESPACE)
    assert alignment.labels == ["The", "fox's", "den."]
    assert alignment.b.membership.sum(axis=0).tolist() == [1, 3, 2]


def test_span_without_piece_in_one_model_is_dropped_from_both() -> None:
    """A tokenizer that skipped a character leaves that span out of the comparison."""
    skipping = [(0, 3), (3, 7), (9, 13), (13, 14)]  # no token on "'s"
    alignment = align(TEXT, skipping, TEXT, WORDPIECE)
    assert alignment.labels == ["The", "fox", "den", "."]
    assert alignment.dropped == ((7, 8), (8, 9))
    assert alignment.a.n_spans == alignment.b.n_spans == 4


def test_diverging_continuations_compare_only_the_shared_start() -> None:
    """Generated texts that differ keep the common words; a word cut by the split is left out."""
    a, b = "Hello world. A cat", "Hello world. The dog"
    alignment = align(a, [(0, 5), (5, 11), (11, 12), (12, 14), (14, 18)], b, text_spans(b))
    assert alignment.labels == ["Hello", "world", "."]
    assert alignment.text == "Hello world. "
    cut = align("Hello world", [(0, 5), (5, 11)], "Hello wonder", [(0, 5), (5, 12)])
    assert cut.labels == ["Hello"]


def test_no_shared_span_is_refused() -> None:
    """Texts with nothing in common give a message, not an empty comparison."""
    with pytest.raises(HeadlightError, match="share no word"):
        align("abc", [(0, 3)], "xyz", [(0, 3)])


def test_projection_sums_keys_means_queries_and_renormalises() -> None:
    """A worked example: two spans, one split into two pieces, and a special token."""
    member = np.array([[1, 0], [0, 1], [0, 1], [0, 0]], bool)  # token 3 is special
    attention = np.array(
        [
            [0.5, 0.0, 0.0, 0.5],
            [0.2, 0.3, 0.1, 0.4],
            [0.1, 0.1, 0.4, 0.4],
            [0.0, 0.0, 0.0, 1.0],
        ],
        np.float32,
    )
    projected = SpanPieces.from_membership(member).project(attention)
    # Span 0 = query 0: keys [0.5, 0] -> [1, 0]. Span 1 = mean of queries 1 and 2:
    # keys [0.2, 0.4] and [0.1, 0.5] -> [0.15, 0.45] -> [0.25, 0.75].
    np.testing.assert_allclose(projected, [[1.0, 0.0], [0.25, 0.75]], atol=1e-6)


def test_projection_splits_a_token_over_its_spans() -> None:
    """A key token covering two spans gives each half of its attention."""
    member = np.array([[1, 0], [1, 1]], bool)
    attention = np.array([[0.4, 0.6], [0.2, 0.8]], np.float32)
    projected = SpanPieces.from_membership(member).project(attention)
    np.testing.assert_allclose(projected, _reference_projection(attention, member), atol=1e-6)
    # Query 0 keys: [0.4 + 0.6 / 2, 0.6 / 2]; query 1: [0.2 + 0.4, 0.4]. Span 0 averages both.
    np.testing.assert_allclose(projected, [[0.65, 0.35], [0.6, 0.4]], atol=1e-6)


def test_projection_of_a_row_with_nothing_left_is_uniform() -> None:
    """All attention on dropped tokens leaves a uniform row, not NaN."""
    member = np.array([[1, 0], [0, 1], [0, 0]], bool)
    attention = np.array([[0, 0, 1], [0.5, 0.5, 0], [0, 0, 1]], np.float32)
    projected = SpanPieces.from_membership(member).project(attention)
    np.testing.assert_allclose(projected, [[0.5, 0.5], [0.5, 0.5]])


def test_projection_matches_reference_on_crafted_tokenizations() -> None:
    """Random causal attention of both tokenizations, batched [layer, head, q, k], float16."""
    alignment = align(TEXT, BPE, TEXT, WORDPIECE)
    rng = np.random.default_rng(0)
    for pieces in (alignment.a, alignment.b):
        n = pieces.membership.shape[0]
        logits = rng.normal(size=(2, 3, n, n)) + np.triu(np.full((n, n), -np.inf), 1)
        attention = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        projected = pieces.project(attention.astype(np.float16))
        assert projected.shape == (2, 3, 6, 6) and projected.dtype == np.float32
        np.testing.assert_allclose(projected.sum(-1), 1.0, atol=1e-5)
        expected = _reference_projection(attention[1, 2], pieces.membership)
        np.testing.assert_allclose(projected[1, 2], expected, atol=2e-3)


def test_projection_refuses_another_tokenization() -> None:
    """Attention of the wrong length names the expected shape."""
    pieces = align(TEXT, BPE, TEXT, WORDPIECE).a
    with pytest.raises(ValueError, match=r"\[5, 5\]"):
        pieces.project(np.zeros((8, 8), np.float32))
