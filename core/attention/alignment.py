"""Two tokenizations of one text mapped onto shared character spans, and attention projected
onto those spans, so that heads of models with different tokenizers become comparable.

**Shared text and spans.** The shared text is the longest common prefix of the two analysed
texts (they differ only where generated continuations diverge). Spans are cut by
`Granularity`: ``WORD`` (default) takes runs of word characters (``\\w+``) and every other
non-space character on its own (punctuation, symbols); ``WHITESPACE`` takes
whitespace-delimited chunks (``\\S+``). Whitespace is never part of a span. A span is shared
when both texts have it with the same start and end, inside the common prefix.

**Pieces.** Token ``i`` with offsets ``(start, end)`` is a piece of span ``j`` when their
character ranges overlap. Tokens with an empty range (special tokens: ``<bos>``, ``[CLS]``,
``[SEP]``) or covering only whitespace are pieces of no span. One token may cover several
spans (SmolLM2's ``'s`` covers ``'`` and ``s``); one span may have several pieces. Spans
with no piece in one of the two models are dropped from both (kept in `Alignment.dropped`).

**Projection** of one head's attention ``a[query, key]`` (``seq_len x seq_len``) onto the
``n_spans`` spans, giving ``p[query span, key span]``:

1. keys: sum over the key pieces of each span, ``k[q, s] = sum_t a[q, t] * w[t, s]`` with
   ``w[t, s] = 1 / (spans covered by token t)``: a token covering two spans gives each half
   its weight; attention to tokens of no span (special tokens, spaces, an unshared tail)
   is dropped;
2. queries: mean over the query pieces of each span, ``p[r, s] = mean_{q in r} k[q, s]``;
3. each row is renormalised to sum to 1, so a head that parks most of its attention on a
   special token ("attention sink") is compared on what remains. A row left with nothing
   (all of its attention went to dropped tokens) becomes uniform over the spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from core.domain.errors import HeadlightError

Span = tuple[int, int]


class Granularity(StrEnum):
    WORD = "word"
    WHITESPACE = "whitespace"


_PATTERNS = {
    Granularity.WORD: re.compile(r"\w+|[^\w\s]"),
    Granularity.WHITESPACE: re.compile(r"\S+"),
}


def text_spans(text: str, granularity: Granularity = Granularity.WORD) -> list[Span]:
    """The ``(start, end)`` character spans of ``text`` at ``granularity``, in order."""
    return [match.span() for match in _PATTERNS[granularity].finditer(text)]


def common_prefix_length(text_a: str, text_b: str) -> int:
    """Number of leading characters the two texts share."""
    limit = min(len(text_a), len(text_b))
    a = np.frombuffer(text_a[:limit].encode("utf-32-le"), np.uint32)
    b = np.frombuffer(text_b[:limit].encode("utf-32-le"), np.uint32)
    differ = np.flatnonzero(a != b)
    return int(differ[0]) if differ.size else limit


def membership(offsets: list[tuple[int, int]], spans: list[Span]) -> np.ndarray:
    """``[seq_len, n_spans]`` bool: token ``i`` overlaps span ``j`` (empty tokens overlap none)."""
    tokens = np.asarray(offsets, np.int64).reshape(-1, 2)
    bounds = np.asarray(spans, np.int64).reshape(-1, 2)
    start = np.maximum(tokens[:, None, 0], bounds[None, :, 0])
    end = np.minimum(tokens[:, None, 1], bounds[None, :, 1])
    return end > start


@dataclass(frozen=True, eq=False)
class SpanPieces:
    """One model's tokens grouped by shared span: the index arrays of the projection.

    ``membership`` is ``[seq_len, n_spans]`` bool. The ``n_pairs`` (token, span) pairs are
    listed span by span: ``token_index[n_pairs]`` is each pair's token, ``starts[n_spans]``
    the first pair of each span, ``key_weight[n_pairs]`` ``1 / spans covered by the token``
    and ``query_weight[n_pairs]`` ``1 / pieces of the span``.
    """

    membership: np.ndarray
    token_index: np.ndarray
    starts: np.ndarray
    key_weight: np.ndarray
    query_weight: np.ndarray

    @classmethod
    def from_membership(cls, member: np.ndarray) -> SpanPieces:
        """Index arrays for ``member`` ``[seq_len, n_spans]``; every span needs a piece."""
        per_span = member.sum(axis=0)
        if (per_span == 0).any():
            raise ValueError("Every span needs at least one token; drop the others first.")
        span_index, token_index = np.nonzero(member.T)  # row-major: grouped by span
        starts = np.concatenate([[0], np.cumsum(per_span)[:-1]])
        per_token = member.sum(axis=1)
        return cls(
            membership=member,
            token_index=token_index,
            starts=starts,
            key_weight=(1.0 / per_token[token_index]).astype(np.float32),
            query_weight=(1.0 / per_span[span_index]).astype(np.float32),
        )

    @property
    def n_spans(self) -> int:
        return self.membership.shape[1]

    def project(self, attention: np.ndarray) -> np.ndarray:
        """Attention ``[..., seq_len, seq_len]`` (query, key) onto spans: ``[..., n_spans, n_spans]``.

        float32, rows summing to 1, by the rule of the module docstring.
        """
        seq_len = self.membership.shape[0]
        if attention.shape[-2:] != (seq_len, seq_len):
            raise ValueError(
                f"Attention must end in [{seq_len}, {seq_len}] for this tokenization, "
                f"got {list(attention.shape)}."
            )
        keys = attention[..., self.token_index].astype(np.float32) * self.key_weight
        keyed = np.add.reduceat(keys, self.starts, axis=-1)  # [..., seq_len, n_spans]
        queries = keyed[..., self.token_index, :] * self.query_weight[:, None]
        spans = np.add.reduceat(queries, self.starts, axis=-2)  # [..., n_spans, n_spans]
        totals = spans.sum(axis=-1, keepdims=True)
        empty = totals[..., 0] <= 0
        spans[empty] = 1.0 / self.n_spans
        totals[empty] = 1.0
        spans /= totals
        return spans


@dataclass(frozen=True, eq=False)
class Alignment:
    """Two tokenizations of ``text`` on its ``n_spans`` shared ``spans``.

    ``a`` and ``b`` hold each model's pieces; ``dropped`` lists the shared spans left out
    because one model had no token on them.
    """

    text: str
    granularity: Granularity
    spans: tuple[Span, ...]
    dropped: tuple[Span, ...]
    a: SpanPieces
    b: SpanPieces

    @property
    def n_spans(self) -> int:
        return len(self.spans)

    @property
    def labels(self) -> list[str]:
        """The text of each span."""
        return [self.text[start:end] for start, end in self.spans]


def align(
    text_a: str,
    offsets_a: list[tuple[int, int]],
    text_b: str,
    offsets_b: list[tuple[int, int]],
    granularity: Granularity = Granularity.WORD,
) -> Alignment:
    """Align tokenization A (``offsets_a`` into ``text_a``) with B on their shared spans.

    Raises `HeadlightError` when no span of the text is shared by both.
    """
    shared_length = common_prefix_length(text_a, text_b)
    in_b = set(text_spans(text_b, granularity))
    candidates = [
        span for span in text_spans(text_a, granularity) if span[1] <= shared_length and span in in_b
    ]
    member_a = membership(offsets_a, candidates)
    member_b = membership(offsets_b, candidates)
    keep = member_a.any(axis=0) & member_b.any(axis=0)
    if not keep.any():
        raise HeadlightError(
            "The two models share no word of the text, so their heads cannot be compared. "
            "Use a longer text (and turn generation off if the continuations differ)."
        )
    return Alignment(
        text=text_a[:shared_length],
        granularity=granularity,
        spans=tuple(span for span, kept in zip(candidates, keep, strict=True) if kept),
        dropped=tuple(span for span, kept in zip(candidates, keep, strict=True) if not kept),
        a=SpanPieces.from_membership(member_a[:, keep]),
        b=SpanPieces.from_membership(member_b[:, keep]),
    )
