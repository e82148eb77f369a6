"""How the app's long-lived parts are put together: the analysis service (registry, model pool,
cache, limits, request log) and the batch dispatcher. `ui.resources` caches what these build,
one per process."""

from __future__ import annotations

from pathlib import Path

from core.domain.settings import Settings
from core.jobs.runner import Dispatcher, EmbeddedRunner
from core.jobs.tasks import RunConfig
from core.ops import metrics
from core.ops.logs import configure_logging
from core.service.analysis_service import AnalysisService
from core.service.cache import make_cache
from core.service.rate_limit import RateLimiter
from core.store import model_admin
from core.store.model_registry import LiveRegistry
from core.store.request_log import RequestLog
from core.store.transaction import configured_database_url, session_factory


def database_url() -> str:
    """The configured database's address (caches key their entries by it)."""
    return configured_database_url()


def build_service(
    settings: Settings,
    *,
    registry_path: Path,
    redis_url: str | None,
    cache_ttl_seconds: int,
    rate_limits: dict[str, str],
) -> AnalysisService:
    """The process's analysis service, with logging and the metrics endpoint started."""
    configure_logging(settings.log_format)
    metrics.start_http_server_once(settings.metrics_port)
    # Uploads a crash left half unpacked (never registered) go at start-up.
    model_admin.sweep_partial_uploads(settings.uploaded_models_dir)
    service = AnalysisService(
        settings,
        # The database holds the live registry (seeded from models.yaml); the session factory
        # is asked for on every read, so the registry follows the configured database.
        LiveRegistry(
            lambda: session_factory(), registry_path, refresh_seconds=settings.registry_refresh_seconds
        ),
        cache=make_cache(
            redis_url,
            ttl_seconds=cache_ttl_seconds,
            memory_max_bytes=settings.cache_memory_max_mb * 1024 * 1024,
        ),
        limiter=RateLimiter(rate_limits, redis_url),
        # Written off the request path to the configured database (per-model analytics, drift).
        request_log=RequestLog(),
    )
    # Failed loads go to the audit log, so the Models screen lists those of every process.
    service.pool.on_failure = model_admin.LoadFailureRecorder(lambda: session_factory())
    return service


def build_dispatcher(backend: str, url: str, service: AnalysisService, settings: Settings) -> Dispatcher:
    """Celery workers when ``backend`` is "celery", else a started embedded runner on ``url``."""
    if backend == "celery":
        from core.service.celery_worker import CeleryDispatcher

        return CeleryDispatcher()
    runner = EmbeddedRunner(session_factory(url), service, config=RunConfig.from_settings(settings))
    return runner.start()
