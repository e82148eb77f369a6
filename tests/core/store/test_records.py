"""The persistence boundary: Analysis -> stored fields -> Analysis, and deterministic recompute."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.attention import compact as compact_codec
from core.attention.codec import analysis_fields
from core.domain.analysis import AnalysisMode, AnalysisRequest, GenerationParams
from core.domain.errors import HeadlightError
from core.service.analysis_service import recompute
from core.service.inference import analyse
from core.store.records import analysis_from_record, request_from_record
from db.models import Visualization
from tests.factories import make_analysis
from tests.fixtures.tiny import tiny_model


def _record(fields: dict) -> Visualization:
    return Visualization(owner_id=1, title="t", **fields)


def test_request_is_rebuilt_exactly() -> None:
    analysis = make_analysis("a b c", generated=" d e", seed=7)
    assert request_from_record(_record(analysis_fields(analysis))) == analysis.request


def test_recompute_is_deterministic_on_a_tiny_model() -> None:
    """Running the stored request again reproduces the stored compact form bit for bit."""
    loaded = tiny_model("causal")
    request = AnalysisRequest(
        model_id=loaded.spec.id,
        text="hello world again",
        mode=AnalysisMode.GENERATE,
        generation=GenerationParams(max_new_tokens=3, do_sample=True, seed=11),
    )
    first = analyse(loaded, request, full_attention_max_bytes=1 << 20)
    record = _record(analysis_fields(first))
    service = SimpleNamespace(
        registry=SimpleNamespace(get=lambda _id: loaded.spec),
        run=lambda req, **_: analyse(loaded, req, full_attention_max_bytes=1 << 20),
    )
    again = recompute(analysis_from_record(record), service)
    assert again.tokens == first.tokens
    assert compact_codec.encode(again.compact) == record.compact_attention
    reopened = analysis_from_record(record)
    assert reopened.tokens == again.tokens and reopened.attention is None


def test_recompute_refuses_another_revision() -> None:
    record = _record(analysis_fields(make_analysis()))
    calls = []
    service = SimpleNamespace(
        registry=SimpleNamespace(get=lambda _id: SimpleNamespace(revision="newer")),
        run=lambda *args, **kwargs: calls.append(args),
    )
    with pytest.raises(HeadlightError, match="revision test-rev"):
        recompute(analysis_from_record(record), service)
    assert not calls
