"""Model pool: one load per model across sessions, LRU under a memory budget, failures counted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from core.domain.errors import ModelLoadError, ModelUnavailableError
from core.models.pool import ModelPool
from core.models.registry import ModelSource, ModelSpec


def _spec(model_id: str) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        label=model_id.upper(),
        kind="causal",
        revision="1",
        licence="x",
        max_input_tokens=64,
        source=ModelSource(type="local", path="/x"),
    )


class FakeLoader:
    """Loads instantly, or once ``wait()`` returns (a load still going while others ask)."""

    def __init__(self, sizes: dict[str, int], wait: Callable[[], None] | None = None) -> None:
        self.sizes, self.wait, self.calls = sizes, wait, []

    def __call__(self, spec: ModelSpec):
        self.calls.append(spec.id)
        if self.wait is not None:
            self.wait()
        return SimpleNamespace(spec=spec, nbytes=self.sizes[spec.id])


def test_concurrent_sessions_share_one_load() -> None:
    """Eight sessions asking at once trigger a single load and get the same object: the
    load lasts until every session has asked (a condition, not a sleep)."""
    asked = [0]
    changed = threading.Condition()

    def until_all_asked() -> None:
        with changed:
            assert changed.wait_for(lambda: asked[0] == 8, timeout=30)

    loader = FakeLoader({"a": 10}, wait=until_all_asked)
    pool = ModelPool(loader, budget_bytes=100)
    results = []

    def session() -> None:
        with changed:
            asked[0] += 1
            changed.notify_all()
        results.append(pool.get(_spec("a")))

    threads = [threading.Thread(target=session) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert loader.calls == ["a"]
    assert len(results) == 8 and len({id(r) for r in results}) == 1


def test_lru_eviction_keeps_two_models_within_budget() -> None:
    """The budget holds two models; a third evicts the least recently used."""
    loader = FakeLoader({"a": 40, "b": 40, "c": 40})
    pool = ModelPool(loader, budget_bytes=100)
    pool.get(_spec("a"))
    pool.get(_spec("b"))
    pool.get(_spec("a"))  # a is now the most recent
    pool.get(_spec("c"))
    assert {m.spec.id for m in pool.loaded()} == {"a", "c"}
    assert pool.used_bytes() == 80
    assert pool.unload(_spec("a")) and not pool.is_loaded(_spec("a"))


def test_model_larger_than_budget_still_loads_alone() -> None:
    """A model over the whole budget evicts everything else but is served."""
    pool = ModelPool(FakeLoader({"a": 10, "big": 500}), budget_bytes=100)
    pool.get(_spec("a"))
    assert pool.get(_spec("big")).nbytes == 500
    assert [m.spec.id for m in pool.loaded()] == ["big"]


def _failures(model_id: str) -> float:
    return REGISTRY.get_sample_value("model_load_failures_total", {"model": model_id}) or 0.0


def test_load_failure_is_reported_and_counted() -> None:
    """A crashing loader becomes a ModelLoadError with the reason, counted and listed."""

    def broken(spec: ModelSpec):
        raise RuntimeError("weights are corrupt")

    pool = ModelPool(broken, budget_bytes=100)
    before = _failures("bad")
    with pytest.raises(ModelLoadError, match="BAD failed to load: weights are corrupt"):
        pool.get(_spec("bad"))
    assert _failures("bad") == before + 1
    assert pool.failures[-1].model_id == "bad" and "corrupt" in pool.failures[-1].reason
    assert not pool.is_loaded(_spec("bad"))


def test_unavailable_model_keeps_its_message() -> None:
    """User-facing errors from the loader pass through unchanged, and are counted."""

    def unavailable(spec: ModelSpec):
        raise ModelUnavailableError("X is not available here: offline.")

    pool = ModelPool(unavailable, budget_bytes=100)
    before = _failures("off")
    with pytest.raises(ModelUnavailableError, match="offline"):
        pool.get(_spec("off"))
    assert _failures("off") == before + 1


def test_failures_go_to_the_hook_once_and_a_broken_hook_is_harmless() -> None:
    """The app and workers hook the audit log here, so the Models screen sees every process."""
    seen: list[tuple[str, str]] = []

    def broken(spec: ModelSpec) -> SimpleNamespace:
        raise RuntimeError("weights on fire")

    pool = ModelPool(broken, budget_bytes=10, on_failure=lambda spec, reason: seen.append((spec.id, reason)))
    with pytest.raises(ModelLoadError):
        pool.get(_spec("a"))
    assert seen == [("a", "RuntimeError: weights on fire")]

    def failing_hook(spec: ModelSpec, reason: str) -> None:
        raise ConnectionError("audit log down")

    pool.on_failure = failing_hook
    with pytest.raises(ModelLoadError, match="weights on fire"):  # the load's error, not the hook's
        pool.get(_spec("a"))


class _Weights:
    """A model stand-in with a reference cycle, as real module graphs have."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec, self.nbytes, self.me = spec, 1, self


def test_unload_gives_the_memory_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a collection a cyclic model graph outlives its unload; CUDA's cache is emptied."""
    import gc
    import weakref

    import torch

    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    pool = ModelPool(_Weights, budget_bytes=10)
    ref = weakref.ref(pool.get(_spec("a")))
    gc.disable()
    try:
        assert pool.unload(_spec("a"))
        assert ref() is None and emptied == [True]
        assert not pool.unload(_spec("a")) and emptied == [True]  # nothing dropped, nothing to free
    finally:
        gc.enable()
