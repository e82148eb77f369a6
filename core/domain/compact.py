"""The compact form of attention as a value: what every analysis carries, bounded in bytes.

Building it (`core.attention.compact.CompactBuilder`) and its binary format
(`core.attention.compact.encode` / `decode`) live with the math; this is only the type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)  # arrays have no single truth value; compare fields explicitly
class CompactAttention:
    """Compact attention for ``n_layers`` x ``n_heads`` heads over ``seq_len`` tokens.

    - ``overview``: ``[n_layers, n_heads, S, S]`` uint8 codes (see the module docstring);
    - ``overview_scale``: ``[n_layers, n_heads]`` float32, the value of code 255 per head;
    - ``topk_index``: ``[n_layers, n_heads, seq_len, k]`` uint16/uint32 key positions,
      most attended first;
    - ``topk_value``: ``[n_layers, n_heads, seq_len, k]`` uint8, ``attention * 255`` rounded;
    - ``stats``: ``{name: [n_layers, n_heads] float32}`` for each name in `STAT_NAMES`.
    """

    seq_len: int
    overview: np.ndarray
    overview_scale: np.ndarray
    topk_index: np.ndarray
    topk_value: np.ndarray
    stats: dict[str, np.ndarray]

    @property
    def n_layers(self) -> int:
        return self.overview.shape[0]

    @property
    def n_heads(self) -> int:
        return self.overview.shape[1]

    @property
    def overview_size(self) -> int:
        return self.overview.shape[2]

    @property
    def k(self) -> int:
        return self.topk_index.shape[3]
