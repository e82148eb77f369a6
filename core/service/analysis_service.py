"""The analysis service: one entry per user action, from what was typed to an `Analysis`.

`submit` takes the form as typed (`AnalysisForm`); `run` a request already validated (Compare's
sides, recompute). Order matters: everything that can refuse a request cheaply (validation,
the model check, the token count with the tokenizer alone) comes before the rate limit, so a
refused request spends no quota and loads nothing; the cache is consulted before the model,
so a hit never loads it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from pydantic import ValidationError

from core.attention.codec import analysis_from_bytes, analysis_to_bytes
from core.domain.analysis import (
    Analysis,
    AnalysisForm,
    AnalysisMode,
    AnalysisRequest,
    GenerationParams,
    RunResult,
)
from core.domain.errors import HeadlightError, InputTooLongError, ModelDisabledError, validation_message
from core.domain.identity import ANONYMOUS_ACTOR, Actor
from core.domain.settings import Settings
from core.models.boundary import LanguageModel
from core.models.huggingface.loading import TokenCounter, load_model, token_counter
from core.models.pool import ModelPool
from core.models.registry import ModelSpec, Registry
from core.ops import metrics
from core.ops.logs import log_context
from core.ops.telemetry import TELEMETRY, AnalysisEvent, Telemetry
from core.service.cache import ResultCache
from core.service.inference import Progress, analyse
from core.service.rate_limit import RateDecision, RateLimiter
from core.service.redaction import redact
from core.store.model_registry import RegistrySource, StaticRegistry
from core.store.request_log import RequestLog, RequestTarget, entry_for

log = logging.getLogger(__name__)

# Full attention rides along in the cache only while small (covers every bertviz length).
CACHE_FULL_MAX_BYTES = 16 * 1024 * 1024


class AnalysisService:
    """Owns the registry, model pool, cache and limits; shared by every session of a process."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry | RegistrySource,
        *,
        pool: ModelPool | None = None,
        cache: ResultCache | None = None,
        limiter: RateLimiter | None = None,
        telemetry: Telemetry = TELEMETRY,
        request_log: RequestLog | None = None,
        tokenizers: Callable[[ModelSpec], TokenCounter] | None = None,
    ) -> None:
        self.settings = settings
        # The live registry (core/store/model_registry.py) in the app; a fixed one in tests and scripts.
        self.registry_source = StaticRegistry(registry) if isinstance(registry, Registry) else registry
        self.pool = pool or ModelPool(
            lambda spec: load_model(
                spec, cache_dir=settings.model_cache_dir, device_preference=settings.device
            ),
            budget_bytes=settings.model_memory_budget_mb * 1024 * 1024,
        )
        # Tokenizers alone, to refuse over-long inputs before the rate limit and the model load.
        self.tokenizers = tokenizers or (lambda spec: token_counter(spec, cache_dir=settings.model_cache_dir))
        self.cache = cache
        self.limiter = limiter
        self.telemetry = telemetry
        # The persisted per-request log (analytics, drift); None keeps a service database-free.
        self.request_log = request_log
        # Serialising for the cache (and building the compact form) happens off the request path.
        self._cache_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-writer")

    @property
    def registry(self) -> Registry:
        """The current registry snapshot (cheap: cached, re-read after changes)."""
        return self.registry_source.current()

    def model_choices(self) -> list[tuple[ModelSpec, str | None]]:
        """Every enabled model, the default first, with None if usable here, else the reason it is not.

        Disabled models are left out: they vanish from the pickers, while `registry.get` still
        finds them for saved analyses.
        """
        choices = []
        for spec in self.registry.enabled():
            where = self.registry_source.availability(spec)
            choices.append((spec, None if where.available else where.reason))
        return choices

    def require_enabled(self, model_id: str) -> ModelSpec:
        """The spec of a model new analyses may use; unknown and disabled ids are refused."""
        registry = self.registry
        spec = registry.get(model_id)
        if not registry.is_enabled(model_id):
            raise ModelDisabledError(
                f"{spec.label} has been turned off by an admin; choose another model. "
                "Saved analyses made with it still open."
            )
        return spec

    def load(self, model_id: str) -> tuple[LanguageModel, float]:
        """The loaded model and the seconds spent loading it (0 when already resident)."""
        spec = self.registry.get(model_id)
        started = time.perf_counter()
        was_loaded = self.pool.is_loaded(spec)
        loaded = self.pool.get(spec)
        return loaded, 0.0 if was_loaded else time.perf_counter() - started

    def rate_status(self, actor: Actor) -> RateDecision | None:
        return self.limiter.status(actor.key, actor.role) if self.limiter else None

    def submit(
        self,
        form: AnalysisForm,
        *,
        actor: Actor = ANONYMOUS_ACTOR,
        progress: Progress | None = None,
    ) -> RunResult:
        """One user action, from what was typed to the result, in this order: redaction,
        validation, the model check, the token count (before the rate limit and any model
        load), the rate limit, the cache, the model. Every outcome (served, refused, failed)
        goes to the request log; a refusal raises a `HeadlightError` that says why."""
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:12]
        target = RequestTarget(form.model_id, AnalysisMode(form.mode).value, len(form.text))
        text, redactions = form.text, {}
        if form.redact:
            redaction = redact(text)
            text, redactions = redaction.text, {k: n for k, n in redaction.counts.items() if n}
        try:
            request = AnalysisRequest(
                model_id=form.model_id,
                text=text,
                mode=form.mode,
                generation=GenerationParams(**form.generation),
                top_k_next=form.top_k_next,
            )
        except ValidationError as exc:
            self.record_refusal(target, error=exc, actor=actor, request_id=request_id, started=started)
            raise HeadlightError(validation_message(exc)) from exc
        analysis = self._serve(request, actor, request_id, started, progress)
        return RunResult(analysis=analysis, redactions=redactions)

    def run(
        self,
        request: AnalysisRequest,
        *,
        actor: Actor = ANONYMOUS_ACTOR,
        progress: Progress | None = None,
    ) -> Analysis:
        """Serve an already validated request (Compare's sides, recompute, scripts): the steps of
        `submit` from the model check on."""
        return self._serve(request, actor, uuid.uuid4().hex[:12], time.perf_counter(), progress)

    def _serve(
        self,
        request: AnalysisRequest,
        actor: Actor,
        request_id: str,
        started: float,
        progress: Progress | None,
    ) -> Analysis:
        revision: str | None = None
        try:
            spec = self.require_enabled(request.model_id)
            revision = spec.revision
            self.check_length(spec, request)
            analysis = self._run(spec, request, actor, request_id, progress)
        except Exception as exc:
            self._log_request(request, revision, actor, request_id, started, error=exc)
            raise
        self._log_request(request, revision, actor, request_id, started, analysis=analysis)
        return analysis

    def check_length(self, spec: ModelSpec, request: AnalysisRequest) -> None:
        """Refuse a request whose tokens (prompt plus new tokens) exceed the model's limit.

        Counts with the tokenizer alone, so nothing is loaded and no quota is spent; the
        model's own pass checks again with the exact sequence.
        """
        counter = self.tokenizers(spec)
        generating = request.mode is AnalysisMode.GENERATE
        if generating and request.generation.use_chat_template:
            prompt = counter.chat_prompt(request.text)
            if prompt is None:
                raise HeadlightError(f"{spec.label} has no chat template; turn the option off.")
            n_tokens = counter.count(prompt, add_special_tokens=False)
        else:
            n_tokens = counter.count(request.text)
        needed = n_tokens + (request.generation.max_new_tokens if generating else 0)
        if needed > spec.max_input_tokens:
            raise InputTooLongError(needed, spec.max_input_tokens, spec.label)

    def record_refusal(
        self,
        target: RequestTarget,
        *,
        error: BaseException,
        actor: Actor,
        request_id: str | None = None,
        started: float | None = None,
    ) -> None:
        """Log a request refused before it became an `AnalysisRequest` (its input did not validate)."""
        try:
            revision: str | None = self.registry.get(target.model_id).revision
        except HeadlightError:
            revision = None
        when = time.perf_counter() if started is None else started
        self._log_request(target, revision, actor, request_id, when, error=error)

    def _log_request(
        self,
        request: AnalysisRequest | RequestTarget,
        revision: str | None,
        actor: Actor,
        request_id: str | None,
        started: float,
        *,
        analysis: Analysis | None = None,
        error: BaseException | None = None,
    ) -> None:
        if self.request_log is None:
            return
        try:
            if isinstance(request, AnalysisRequest):
                request = RequestTarget(request.model_id, request.mode.value, len(request.text))
            self.request_log.record(
                entry_for(
                    target=request,
                    revision=revision,
                    actor_key=actor.key,
                    request_id=request_id,
                    latency_s=time.perf_counter() - started,
                    analysis=analysis,
                    error=error,
                )
            )
        except Exception:  # logging a request must never fail it
            log.exception("request log entry not recorded")

    def _run(
        self,
        spec: ModelSpec,
        request: AnalysisRequest,
        actor: Actor,
        request_id: str,
        progress: Progress | None,
    ) -> Analysis:
        with log_context(user=actor.key, request_id=request_id, model=spec.id, mode=request.mode.value):
            if self.limiter is not None:
                self.limiter.acquire(actor.key, actor.role)
            started = time.perf_counter()
            key = request.cache_key(spec.revision)
            analysis = self._cached(key)
            if analysis is None:
                analysis = self._compute(request, progress)
                if self.cache is not None:
                    self._cache_writer.submit(self._store, key, analysis)
            seconds = time.perf_counter() - started
            self.telemetry.record(
                AnalysisEvent(
                    time.time(), spec.id, request.mode.value, seconds, analysis.cache_hit, actor.key
                )
            )
            log.info(
                "analysis",
                extra={
                    "cache_hit": analysis.cache_hit,
                    "seq_len": analysis.seq_len,
                    "seconds": round(seconds, 4),
                    "load_s": round(analysis.timings.load_s, 4),
                    "forward_s": round(analysis.timings.forward_s, 4),
                },
            )
            return analysis

    def _cached(self, key: str) -> Analysis | None:
        if self.cache is None:
            return None
        blob = self.cache.get(key)
        analysis = None
        if blob is not None:
            try:
                analysis = analysis_from_bytes(blob, cache_hit=True)
            except ValueError:
                log.warning("unreadable cache entry ignored", extra={"key": key})
        metrics.record_cache_lookup(self.cache.backend, analysis is not None)
        return analysis

    def _compute(self, request: AnalysisRequest, progress: Progress | None) -> Analysis:
        loaded, load_s = self.load(request.model_id)
        kwargs = {"progress": progress} if progress else {}
        analysis = analyse(
            loaded,
            request,
            full_attention_max_bytes=self.settings.full_attention_max_mb * 1024 * 1024,
            **kwargs,
        )
        return analysis.replace(timings=dataclasses.replace(analysis.timings, load_s=load_s))

    def _store(self, key: str, analysis: Analysis) -> None:
        assert self.cache is not None
        try:
            full = analysis.attention is not None and analysis.attention.nbytes <= CACHE_FULL_MAX_BYTES
            self.cache.set(key, analysis_to_bytes(analysis, include_full=full))
        except Exception:  # a cache write must never surface to the user
            log.exception("cache store failed")

    def layer_attention(self, model_id: str, revision: str, token_ids: list[int], layer: int) -> np.ndarray:
        """Recompute one layer of a stored analysis: ``[n_heads, seq_len, seq_len]`` float32.

        Raises a `HeadlightError` when the model is unknown or unavailable here, or when the
        registry now holds another revision (its attention would not be the analysis's).
        """
        spec = self.registry.get(model_id)
        if spec.revision != revision:
            raise HeadlightError(
                f"the analysis used {spec.label} revision {revision}, this server has {spec.revision}; "
                "run the analysis again for full maps"
            )
        loaded, _ = self.load(model_id)
        return loaded.layer_attention(token_ids, layer)

    def flush(self) -> None:
        """Wait for pending cache writes and request-log entries (tests and benchmarks)."""
        self._cache_writer.submit(lambda: None).result()
        if self.request_log is not None:
            self.request_log.flush()


def recompute(saved: Analysis, service: AnalysisService, **run_options: Any) -> Analysis:
    """Run a saved analysis's request again, with full detail, on the same model revision.

    Generation is deterministic for the same model revision, parameters and seed.
    ``run_options`` (actor, progress) go to `AnalysisService.run`. Raises `HeadlightError`
    when the registry now serves another revision, since the result would differ.
    """
    spec = service.registry.get(saved.model.model_id)
    if spec.revision != saved.model.revision:
        raise HeadlightError(
            f"This analysis was made with {saved.model.model_id} revision {saved.model.revision}; "
            f"the registry now has revision {spec.revision}, so it cannot be reproduced. "
            "Run the text again on the Generate screen instead."
        )
    return service.run(saved.request, **run_options)
