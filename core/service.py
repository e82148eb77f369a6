"""The analysis service: one entry point from a validated request to an `Analysis`."""

from __future__ import annotations

import time

from core.analysis import Analysis, AnalysisRequest
from core.config import Settings
from core.inference import Progress, analyse
from core.loading import LoadedModel, load_model
from core.model_pool import ModelPool
from core.registry import ModelSpec, Registry, availability


class AnalysisService:
    """Owns the registry and the model pool; shared by every session of a process."""

    def __init__(self, settings: Settings, registry: Registry, pool: ModelPool | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.pool = pool or ModelPool(
            lambda spec: load_model(
                spec, cache_dir=settings.model_cache_dir, device_preference=settings.device
            ),
            budget_bytes=settings.model_memory_budget_mb * 1024 * 1024,
        )

    def model_choices(self) -> list[tuple[ModelSpec, str | None]]:
        """Every registry model with None if usable here, else the reason it is not."""
        choices = []
        for spec in self.registry:
            where = availability(spec)
            choices.append((spec, None if where.available else where.reason))
        return choices

    def load(self, model_id: str) -> tuple[LoadedModel, float]:
        """The loaded model and the seconds spent loading it (0 when already resident)."""
        spec = self.registry.get(model_id)
        started = time.perf_counter()
        was_loaded = self.pool.is_loaded(spec)
        loaded = self.pool.get(spec)
        return loaded, 0.0 if was_loaded else time.perf_counter() - started

    def run(self, request: AnalysisRequest, progress: Progress | None = None) -> Analysis:
        loaded, load_s = self.load(request.model_id)
        kwargs = {"progress": progress} if progress else {}
        analysis = analyse(
            loaded,
            request,
            full_attention_max_bytes=self.settings.full_attention_max_mb * 1024 * 1024,
            **kwargs,
        )
        analysis.timings.load_s = load_s
        return analysis
