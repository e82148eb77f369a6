"""bertviz views as standalone, fully offline HTML documents.

bertviz 1.4.1 emits HTML that loads require.js from a CDN and points require at CDN copies of
d3 and jQuery; without internet access the view stays blank. Here every document inlines the
pinned copies in ``assets/`` (see ``scripts/vendor_js.sh``): d3 and jQuery first, so that they
set ``window.d3`` / ``window.jQuery`` (loaded after require.js, d3 would issue an anonymous
``define`` that require rejects), then require.js, then named AMD modules ``d3`` and ``jquery``
so that bertviz's ``requirejs(['jquery', 'd3'], ...)`` resolves without a network request.

The view scripts (``head_view.js``, ``model_view.js``, ``neuron_view.js``) are read from the
installed bertviz package with their ``require.config`` (the CDN paths) cut out. For the head and
model views the parameters they expect are built here rather than by bertviz's Python functions,
because that lets us (a) write attention compactly, rounded to 3 decimals with no spaces and
once (bertviz writes it twice), 7 to 9 times smaller than bertviz's page, and know the exact size
before building the string; (b) escape the JSON
for a ``<script>`` element, so a token such as ``</script>`` cannot end it; (c) import neither
torch nor IPython.

Attention is ``[n_layers, n_heads, seq_len, seq_len]`` (``[layer, head, query, key]``) throughout.

The neuron view needs bertviz's own model classes, which return queries and keys; the model
adapter runs them (`core.models.huggingface.neuron_view`, BERT checkpoints only) and hands
over plain data, which is rendered here.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from core.models.huggingface.neuron_view import neuron_view_data
from core.models.huggingface.neuron_view import neuron_view_reason as neuron_view_reason

# Streamlit accepts messages up to 200 MB, but a browser parsing and drawing more than about
# 25 MB of bertviz JSON becomes unresponsive, so views above this are refused.
BERTVIZ_MAX_BYTES = 25_000_000

_ASSETS = Path(__file__).parent / "assets"
_DECIMALS = 3
_SCALE = 10**_DECIMALS
_VIEW_ID = "bertviz-headlight"  # each document holds one view, so one fixed id suffices
_FONT = "font-family:'Helvetica Neue', Helvetica, Arial, sans-serif;"  # as bertviz sets it

# JSON text of k / 1000 for k in 0..1000, shortest form: "0", "0.001", ..., "0.5", ..., "1".
_VALUE_TEXT = ["0", *(repr(k / _SCALE) for k in range(1, _SCALE)), "1"]
_VALUE_BYTES = np.array([len(text) for text in _VALUE_TEXT], dtype=np.int64)
# Longest value text ("0.123"); with its comma, 6 bytes is the most one value can cost.
_MAX_VALUE_BYTES = max(len(text) for text in _VALUE_TEXT)

# Measured on this machine, bytes of HTML per attention value (bertviz 1.4.1; 4x4x64 dense
# random softmax, all-MiniLM-L6-v2 6x12x124 and SmolLM2-135M 30x9x122 on one English paragraph):
# - bertviz's own head_view(..., html_action="return"), float32 attention: 43.9 / 45.2 / 27.9.
#   That is twice what its numbers take, because head_view.js names PYTHON_PARAMS twice (once
#   in a comment) and bertviz replaces both, so its JSON is written twice;
# - bertviz's own, attention rounded to 3 decimals first (as float64): 13.9 / 12.8 / 11.1;
# - this module (rounded, no spaces, written once): 5.96 / 4.76 / 3.14. A value costs at most 6
#   bytes ("0.123,"); real attention is mostly "0" or "0.01". The estimate uses the 6-byte bound
#   and came out 1.01 / 1.24 / 1.89 times the real size of those three pages.
# Allowance per token copy in the params (quotes, comma, the token as ASCII JSON): measured 7.4
# bytes for MiniLM's word pieces and 12.8 for SmolLM2's (before "Ġ" is turned into a space).
_BYTES_PER_TOKEN = 15

# Both views draw one SVG line per (head, query, key): the head view for the layer shown, the
# model view for every layer. In headless Chromium (2 cores) the head view of 9 heads x 128
# tokens (147k lines) took 3 s to draw and the model view of 6 x 12 x 64 (295k lines) 5.6 s, each
# time the view is redrawn; 150k lines keeps a redraw near 3 s.
BERTVIZ_MAX_LINES = 150_000

_FILTERS_SPLIT = ("All", "Prompt -> Prompt", "Generated -> Generated", "Generated -> Prompt")


def head_view_html(
    attention: np.ndarray,
    tokens: list[str],
    *,
    layer: int = 0,
    heads: list[int] | None = None,
    prompt_len: int | None = None,
    include_layers: list[int] | None = None,
) -> str:
    """bertviz's head view of one layer at a time, as a standalone offline HTML document.

    Args:
        attention: ``[n_layers, n_heads, seq_len, seq_len]`` attention weights, any float dtype;
            rounded to 3 decimals and clipped to [0, 1] for display.
        tokens: ``seq_len`` token strings (user text: escaped here). As in bertviz, "Ġ" and "▁"
            are shown as spaces and "</w>" is dropped.
        layer: layer shown first; must be in ``include_layers``.
        heads: heads selected first (default all).
        prompt_len: number of prompt tokens when the rest were generated. If some tokens were
            generated (``0 < prompt_len < seq_len``), a menu adds the views Prompt -> Prompt,
            Generated -> Generated and Generated -> Prompt (query -> key), which nearly doubles
            the payload; otherwise it is ignored.
        include_layers: layers to carry in the page (default all); fewer layers, smaller page.

    Returns:
        A full HTML document for ``streamlit.components.v1.html``; it loads nothing.

    Raises:
        ValueError: if shapes and tokens disagree, an index is out of range, or the page would
            exceed ``BERTVIZ_MAX_BYTES`` or draw more than ``BERTVIZ_MAX_LINES`` lines
            (``n_heads * seq_len**2``).
    """
    quantized = _quantize(attention, tokens)
    n_layers, n_heads, seq_len, _ = quantized.shape
    layers = _check_layers(include_layers, n_layers)
    if layer not in layers:
        raise ValueError(f"layer {layer} is not among the layers shown ({layers}); pick one of them.")
    if heads is not None:
        _check_indices("heads", heads, n_heads)
        if not heads:
            raise ValueError("heads is empty; pass None to select all heads.")
    split = _prompt_split(prompt_len, seq_len)
    _check_lines("head", len(layers), n_heads, seq_len)
    quantized = quantized[layers]
    tokens = _prettify(tokens)

    entries = [("All", quantized, tokens, tokens)]
    if split is not None:
        prompt, generated = slice(0, split), slice(split, seq_len)
        entries += [
            (_FILTERS_SPLIT[1], quantized[:, :, prompt, prompt], tokens[prompt], tokens[prompt]),
            (
                _FILTERS_SPLIT[2],
                quantized[:, :, generated, generated],
                tokens[generated],
                tokens[generated],
            ),
            (
                _FILTERS_SPLIT[3],
                quantized[:, :, generated, prompt],
                tokens[generated],
                tokens[prompt],
            ),
        ]
    params = {
        "default_filter": "0",
        "root_div_id": _VIEW_ID,
        "layer": layer,
        "heads": heads,
        "include_layers": layers,
    }
    body = f"""
<div id="{_VIEW_ID}" style="{_FONT}">
  <span style="user-select:none">Layer: <select id="layer"></select>{_filter_menu(entries)}</span>
  <div id="vis"></div>
</div>"""
    return _document(body, "head_view", entries, params)


def model_view_html(
    attention: np.ndarray,
    tokens: list[str],
    *,
    include_layers: list[int] | None = None,
) -> str:
    """bertviz's model view (a thumbnail per layer and head), as a standalone offline document.

    Args:
        attention: ``[n_layers, n_heads, seq_len, seq_len]`` attention weights, any float dtype;
            rounded to 3 decimals and clipped to [0, 1] for display.
        tokens: ``seq_len`` token strings (user text: escaped here). As in bertviz, "Ġ" and "▁"
            are shown as spaces and "</w>" is dropped.
        include_layers: layers to show (default all); the page draws ``n_heads * seq_len**2``
            lines per layer, so fewer layers keep it responsive.

    Returns:
        A full HTML document for ``streamlit.components.v1.html``; it loads nothing.

    Raises:
        ValueError: if shapes and tokens disagree, a layer is out of range, or the page would
            exceed ``BERTVIZ_MAX_BYTES`` or draw more than ``BERTVIZ_MAX_LINES`` lines
            (``len(include_layers) * n_heads * seq_len**2``).
    """
    quantized = _quantize(attention, tokens)
    n_layers, n_heads, seq_len, _ = quantized.shape
    layers = _check_layers(include_layers, n_layers)
    _check_lines("model", len(layers), n_heads, seq_len)
    tokens = _prettify(tokens)
    entries = [("All", quantized[layers], tokens, tokens)]
    params = {
        "default_filter": "0",
        # bertviz draws the model view's axis labels black in either mode: only light is legible.
        "display_mode": "light",
        "root_div_id": _VIEW_ID,
        "include_layers": layers,
        "include_heads": list(range(n_heads)),
        "total_heads": n_heads,
    }
    body = f"""
<div id="{_VIEW_ID}" style="{_FONT}">
  <div id="vis"></div>
</div>"""
    return _document(body, "model_view", entries, params)


def estimate_payload_bytes(
    n_layers: int,
    n_heads: int,
    seq_len: int,
    view: str = "head",
    *,
    prompt_len: int | None = None,
) -> int:
    """Upper estimate of the size in bytes of ``head_view_html`` / ``model_view_html``'s output.

    ``n_layers`` is the number of layers carried (``len(include_layers)`` when given). The
    attention part is a bound (every value costs at most 6 bytes); the token part assumes
    average-length tokens (``_BYTES_PER_TOKEN``). ``prompt_len`` as in ``head_view_html``.
    """
    if view not in ("head", "model"):
        raise ValueError(f"view must be 'head' or 'model', not {view!r}.")
    if min(n_layers, n_heads, seq_len) < 1:
        raise ValueError("n_layers, n_heads and seq_len must be at least 1.")
    split = _prompt_split(prompt_len, seq_len) if view == "head" else None
    blocks = [(seq_len, seq_len)]
    if split is not None:
        generated = seq_len - split
        blocks += [(split, split), (generated, generated), (generated, split)]
    # Layer and head indices are listed in the params too: at most 4 bytes each ("123,").
    total = _fixed_bytes(view) + 4 * (n_layers + n_heads)
    for n_query, n_key in blocks:
        total += _array_bytes_bound((n_layers, n_heads, n_query, n_key))
        total += _BYTES_PER_TOKEN * (n_query + n_key)
    return total


def fits_bertviz(
    n_layers: int,
    n_heads: int,
    seq_len: int,
    view: str = "head",
    *,
    prompt_len: int | None = None,
) -> bool:
    """Whether the view stays within ``BERTVIZ_MAX_BYTES`` (estimated) and ``BERTVIZ_MAX_LINES``.

    ``n_layers`` is the number of layers carried. Conservative: when this is True the view
    renders (unless tokens are unusually long); when False because of bytes it may still fit,
    since real attention rounds mostly to "0".
    """
    estimate = estimate_payload_bytes(n_layers, n_heads, seq_len, view, prompt_len=prompt_len)
    lines = _svg_lines(view, n_layers, n_heads, seq_len)
    return estimate <= BERTVIZ_MAX_BYTES and lines <= BERTVIZ_MAX_LINES


def neuron_view_html(
    model_dir: str,
    text: str,
    *,
    layer: int = 0,
    head: int = 0,
) -> str:
    """bertviz's neuron view (queries, keys and their products) for a local BERT checkpoint.

    Runs the model (bertviz's implementation, on CPU) on ``[CLS] text [SEP]``. Queries, keys and
    attention are rounded to 3 decimals.

    Args:
        model_dir: directory with config.json, model.safetensors and tokenizer files.
        text: the sentence to show.
        layer, head: initially selected layer and head.

    Returns:
        A full HTML document for ``streamlit.components.v1.html``; it loads nothing.

    Raises:
        ValueError: if the model is not BERT, files are missing, the text is empty or too long,
            or an index is out of range.
    """
    data = neuron_view_data(model_dir, text)
    _check_indices("layer", [layer], data.n_layers)
    _check_indices("head", [head], data.n_heads)
    n_tokens = data.n_tokens
    params = {
        "attention": data.attention,
        "default_filter": "all",
        "root_div_id": _VIEW_ID,
        "bidirectional": True,
        "display_mode": "light",
        "layer": layer,
        "head": head,
    }
    body = f"""
<div id="{_VIEW_ID}" style="padding:8px;{_FONT}">
  <span style="user-select:none">
    <span class="dropdown-label">Layer: </span><select id="layer"></select>
    <span class="dropdown-label">Head: </span><select id="att_head"></select>
  </span>
  <div id="vis"></div>
</div>"""
    # neuron_view.js reads its parameters from window.bertviz_params.
    script = f"window.bertviz_params = {_script_json(params)};\n{_view_js('neuron_view')}"
    page = _page(body, script)
    if len(page) > BERTVIZ_MAX_BYTES:
        raise ValueError(
            f"The neuron view of {n_tokens} tokens would be {len(page):,} bytes, over the "
            f"{BERTVIZ_MAX_BYTES:,}-byte limit; shorten the text."
        )
    return page


def _quantize(attention: np.ndarray, tokens: Sequence[str]) -> np.ndarray:
    """Attention ``[n_layers, n_heads, seq_len, seq_len]`` as int16 thousandths, validated."""
    attention = np.asarray(attention)
    if attention.ndim != 4 or attention.shape[2] != attention.shape[3]:
        raise ValueError(
            f"attention must be shaped [n_layers, n_heads, seq_len, seq_len]; got {attention.shape}."
        )
    if min(attention.shape) == 0:
        raise ValueError(f"attention is empty (shape {attention.shape}).")
    if not np.issubdtype(attention.dtype, np.floating):
        raise ValueError(f"attention must be a float array, not {attention.dtype}.")
    seq_len = attention.shape[2]
    if len(tokens) != seq_len:
        raise ValueError(
            f"attention covers {seq_len} tokens but {len(tokens)} tokens were given; pass the "
            f"tokens the attention was computed for."
        )
    if not all(isinstance(token, str) for token in tokens):
        raise ValueError("tokens must be strings.")
    # Even if every value printed as "0" the page would be too big: refuse before copying.
    n_values = attention.size
    if 2 * n_values > BERTVIZ_MAX_BYTES:
        raise ValueError(_too_big_message(2 * n_values, attention.shape))
    scaled = attention.astype(np.float32) * _SCALE
    if not np.isfinite(scaled).all():
        raise ValueError("attention contains NaN or infinite values.")
    return np.rint(np.clip(scaled, 0, _SCALE)).astype(np.int16)


def _too_big_message(n_bytes: int, shape: tuple[int, ...]) -> str:
    return (
        f"A bertviz view of attention shaped {tuple(shape)} would be at least {n_bytes:,} bytes, "
        f"over the {BERTVIZ_MAX_BYTES:,}-byte limit; use fewer tokens or fewer layers "
        f"(include_layers), or Headlight's own attention view."
    )


def _check_indices(name: str, indices: Sequence[int], size: int) -> None:
    bad = [index for index in indices if not 0 <= index < size]
    if bad:
        raise ValueError(f"{name} {bad} out of range; valid values are 0 to {size - 1}.")


def _check_layers(include_layers: list[int] | None, n_layers: int) -> list[int]:
    if include_layers is None:
        return list(range(n_layers))
    if not include_layers:
        raise ValueError("include_layers is empty; pass None to show all layers.")
    if len(set(include_layers)) != len(include_layers):
        raise ValueError(f"include_layers {include_layers} repeats a layer.")
    _check_indices("include_layers", include_layers, n_layers)
    return [int(index) for index in include_layers]


def _svg_lines(view: str, n_layers: int, n_heads: int, seq_len: int) -> int:
    """Lines a view draws at once: the head view one layer, the model view all it carries."""
    return (n_layers if view == "model" else 1) * n_heads * seq_len**2


def _check_lines(view: str, n_layers: int, n_heads: int, seq_len: int) -> None:
    lines = _svg_lines(view, n_layers, n_heads, seq_len)
    if lines > BERTVIZ_MAX_LINES:
        fewer = "fewer tokens" if view == "head" else "fewer tokens or layers (include_layers)"
        raise ValueError(
            f"This {view} view would draw {lines:,} lines, over the {BERTVIZ_MAX_LINES:,} a "
            f"browser redraws quickly; use {fewer}, or Headlight's own attention view."
        )


def _prettify(tokens: Sequence[str]) -> list[str]:
    # bertviz's prettify_tokens: byte-level BPE and SentencePiece space markers become spaces.
    return [t.replace("Ġ", " ").replace("▁", " ").replace("</w>", "") for t in tokens]


def _prompt_split(prompt_len: int | None, seq_len: int) -> int | None:
    """Where generated tokens start, or None when there is nothing to split."""
    if prompt_len is None:
        return None
    if not 1 <= prompt_len <= seq_len:
        raise ValueError(f"prompt_len {prompt_len} must be between 1 and seq_len ({seq_len}).")
    return prompt_len if prompt_len < seq_len else None


def _filter_menu(entries: list[tuple[str, np.ndarray, list[str], list[str]]]) -> str:
    if len(entries) == 1:
        return ""
    options = "".join(
        f'<option value="{index}">{html.escape(name)}</option>' for index, (name, *_) in enumerate(entries)
    )
    return f' Attention: <select id="filter">{options}</select>'


def _document(
    body: str,
    view: str,
    entries: list[tuple[str, np.ndarray, list[str], list[str]]],
    params: dict[str, object],
) -> str:
    """The page for head_view.js / model_view.js, whose params hold ``attention`` entries."""
    # The page is laid out with a NUL where each attention array goes (json.dumps escapes NUL
    # in strings, so no token can produce one), sized exactly, then filled in.
    skeleton = ",".join(
        _script_json({"name": name, "attn": None, "left_text": left, "right_text": right}).replace(
            '"attn":null', '"attn":\x00', 1
        )
        for name, _, left, right in entries
    )
    params_json = '{"attention":[' + skeleton + "]," + _script_json(params)[1:]
    page = _page(body, _view_js(view).replace("PYTHON_PARAMS", params_json, 1))
    pieces = page.split("\x00")
    if len(pieces) != len(entries) + 1:
        raise RuntimeError("A NUL character in bertviz's script; cannot place the attention.")
    arrays = [array for _, array, _, _ in entries]
    n_bytes = len(page) - len(arrays) + sum(_array_bytes(array) for array in arrays)
    if n_bytes > BERTVIZ_MAX_BYTES:
        raise ValueError(_too_big_message(n_bytes, entries[0][1].shape))
    return pieces[0] + "".join(
        _array_json(array) + piece for array, piece in zip(arrays, pieces[1:], strict=True)
    )


def _script_json(value: object) -> str:
    """Compact JSON safe inside <script>: "<" only occurs in strings, where \\u003c is legal."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _array_json(quantized: np.ndarray) -> str:
    """Nested JSON lists of ``quantized / 1000``, each value in its shortest form."""
    if quantized.ndim == 1:
        return "[" + ",".join([_VALUE_TEXT[k] for k in quantized.tolist()]) + "]"
    return "[" + ",".join([_array_json(sub) for sub in quantized]) + "]"


def _array_bytes(quantized: np.ndarray) -> int:
    """Exact ``len(_array_json(quantized))``, without building it."""
    return int(_VALUE_BYTES[quantized].sum()) + _brackets_and_commas(quantized.shape)


def _array_bytes_bound(shape: tuple[int, ...]) -> int:
    """Most bytes ``_array_json`` can take for this shape."""
    return _MAX_VALUE_BYTES * int(np.prod(shape)) + _brackets_and_commas(shape)


def _brackets_and_commas(shape: tuple[int, ...]) -> int:
    # A list of k items costs 2 brackets and k - 1 commas, at every nesting level.
    total, n_lists = 0, 1
    for size in shape:
        total += n_lists * (size + 1)
        n_lists *= size
    return total


@cache
def _fixed_bytes(view: str) -> int:
    """Size of the smallest page (one layer, head and token): libraries, script, markup."""
    smallest = (np.zeros((1, 1, 1, 1), dtype=np.float32), [""])
    page = head_view_html(*smallest) if view == "head" else model_view_html(*smallest)
    return len(page)


def _page(body: str, view_script: str) -> str:
    return f"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<style>body {{ margin: 0; background: white; }}</style>
</head>
<body>{body}
{_libraries_html()}
<script>
{view_script}
</script>
</body>
</html>
"""


@cache
def _libraries_html() -> str:
    """d3 and jQuery as globals, then require.js, then both registered as AMD modules."""
    scripts = [(_ASSETS / name).read_text() for name in ("d3.min.js", "jquery.min.js", "require.js")]
    scripts.append(
        "define('d3', [], function () { return window.d3; });\n"
        "define('jquery', [], function () { return window.jQuery; });"
    )
    for script in scripts:
        # Inline scripts end at the first "</script"; the vendored files must not contain one.
        if "</script" in script.lower() or "<!--" in script:
            raise RuntimeError("A vendored script cannot be inlined; re-run scripts/vendor_js.sh.")
    return "\n".join(f"<script>\n{script}\n</script>" for script in scripts)


@cache
def _view_js(view: str) -> str:
    """bertviz's ``<view>.js`` without its require.config (which points at CDNs)."""
    # find_spec locates the package without importing it (its __init__ imports torch, IPython).
    spec = importlib.util.find_spec("bertviz")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bertviz is not installed.")
    source = (Path(spec.submodule_search_locations[0]) / f"{view}.js").read_text()
    script, n_removed = re.subn(r"require\.config\(\{.*?\}\);", "", source, count=1, flags=re.DOTALL)
    # No remote address may survive: the page must render offline.
    if n_removed != 1 or "//cdn" in script or "</script" in script.lower():
        raise RuntimeError(f"bertviz's {view}.js changed shape; update {__name__}.")
    return script
