"""The one service entry (`AnalysisService.submit`) and the immutable result it returns."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.attention.compact import compact_from_full
from core.domain.analysis import AnalysisForm, AnalysisMode, Deferred
from core.domain.errors import HeadlightError, InputTooLongError
from core.domain.identity import Actor
from core.domain.settings import Settings
from core.models.pool import ModelPool
from core.models.registry import Registry
from core.ops.telemetry import Telemetry
from core.service.analysis_service import AnalysisService
from core.service.rate_limit import RateLimiter
from core.store.request_log import RequestLog
from tests.factories import make_analysis
from tests.fixtures.tiny import tiny_counter, tiny_model

TINY = tiny_model("causal", n_layers=2, n_heads=4)  # max_input_tokens 64
ANALYST = Actor(key="user:7", role="analyst")


class _Log(RequestLog):
    """A request log that keeps its entries in memory."""

    def __init__(self) -> None:
        self.entries: list = []

    def record(self, entry) -> None:  # type: ignore[override]
        self.entries.append(entry)

    def flush(self) -> None:
        return None


def _service(settings: Settings) -> tuple[AnalysisService, list, _Log]:
    loads: list = []
    log = _Log()
    service = AnalysisService(
        settings,
        Registry([TINY.spec]),
        pool=ModelPool(lambda spec: loads.append(spec.id) or TINY, budget_bytes=1 << 30),
        limiter=RateLimiter({"analyst": "2/minute", "anonymous": "2/minute"}),
        telemetry=Telemetry(),
        request_log=log,
        tokenizers=tiny_counter,
    )
    return service, loads, log


def _form(text: str, **changes) -> AnalysisForm:
    fields = {"model_id": TINY.spec.id, "text": text, "mode": AnalysisMode.ENCODE} | changes
    return AnalysisForm(**fields)


def test_too_many_tokens_are_refused_before_the_rate_limit_and_the_model(settings: Settings) -> None:
    service, loads, log = _service(settings)
    long_text = "word " * 80  # > 64 tokens for the tiny model
    with pytest.raises(InputTooLongError, match="at most 64"):
        service.submit(_form(long_text), actor=ANALYST)
    # Generation counts the new tokens too: 40 words fit alone, not with 40 more tokens.
    with pytest.raises(InputTooLongError):
        service.submit(
            _form("word " * 40, mode=AnalysisMode.GENERATE, generation={"max_new_tokens": 40}), actor=ANALYST
        )
    assert loads == []  # no model was loaded
    assert service.rate_status(ANALYST).remaining == 2  # no quota was spent
    assert [entry.error_kind for entry in log.entries] == ["input_too_long", "input_too_long"]
    assert service.submit(_form("short enough"), actor=ANALYST).analysis.seq_len < 64
    assert loads == [TINY.spec.id]


def test_invalid_input_is_one_sentence_and_logged(settings: Settings) -> None:
    service, loads, log = _service(settings)
    with pytest.raises(HeadlightError, match="Enter some text"):
        service.submit(_form("   "), actor=ANALYST)
    with pytest.raises(HeadlightError, match="max_new_tokens"):
        service.submit(_form("hi", generation={"max_new_tokens": 100_000}), actor=ANALYST)
    assert [entry.error_kind for entry in log.entries] == ["validation", "validation"]
    assert loads == [] and service.rate_status(ANALYST).remaining == 2


def test_redaction_happens_first_and_is_reported(settings: Settings) -> None:
    service, _, _ = _service(settings)
    result = service.submit(_form("mail jane@example.com now", redact=True), actor=ANALYST)
    assert result.redactions == {"email": 1}
    assert "jane@" not in result.analysis.text and "[EMAIL]" in result.analysis.request.text


def test_an_analysis_cannot_change_after_it_is_built() -> None:
    analysis = make_analysis("one two three")
    with pytest.raises(AttributeError, match="immutable"):
        analysis.cache_hit = True  # type: ignore[misc]
    with pytest.raises(ValueError):
        analysis.attention[0, 0, 0, 0] = 1  # type: ignore[index]
    hit = analysis.replace(cache_hit=True)
    assert hit.cache_hit and not analysis.cache_hit and hit.tokens is analysis.tokens
    with pytest.raises(TypeError, match="no field"):
        analysis.replace(colour="red")


def test_the_compact_form_is_built_once_for_every_reader() -> None:
    """A producer hands over how to build it; four threads reading `compact` at once build it
    once and all get the same object; nothing is built before anyone asks."""
    base = make_analysis("one two three four")
    calls: list[int] = []
    gate = threading.Event()

    def build():
        calls.append(1)
        gate.wait(10)
        return compact_from_full(base.attention)

    analysis = base.replace(compact=Deferred(build))
    assert calls == []  # the interactive path pays nothing
    seen: list = []
    readers = [threading.Thread(target=lambda: seen.append(analysis.compact)) for _ in range(4)]
    for reader in readers:
        reader.start()
    gate.set()
    for reader in readers:
        reader.join(timeout=10)
    assert len(seen) == 4 and all(c is seen[0] for c in seen) and calls == [1]
    np.testing.assert_array_equal(seen[0].topk_index, base.compact.topk_index)
