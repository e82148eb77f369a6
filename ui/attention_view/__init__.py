"""Headlight's attention view: a Streamlit component for inputs of any length.

The browser side is plain JavaScript and canvas in ``frontend/`` (no build step, no network):
an overview grid of every layer x head, the selected head's map with zoom and pan, and a token
strip whose hovered token shows its most attended tokens. Only the thumbnails travel up front
(`core.attention.payload.overview_payload`); a click on a head sends ``{"layer", "head"}``
back, and the next run passes that head's `HeadDetail`.

Usage, in one script run::

    selection = selected_head(analysis, key)
    detail = load_head_detail(analysis, *selection)[0] if selection else None
    attention_view(analysis, key=key, detail=detail)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from core.attention.payload import HeadDetail, detail_payload, overview_payload, resolve_head_detail
from core.domain.analysis import Analysis
from ui import resources

FRONTEND = Path(__file__).parent / "frontend"

_component = components.declare_component("attention_view", path=str(FRONTEND))


def _selection(value: object, analysis: Analysis) -> tuple[int, int] | None:
    """``(layer, head)`` from the browser's value if it names a head of the model, else None.

    The value comes from the browser, so anything else is ignored rather than trusted.
    """
    if not isinstance(value, dict):
        return None
    layer, head = value.get("layer"), value.get("head")
    if type(layer) is not int or type(head) is not int:
        return None
    if not (0 <= layer < analysis.model.n_layers and 0 <= head < analysis.model.n_heads):
        return None
    return layer, head


def selected_head(analysis: Analysis, key: str) -> tuple[int, int] | None:
    """The head last clicked in the view with this key, read before the view is drawn.

    Streamlit stores a component's value under its key at the start of the run, so the
    detail is computed and sent in the same run as the click.
    """
    return _selection(st.session_state.get(key), analysis)


def load_head_detail(analysis: Analysis, layer: int, head: int) -> tuple[HeadDetail, str | None]:
    """The head's full map (kept, or its layer recomputed through the cache), else its top-k.

    The second item is a notice for the user when only the top-k could be had.
    """
    info = analysis.model

    def recompute(index: int) -> np.ndarray:
        return resources.layer_attention(info.model_id, info.revision, analysis.token_ids, index)

    return resolve_head_detail(analysis, layer, head, recompute=recompute)


def attention_view(analysis: Analysis, *, key: str, detail: HeadDetail | None) -> dict | None:
    """Draw the view; returns the head last clicked, ``{"layer": l, "head": h}``, or None.

    ``detail`` is the selected head's map (see `load_head_detail`); None shows the overview
    only. Heads outside the model are ignored.
    """
    value = _component(
        overview=overview_payload(analysis),
        detail=detail_payload(detail) if detail is not None else None,
        key=key,
        default=None,
    )
    selection = _selection(value, analysis)
    return None if selection is None else {"layer": selection[0], "head": selection[1]}
