"""A process-wide pool of loaded models: LRU, bounded by a memory budget, thread safe."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from core.domain.errors import HeadlightError, ModelLoadError
from core.models.boundary import LanguageModel
from core.models.registry import ModelSpec
from core.ops import metrics

log = logging.getLogger(__name__)

Loader = Callable[[ModelSpec], LanguageModel]
# Told about every failed load (model spec, reason), e.g. to write it to the audit log so the
# Models screen lists failures from every process. It must not raise; errors are logged.
FailureHook = Callable[[ModelSpec, str], None]


@dataclass(frozen=True)
class LoadFailure:
    model_id: str
    reason: str
    at: float


class ModelPool:
    """Keeps the most recently used models whose weights fit in `budget_bytes`.

    A model being loaded has its own lock, so two sessions asking for the same model wait
    for one load instead of doing two. The model just requested is never evicted, so a
    single model larger than the budget still loads (alone).
    """

    def __init__(self, loader: Loader, budget_bytes: int, on_failure: FailureHook | None = None) -> None:
        self._loader = loader
        self.on_failure = on_failure
        self._budget = budget_bytes
        self._models: OrderedDict[str, LanguageModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.failures: list[LoadFailure] = []

    @staticmethod
    def _key(spec: ModelSpec) -> str:
        return f"{spec.id}@{spec.revision}"

    def loaded(self) -> list[LanguageModel]:
        with self._lock:
            return list(self._models.values())

    def is_loaded(self, spec: ModelSpec) -> bool:
        with self._lock:
            return self._key(spec) in self._models

    def used_bytes(self) -> int:
        with self._lock:
            return sum(m.nbytes for m in self._models.values())

    def get(self, spec: ModelSpec) -> LanguageModel:
        key = self._key(spec)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:
            with self._lock:
                if key in self._models:  # loaded by another session while we waited
                    self._models.move_to_end(key)
                    return self._models[key]
            loaded = self._load(spec)
            with self._lock:
                self._models[key] = loaded
                evicted = self._evict(keep=key)
                self._loading.pop(key, None)
            if evicted:
                free_memory()
            return loaded

    def _load(self, spec: ModelSpec) -> LanguageModel:
        started = time.perf_counter()
        try:
            loaded = self._loader(spec)
        except HeadlightError as exc:
            self._record_failure(spec, str(exc))
            raise
        except Exception as exc:  # any loader crash becomes a message, never a dead page
            log.exception("model load failed", extra={"model": spec.id})
            self._record_failure(spec, f"{type(exc).__name__}: {exc}")
            raise ModelLoadError(f"{spec.label} failed to load: {exc}") from exc
        metrics.MODEL_LOAD_SECONDS.labels(model=spec.id).observe(time.perf_counter() - started)
        return loaded

    def _record_failure(self, spec: ModelSpec, reason: str) -> None:
        metrics.MODEL_LOAD_FAILURES.labels(model=spec.id).inc()
        with self._lock:
            self.failures = [*self.failures[-49:], LoadFailure(spec.id, reason, time.time())]
        if self.on_failure is not None:
            try:
                self.on_failure(spec, reason)
            except Exception:  # recording is best effort: the caller gets the load error itself
                log.exception("load failure not recorded", extra={"model": spec.id})

    def _evict(self, keep: str) -> int:
        """Drop least recently used models until the rest fit (caller holds the lock); how many."""
        evicted = 0
        while sum(m.nbytes for m in self._models.values()) > self._budget:
            victim = next((k for k in self._models if k != keep), None)
            if victim is None:
                break
            log.info("evicting model", extra={"model": victim})
            del self._models[victim]
            evicted += 1
        return evicted

    def unload(self, spec: ModelSpec) -> bool:
        with self._lock:
            dropped = self._models.pop(self._key(spec), None) is not None
        if dropped:
            free_memory()
        return dropped


def free_memory() -> None:
    """Give a dropped model's memory back now (outside the pool's lock: a collection can take
    a while). Model graphs hold reference cycles, so without a collection the weights stay
    until the collector happens to run; CUDA's caching allocator also keeps freed blocks for
    this process until asked to release them."""
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency; a bare pool still works
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
