"""The live model registry: models.yaml seeds it, the database holds it, the service reads a
cached copy.

- **Seeding** (`seed`) runs once per process and database, the first time the registry is
  read: a models.yaml entry missing from the database is added; a seeded row whose entry
  changed in the file takes the file's spec fields (the file stays the source of truth for
  what it lists). An admin's switches (enabled, default) are never touched, rows added on the
  Models screen are never touched, and nothing is deleted (saved analyses name these ids).
  When no row is the default, the first enabled models.yaml entry becomes it.
- **Reading** (`LiveRegistry.current`) returns an immutable `Registry` snapshot. The pickers
  call it on every rerun, so it is cached: a change made in this process invalidates it at
  once, and changes made by other processes (replicas, Celery workers) are picked up within
  ``refresh_seconds``. Availability (a file system and cache lookup per model) is cached with
  the snapshot.
- **Degrading**: when the database cannot be read the last snapshot is kept; without one,
  models.yaml alone is served (every model enabled), and `last_error` says why.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.access import audit
from core.models.registry import Availability, ModelSource, ModelSpec, Registry, availability, load_registry
from db import model_registry as registry_db
from db.models import ModelOrigin, RegisteredModel, utcnow

log = logging.getLogger(__name__)

MODEL = "model"  # audit target type: a `registered_models` row
MODEL_SEED = "model.seed"
MODEL_SEED_UPDATE = "model.seed_update"
MODEL_DEFAULT = "model.default"

# The columns that hold `ModelSpec` fields (besides the id).
SPEC_COLUMNS = ("label", "kind", "source", "revision", "licence", "max_input_tokens", "chat_template")

SessionFactory = Callable[[], sessionmaker[Session]]


def spec_columns(spec: ModelSpec) -> dict[str, Any]:
    """`ModelSpec` as column values (the source as a JSON object without empty fields)."""
    fields = spec.model_dump(mode="json")
    fields["source"] = spec.source.model_dump(mode="json", exclude_none=True)
    return fields


def spec_from_row(row: RegisteredModel) -> ModelSpec:
    return ModelSpec(
        id=row.model_id,
        label=row.label,
        kind=row.kind,  # type: ignore[arg-type]
        source=ModelSource.model_validate(row.source),
        revision=row.revision,
        licence=row.licence,
        max_input_tokens=row.max_input_tokens,
        chat_template=row.chat_template,
    )


def registry_from_rows(rows: list[RegisteredModel]) -> Registry:
    specs = []
    for row in rows:
        try:
            specs.append(spec_from_row(row))
        except ValidationError:  # a row edited by hand into something unusable: skip, say so
            log.warning("registry row skipped: invalid spec", extra={"model": row.model_id})
    default = next((row.model_id for row in rows if row.is_default), None)
    return Registry(specs, disabled={row.model_id for row in rows if not row.enabled}, default_id=default)


def seed(*, session: Session, specs: list[ModelSpec]) -> list[str]:
    """Bring models.yaml's entries into the database (see the module docstring); the ids changed."""
    registry_db.lock_registry(session=session)
    rows = {row.model_id: row for row in registry_db.list_models(session=session)}
    changed = []
    now = utcnow()
    for position, spec in enumerate(specs):
        columns = spec_columns(spec)
        row = rows.get(spec.id)
        if row is None:
            row = registry_db.add_model(
                session=session,
                spec_fields=columns,
                family=spec.family,
                origin=ModelOrigin.SEED,
                position=position,
                added_by_id=None,
                now=now,
            )
            rows[spec.id] = row
            _audit(session, MODEL_SEED, row, {"model": spec.id, "revision": spec.revision})
            changed.append(spec.id)
            continue
        if row.origin is not ModelOrigin.SEED:
            continue
        differs = {name: columns[name] for name in SPEC_COLUMNS if getattr(row, name) != columns[name]}
        if differs or row.position != position:
            for name, value in differs.items():
                setattr(row, name, value)
            row.position = position
            row.updated_at = now
            if differs:
                _audit(session, MODEL_SEED_UPDATE, row, {"model": spec.id, "fields": sorted(differs)})
                changed.append(spec.id)
    if not any(row.is_default for row in rows.values()):
        ordered = sorted(rows.values(), key=lambda r: (r.position, r.created_at, r.id))
        first = next((row for row in ordered if row.enabled), None)
        if first is not None:
            first.is_default = True
            first.updated_at = now
            _audit(session, MODEL_DEFAULT, first, {"model": first.model_id, "by": "seeding"})
    session.flush()
    return changed


def _audit(session: Session, action: str, row: RegisteredModel, detail: dict[str, Any]) -> None:
    audit.record(
        session=session, actor_id=None, action=action, target_type=MODEL, target_id=row.id, detail=detail
    )


class RegistrySource(Protocol):
    """What the service reads its registry through."""

    last_error: str | None

    def current(self) -> Registry: ...

    def availability(self, spec: ModelSpec) -> Availability: ...

    def invalidate(self) -> None: ...


class StaticRegistry:
    """A fixed registry behind the same interface (tests, scripts, models.yaml only)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self.last_error: str | None = None

    def current(self) -> Registry:
        return self._registry

    def availability(self, spec: ModelSpec) -> Availability:
        return availability(spec)

    def invalidate(self) -> None:
        pass


class LiveRegistry:
    """The registry as the database holds it, seeded from ``seed_path``; thread safe.

    ``sessions`` returns the current session factory (`db.session.get_sessionmaker`); a
    different factory (another database URL) means another registry, so the snapshot is
    re-read and that database seeded.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        seed_path: Path | None,
        *,
        refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._seed_path = seed_path
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Registry | None = None
        self._factory: sessionmaker[Session] | None = None
        self._read_at = float("-inf")
        self._seeded: weakref.WeakSet[sessionmaker[Session]] = weakref.WeakSet()
        self._availability: dict[ModelSpec, Availability] = {}
        self._seed_error: str | None = None
        self.last_error: str | None = None

    def current(self) -> Registry:
        with self._lock:
            fresh = self._clock() - self._read_at < self._refresh
            if self.last_error is not None and fresh and self._snapshot is not None:
                return self._snapshot  # degraded: retry at the next refresh, not every rerun
            try:
                factory = self._sessions()
            except Exception as exc:  # migrations or connection: serve what we have, never crash
                return self._degraded(exc)
            if self._snapshot is not None and factory is self._factory and fresh:
                return self._snapshot
            try:
                snapshot = self._read(factory)
            except SQLAlchemyError as exc:
                return self._degraded(exc)
            self._snapshot, self._factory, self._read_at = snapshot, factory, self._clock()
            self._availability = {}
            self.last_error = self._seed_error
            return snapshot

    def availability(self, spec: ModelSpec) -> Availability:
        """`core.models.registry.availability`, cached until the next re-read of the registry."""
        with self._lock:
            cached = self._availability.get(spec)
        if cached is None:
            cached = availability(spec)
            with self._lock:
                self._availability[spec] = cached
        return cached

    def invalidate(self) -> None:
        """Re-read on the next `current` (call after every change to `registered_models`)."""
        with self._lock:
            self._read_at = float("-inf")
            self._availability = {}

    def _seed_specs(self) -> list[ModelSpec]:
        return list(load_registry(self._seed_path)) if self._seed_path is not None else []

    def _read(self, factory: sessionmaker[Session]) -> Registry:
        if factory not in self._seeded:
            try:
                specs = self._seed_specs()
            except ValueError as exc:
                # A broken models.yaml must not take the registry down: serve the database's
                # rows, say why, and seed again at the next refresh.
                log.error("models.yaml unreadable; registry not seeded", exc_info=exc)
                self._seed_error = f"models.yaml was not applied: {exc}"
                return self._rows(factory)
            self._seed_error = None
            # No retry on IntegrityError: `seed` takes the registry lock before reading the rows,
            # so a second process seeding at once waits, then reads (a new statement, a new
            # snapshot) and finds the first one's rows instead of inserting them again.
            with factory.begin() as session:
                seed(session=session, specs=specs)
            self._seeded.add(factory)
        return self._rows(factory)

    @staticmethod
    def _rows(factory: sessionmaker[Session]) -> Registry:
        with factory() as session:
            return registry_from_rows(registry_db.list_models(session=session))

    def _degraded(self, exc: Exception) -> Registry:
        log.warning("model registry unreadable, serving the last known one", exc_info=exc)
        self.last_error = "The model registry could not be read from the database; showing " + (
            "the last copy read." if self._snapshot is not None else "models.yaml only."
        )
        # Try again at the next refresh, not on every rerun of every session.
        self._read_at = self._clock()
        if self._snapshot is None:
            try:
                self._snapshot = Registry(self._seed_specs())
            except ValueError:
                self._snapshot = Registry([])
        return self._snapshot
