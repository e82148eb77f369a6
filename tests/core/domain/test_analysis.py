"""Request validation and cache keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.domain.analysis import MAX_TEXT_CHARS, AnalysisMode, AnalysisRequest, GenerationParams
from core.domain.errors import validation_message


def test_control_characters_stripped_and_text_normalised() -> None:
    """Control characters vanish; tabs and newlines stay; NFC normalisation applies."""
    request = AnalysisRequest(model_id="m", text="a\x07b\tc\nd\x1be\u0301")
    assert request.text == "ab\tc\nd\u00e9"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter some text"),
        (" \n\t ", "Enter some text"),
        ("bad\x00byte", "NUL"),
        ("x" * (MAX_TEXT_CHARS + 1), "the limit is 20,000"),
    ],
)
def test_bad_text_rejected_with_message(text: str, message: str) -> None:
    """Each class of bad text gets its own readable message."""
    with pytest.raises(ValidationError) as info:
        AnalysisRequest(model_id="m", text=text)
    assert message in validation_message(info.value)


@pytest.mark.parametrize(
    "params",
    [
        {"max_new_tokens": 0},
        {"max_new_tokens": 10_000},
        {"temperature": 0},
        {"top_p": 1.5},
        {"top_k": -1},
        {"seed": -3},
        {"unknown": 1},
    ],
)
def test_out_of_range_generation_parameters(params: dict) -> None:
    """Out-of-range parameters are refused with the field named."""
    with pytest.raises(ValidationError) as info:
        GenerationParams(**params)
    field = next(iter(params))
    assert field in validation_message(info.value)


def test_cache_key_changes_with_every_input() -> None:
    """Any change of model, revision, text, mode or parameter changes the key."""
    base = AnalysisRequest(model_id="m", text="hello", mode=AnalysisMode.GENERATE)
    key = base.cache_key("r1")
    assert key == AnalysisRequest(model_id="m", text="hello", mode=AnalysisMode.GENERATE).cache_key("r1")
    variants = [
        base.cache_key("r2"),
        base.model_copy(update={"model_id": "n"}).cache_key("r1"),
        base.model_copy(update={"text": "hello!"}).cache_key("r1"),
        base.model_copy(update={"mode": AnalysisMode.ENCODE}).cache_key("r1"),
        base.model_copy(update={"generation": GenerationParams(seed=1)}).cache_key("r1"),
        base.model_copy(update={"top_k_next": 9}).cache_key("r1"),
    ]
    assert len({key, *variants}) == len(variants) + 1


def test_encode_key_ignores_generation_parameters() -> None:
    """Generation settings do not affect an encode, so they do not split the cache."""
    one = AnalysisRequest(model_id="m", text="t", generation=GenerationParams(seed=1))
    two = AnalysisRequest(model_id="m", text="t", generation=GenerationParams(seed=2))
    assert one.cache_key("r") == two.cache_key("r")
