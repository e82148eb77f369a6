"""A snapshot of this machine and process: CPU, memory, GPU, loaded models, readiness."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psutil
import torch

from core.models.pool import ModelPool
from core.service.cache import ResultCache
from core.store.transaction import database_reachable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuStatus:
    name: str
    memory_used_mb: float
    memory_total_mb: float
    utilization_percent: float | None  # None when the driver does not report it


@dataclass(frozen=True)
class LoadedModelStatus:
    model_id: str
    device: str
    dtype: str
    memory_mb: float


@dataclass(frozen=True)
class SystemSnapshot:
    cpu_percent: float
    ram_used_mb: float
    ram_total_mb: float
    process_rss_mb: float
    gpus: list[GpuStatus]
    models: list[LoadedModelStatus]
    model_budget_mb: float


def _gpus() -> list[GpuStatus]:
    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        try:
            utilization: float | None = float(torch.cuda.utilization(index))
        except (RuntimeError, ModuleNotFoundError):  # needs NVML (pynvml)
            utilization = None
        gpus.append(
            GpuStatus(torch.cuda.get_device_name(index), (total - free) / 2**20, total / 2**20, utilization)
        )
    return gpus


def snapshot(pool: ModelPool, budget_bytes: int) -> SystemSnapshot:
    memory = psutil.virtual_memory()
    models = [
        LoadedModelStatus(m.spec.id, m.info.device, m.info.dtype, m.nbytes / 2**20) for m in pool.loaded()
    ]
    return SystemSnapshot(
        cpu_percent=psutil.cpu_percent(interval=None),
        ram_used_mb=(memory.total - memory.available) / 2**20,
        ram_total_mb=memory.total / 2**20,
        process_rss_mb=psutil.Process().memory_info().rss / 2**20,
        gpus=_gpus(),
        models=models,
        model_budget_mb=budget_bytes / 2**20,
    )


@dataclass(frozen=True)
class Readiness:
    name: str
    ready: bool
    detail: str


def database_readiness(url: str | None = None) -> Readiness:
    ready, detail = database_reachable(url)
    return Readiness("database", ready, detail)


def cache_readiness(cache: ResultCache | None) -> Readiness:
    if cache is None:
        return Readiness("result cache", True, "off")
    if cache.ping():
        return Readiness("result cache", True, cache.backend)
    return Readiness("result cache", False, f"{cache.backend} unreachable: {cache.last_error}")
