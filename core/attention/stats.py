"""Per-head attention statistics, computed layer by layer in float32.

Attention is ``[n_layers, n_heads, seq_len, seq_len]`` (query, key) with rows summing to 1;
the per-layer helpers take ``[n_heads, seq_len, seq_len]``. A layer is read in blocks of
query rows small enough to stay in the CPU cache, so a float16 layer is never copied whole
to float32 and the extra memory is ``O(n_heads * seq_len)`` plus one block (about 1 MiB).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from core.domain.analysis import HeadStats

STAT_NAMES = ("entropy", "mean_distance", "previous_token", "first_token", "self")

# Target size of one float32 block of query rows: a few of these (the block, its logs, the
# distances) fit in a 2-4 MiB L2 cache, which is what makes the blocked pass fast.
_BLOCK_BYTES = 1 << 20
# Zeros are clamped to this before the log, so 0 * log(0) contributes 0 to the entropy.
_TINY = np.finfo(np.float32).tiny
# float32 value of every float16 bit pattern (256 KiB, fits in cache). numpy's own
# float16 -> float32 cast is scalar code and costs 2-3x more than this table lookup.
_FLOAT16_TABLE = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


def check_layer_attention(layer_attention: np.ndarray) -> tuple[int, int]:
    """Validate one layer's attention ``[n_heads, seq_len, seq_len]``; return the shape.

    Raises ``ValueError`` for any other shape or a non-floating dtype.
    """
    if not isinstance(layer_attention, np.ndarray):
        raise ValueError(
            f"Layer attention must be a numpy array, got {type(layer_attention).__name__}; "
            "convert tensors with .float().cpu().numpy()."
        )
    shape = layer_attention.shape
    if layer_attention.ndim != 3 or shape[1] != shape[2] or shape[1] == 0 or shape[0] == 0:
        raise ValueError(f"Layer attention must be shaped [n_heads, seq_len, seq_len], got {list(shape)}.")
    if not np.issubdtype(layer_attention.dtype, np.floating):
        raise ValueError(f"Layer attention must be float16 or float32, got {layer_attention.dtype}.")
    return shape[0], shape[1]


def query_blocks(layer_attention: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(q0, block)`` covering all queries of one layer, in order.

    ``layer_attention`` is ``[n_heads, seq_len, seq_len]``; ``block`` is
    ``[n_heads, rows, seq_len]`` float32 and holds queries ``q0 .. q0 + rows - 1``. Float32
    input is yielded as views; other float dtypes are converted one block at a time
    (float16 exactly, by table lookup).
    """
    n_heads, seq_len = check_layer_attention(layer_attention)
    rows = max(1, _BLOCK_BYTES // (n_heads * seq_len * 4))
    for q0 in range(0, seq_len, rows):
        block = layer_attention[:, q0 : q0 + rows]
        if block.dtype == np.float16:
            yield q0, np.take(_FLOAT16_TABLE, block.view(np.uint16))
        else:
            yield q0, np.asarray(block, dtype=np.float32)


class LayerStatsAccumulator:
    """Per-query statistics of one layer, filled block by block from `query_blocks`.

    Keeps one float32 value per (statistic, head, query): ``5 * n_heads * seq_len`` floats.
    """

    def __init__(self, n_heads: int, seq_len: int) -> None:
        self.n_heads = n_heads
        self.seq_len = seq_len
        self._rows = {name: np.zeros((n_heads, seq_len), np.float32) for name in STAT_NAMES}
        self._positions = np.arange(seq_len, dtype=np.float32)

    def add(self, q0: int, block: np.ndarray) -> None:
        """Record queries ``q0 .. q0 + rows - 1`` from ``block`` ``[n_heads, rows, seq_len]``."""
        rows = block.shape[1]
        span = slice(q0, q0 + rows)
        queries = np.arange(q0, q0 + rows)
        local = np.arange(rows)

        logs = np.maximum(block, _TINY)
        np.log(logs, out=logs)
        self._rows["entropy"][:, span] = -np.vecdot(block, logs)
        distance = np.abs(self._positions[None, :] - self._positions[span, None])  # [rows, seq]
        self._rows["mean_distance"][:, span] = np.vecdot(block, distance)
        self._rows["first_token"][:, span] = block[:, :, 0]
        self._rows["self"][:, span] = block[:, local, queries]
        # Query 0 has no previous token; its slot stays 0 and is left out of the mean.
        has_prev = queries >= 1
        self._rows["previous_token"][:, queries[has_prev]] = block[:, local[has_prev], queries[has_prev] - 1]

    def result(self) -> dict[str, np.ndarray]:
        """Per-head means ``{name: [n_heads] float32}`` over the queries added so far.

        ``previous_token`` averages queries ``1 ..``; it is 0 when ``seq_len == 1``. Raises
        ``ValueError`` if the attention held NaN or infinities (they make an entropy non-finite).
        """
        out = {name: rows.mean(axis=1) for name, rows in self._rows.items()}
        if not np.isfinite(out["entropy"]).all():
            raise ValueError(
                "The attention contains NaN or infinite values, usually a float16 overflow in "
                "the model; run the model in float32 or bfloat16."
            )
        out["previous_token"] = (
            self._rows["previous_token"][:, 1:].mean(axis=1)
            if self.seq_len > 1
            else np.zeros(self.n_heads, np.float32)
        )
        return out


def layer_head_stats(layer_attention: np.ndarray) -> dict[str, np.ndarray]:
    """All per-head statistics of one layer ``[n_heads, seq_len, seq_len]``.

    Returns ``{name: [n_heads] float32}`` for each name in `STAT_NAMES`:

    - ``entropy``: mean over queries of the row entropy, in nats;
    - ``mean_distance``: mean over queries of ``sum_k a[q, k] * |q - k|``, in tokens;
    - ``previous_token``: mean over ``q >= 1`` of ``a[q, q - 1]`` (0 when ``seq_len == 1``);
    - ``first_token``: mean over queries of ``a[q, 0]`` (attention to the "sink");
    - ``self``: mean over queries of ``a[q, q]``.
    """
    n_heads, seq_len = check_layer_attention(layer_attention)
    acc = LayerStatsAccumulator(n_heads, seq_len)
    for q0, block in query_blocks(layer_attention):
        acc.add(q0, block)
    return acc.result()


def head_stats(attention: np.ndarray) -> HeadStats:
    """Entropy and mean distance ``[n_layers, n_heads]`` of ``[n_layers, n_heads, seq, seq]``.

    Computed one layer at a time with `layer_head_stats`, as a streaming caller would.
    """
    if not isinstance(attention, np.ndarray) or attention.ndim != 4:
        raise ValueError(
            "Attention must be a numpy array shaped [n_layers, n_heads, seq_len, seq_len], "
            f"got {list(np.shape(attention))}."
        )
    per_layer = [layer_head_stats(layer) for layer in attention]
    return HeadStats(
        entropy=np.stack([stats["entropy"] for stats in per_layer]),
        mean_distance=np.stack([stats["mean_distance"] for stats in per_layer]),
    )


def induction_score(layer_attention: np.ndarray, period: int) -> np.ndarray:
    """How strongly each head does induction on a block of ``period`` tokens repeated.

    ``layer_attention`` is ``[n_heads, seq_len, seq_len]`` for such a sequence. An induction
    head at query ``q`` attends to the token after the previous occurrence of ``q``'s token,
    i.e. key ``q - period + 1``. Returns ``[n_heads]`` float32: the mean over
    ``q >= period`` of ``a[q, q - period + 1]``, 1.0 for a perfect induction head.
    """
    _, seq_len = check_layer_attention(layer_attention)
    if not 1 <= period < seq_len:
        raise ValueError(
            f"period must be between 1 and seq_len - 1 = {seq_len - 1}, got {period}; "
            "the sequence must hold at least one repeated token."
        )
    queries = np.arange(period, seq_len)
    picked = layer_attention[:, queries, queries - period + 1].astype(np.float32)
    return picked.mean(axis=1)
