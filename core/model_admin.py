"""The Models screen's actions: one function per admin action, each permission-checked and
audited in the same transaction as its change.

Versions: a model id is ``<family>`` or ``<family>@<version>`` (`core.registry`). Adding a
model to an existing family needs a version name; the new entry sits next to the others and
leaves their ids, and so every saved analysis, untouched.

Functions take keyword-only ``session`` (never committed here: pages wrap one action in
`core.library.unit_of_work`) and ``viewer``; changes invalidate the service's registry
snapshot when their transaction commits, so the pickers show them on the next rerun.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core import audit, permissions
from core.errors import HeadlightError, validation_message
from core.live_registry import MODEL, MODEL_DEFAULT, spec_columns, spec_from_row
from core.model_import import (
    Kind,
    ModelCheck,
    ModelCheckError,
    cached_refs,
    check_commit_sha,
    check_hub_id,
    content_revision,
    extract_archive,
    hub_snapshot,
    inspect_directory,
)
from core.permissions import Viewer
from core.registry import VERSION_SEPARATOR, ModelSource, ModelSpec, availability
from core.service import AnalysisService
from db import model_registry as registry_db
from db.models import ModelOrigin, RegisteredModel, User, utcnow

MODEL_ADD = "model.add"
MODEL_ENABLE = "model.enable"
MODEL_DISABLE = "model.disable"
MODEL_LOAD = "model.load"
MODEL_LOAD_FAILURE = "model.load_failure"
MODEL_UNLOAD = "model.unload"

DEFAULT_MAX_INPUT_TOKENS = 2048
_VERSION = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ModelAdminError(HeadlightError):
    """An admin action on the registry that cannot be done; the message says why."""


@dataclass(frozen=True)
class NewModel:
    """The "Add a model" form: which family and version, and the spec fields an admin may set.

    Fields left None are taken from the model's files or from the family's other versions.
    """

    family: str
    version: str = ""
    label: str = ""
    licence: str = ""
    max_input_tokens: int | None = None
    kind: Kind | None = None
    chat_template: bool | None = None


@dataclass(frozen=True)
class ModelRow:
    """One line of the Models screen."""

    model_id: str
    family: str
    version: str
    label: str
    kind: str
    source: str
    revision: str
    state: str  # bundled / in local cache / local directory / uploaded / unavailable
    reason: str  # where the weights are, or why the model cannot be used
    available: bool
    enabled: bool
    is_default: bool
    loaded: bool
    device: str
    memory_mb: float | None
    origin: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True)
class FailureRow:
    model_id: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class LoadOutcome:
    ok: bool
    message: str


def _require_admin(viewer: Viewer) -> int:
    if not permissions.can_manage_models(viewer) or viewer.user_id is None:
        raise ModelAdminError("Only admins can manage models.")
    return viewer.user_id


def _after_commit_refresh(session: Session, service: AnalysisService) -> None:
    """Drop the service's registry snapshot now and again once this transaction commits
    (a rerun between the two would otherwise cache the old rows for a refresh period)."""
    service.registry_source.invalidate()
    event.listen(session, "after_commit", lambda _session: service.registry_source.invalidate(), once=True)


def _audit(session: Session, viewer: Viewer, action: str, row: RegisteredModel, **detail: Any) -> None:
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action=action,
        target_type=MODEL,
        target_id=row.id,
        detail={"model": row.model_id, **detail},
    )


def _row(session: Session, model_id: str) -> RegisteredModel:
    row = registry_db.by_model_id(session=session, model_id=model_id, for_update=True)
    if row is None:
        raise ModelAdminError(f"There is no model '{model_id}' in the registry.")
    return row


# --- Reading ---------------------------------------------------------------------------------


def _state(spec: ModelSpec, uploads_dir: Path) -> tuple[str, str, bool]:
    where = availability(spec)
    if not where.available:
        return "unavailable", where.reason, False
    if spec.source.type == "bundled":
        return "bundled", where.reason, True
    if spec.source.type == "hub":
        return "in local cache", where.reason, True
    path = Path(spec.source.path or "")
    return ("uploaded" if path.is_relative_to(uploads_dir) else "local directory"), where.reason, True


def _source_text(spec: ModelSpec) -> str:
    source = spec.source
    if source.type == "bundled":
        return f"package {source.package} ({source.file})"
    if source.type == "hub":
        return f"hub {source.repo}"
    return f"directory {source.path}"


def model_rows(
    *, session: Session, viewer: Viewer, service: AnalysisService, uploads_dir: Path
) -> list[ModelRow]:
    """Every registry model, versions of one family together, with its state in this process."""
    _require_admin(viewer)
    service.registry  # noqa: B018 - the first read seeds an empty registry from models.yaml
    query = (
        select(RegisteredModel, User.username)
        .outerjoin(User, User.id == RegisteredModel.added_by_id)
        .order_by(RegisteredModel.position, RegisteredModel.created_at, RegisteredModel.id)
    )
    loaded = {(m.spec.id, m.spec.revision): m for m in service.pool.loaded()}
    rows = []
    for record, username in session.execute(query).all():
        spec = spec_from_row(record)
        state, reason, available = _state(spec, uploads_dir)
        resident = loaded.get((spec.id, spec.revision))
        rows.append(
            ModelRow(
                model_id=spec.id,
                family=spec.family,
                version=spec.version,
                label=spec.label,
                kind=spec.kind,
                source=_source_text(spec),
                revision=spec.revision,
                state=state,
                reason=reason,
                available=available,
                enabled=record.enabled,
                is_default=record.is_default,
                loaded=resident is not None,
                device=resident.info.device if resident else "",
                memory_mb=round(resident.nbytes / 2**20, 1) if resident else None,
                origin="models.yaml" if record.origin is ModelOrigin.SEED else "added",
                added_by=username or "",
                added_at=record.created_at,
            )
        )
    first_seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        first_seen.setdefault(row.family, index)
    return sorted(rows, key=lambda r: (first_seen[r.family], r.version != "", r.added_at))


def recent_failures(*, viewer: Viewer, service: AnalysisService, limit: int = 20) -> list[FailureRow]:
    """This process's latest load failures (any screen's), newest first."""
    _require_admin(viewer)
    return [
        FailureRow(f.model_id, datetime.fromtimestamp(f.at, UTC), f.reason)
        for f in reversed(service.pool.failures[-limit:])
    ]


# --- Adding ----------------------------------------------------------------------------------


def new_model_id(*, session: Session, family: str, version: str) -> str:
    """The id of a new entry: ``family`` for a new family, ``family@version`` for a version."""
    family, version = family.strip().lower(), version.strip().lower().replace(" ", "-")
    if not _VERSION.match(family) or VERSION_SEPARATOR in family:
        raise ModelAdminError(
            f"'{family or '(empty)'}' cannot name a model: use lower-case letters, digits, '.', '_' "
            "and '-' (at most 64), starting with a letter or digit."
        )
    if version and not _VERSION.match(version):
        raise ModelAdminError(
            f"'{version}' cannot name a version: use lower-case letters, digits, '.', '_' and '-' "
            "(at most 64), starting with a letter or digit."
        )
    taken = set(session.scalars(select(RegisteredModel.model_id)))
    family_exists = any(i.partition(VERSION_SEPARATOR)[0] == family for i in taken)
    if family_exists and not version:
        raise ModelAdminError(
            f"'{family}' is already registered; name this copy's version (e.g. 'local-copy') to add it "
            "next to the existing one."
        )
    model_id = f"{family}{VERSION_SEPARATOR}{version}" if version else family
    if model_id in taken:
        raise ModelAdminError(f"'{model_id}' is already registered; choose another version name.")
    return model_id


def _family_spec(session: Session, family: str) -> ModelSpec | None:
    rows = [r for r in registry_db.list_models(session=session) if r.family == family]
    return spec_from_row(rows[0]) if rows else None


def _build_spec(
    session: Session, model_id: str, new: NewModel, source: ModelSource, revision: str, check: ModelCheck
) -> ModelSpec:
    family = _family_spec(session, model_id.partition(VERSION_SEPARATOR)[0])
    version = model_id.partition(VERSION_SEPARATOR)[2]
    kind = new.kind or check.kind
    if family is not None and family.kind != kind and new.kind is None:
        kind = family.kind
    default_label = f"{family.label} ({version})" if family and version else model_id
    max_tokens = new.max_input_tokens or (
        family.max_input_tokens if family else min(check.max_positions or DEFAULT_MAX_INPUT_TOKENS, 131_072)
    )
    try:
        return ModelSpec(
            id=model_id,
            label=new.label.strip() or default_label,
            kind=kind,
            source=source,
            revision=revision,
            licence=new.licence.strip() or (family.licence if family else ""),
            max_input_tokens=max_tokens,
            chat_template=check.chat_template if new.chat_template is None else new.chat_template,
        )
    except ValidationError as exc:
        raise ModelAdminError(validation_message(exc)) from None


def _insert(
    session: Session, viewer: Viewer, service: AnalysisService, spec: ModelSpec, check: ModelCheck
) -> RegisteredModel:
    if not spec.licence:
        raise ModelAdminError("Name the model's licence (e.g. Apache-2.0), so users know its terms.")
    row = registry_db.add_model(
        session=session,
        spec_fields=spec_columns(spec),
        origin=ModelOrigin.ADMIN,
        position=registry_db.next_position(session=session),
        added_by_id=viewer.user_id,
    )
    _audit(
        session,
        viewer,
        MODEL_ADD,
        row,
        source=_source_text(spec),
        revision=spec.revision,
        architecture=check.architecture,
        weights_mb=round(check.weight_bytes / 2**20, 1),
        notes="; ".join(check.notes),
    )
    _after_commit_refresh(session, service)
    return row


def add_local(
    *, session: Session, viewer: Viewer, service: AnalysisService, directory: str, new: NewModel
) -> RegisteredModel:
    """Register a model directory on the server, in place (its revision is a content hash)."""
    _require_admin(viewer)
    registry_db.lock_registry(session=session)
    model_id = new_model_id(session=session, family=new.family, version=new.version)
    if not directory.strip():
        raise ModelCheckError("Enter the directory that holds the model on the server.")
    path = Path(directory.strip()).expanduser().resolve()
    check = inspect_directory(path, refuse_pickle=False)
    spec = _build_spec(
        session, model_id, new, ModelSource(type="local", path=str(path)), content_revision(check), check
    )
    return _insert(session, viewer, service, spec, check)


def add_hub(
    *, session: Session, viewer: Viewer, service: AnalysisService, repo: str, revision: str, new: NewModel
) -> RegisteredModel:
    """Register a hub model pinned to a commit; it must already be in the local cache."""
    _require_admin(viewer)
    repo = check_hub_id(repo)
    revision = check_commit_sha(revision, repo=repo, cached_refs=cached_refs(repo))
    registry_db.lock_registry(session=session)
    model_id = new_model_id(session=session, family=new.family, version=new.version)
    check = inspect_directory(hub_snapshot(repo, revision), refuse_pickle=False)
    spec = _build_spec(session, model_id, new, ModelSource(type="hub", repo=repo), revision, check)
    return _insert(session, viewer, service, spec, check)


def add_upload(
    *,
    session: Session,
    viewer: Viewer,
    service: AnalysisService,
    data: IO[bytes],
    filename: str,
    new: NewModel,
    uploads_dir: Path,
    max_bytes: int,
) -> RegisteredModel:
    """Unpack an uploaded archive under ``uploads_dir``, check it (no pickle files at all) and
    register it; on any refusal, or if the transaction rolls back, the files are removed."""
    _require_admin(viewer)
    registry_db.lock_registry(session=session)
    model_id = new_model_id(session=session, family=new.family, version=new.version)
    uploads_dir.mkdir(parents=True, exist_ok=True)
    target = uploads_dir / f"{model_id.replace(VERSION_SEPARATOR, '--')}-{uuid.uuid4().hex[:8]}"
    try:
        directory = extract_archive(data, filename, target, max_bytes=max_bytes)
        check = inspect_directory(directory, refuse_pickle=True)
        source = ModelSource(type="local", path=str(directory))
        spec = _build_spec(session, model_id, new, source, content_revision(check), check)
        row = _insert(session, viewer, service, spec, check)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    event.listen(session, "after_rollback", lambda _s: shutil.rmtree(target, ignore_errors=True), once=True)
    return row


# --- Switches --------------------------------------------------------------------------------


def set_enabled(
    *, session: Session, viewer: Viewer, service: AnalysisService, model_id: str, enabled: bool
) -> None:
    """Offer the model in the pickers again, or take it out (and out of memory)."""
    _require_admin(viewer)
    registry_db.lock_registry(session=session)
    row = _row(session, model_id)
    if row.enabled == enabled:
        return
    if not enabled and row.is_default:
        raise ModelAdminError(f"{row.label} is the default model; make another model the default first.")
    row.enabled = enabled
    row.updated_at = utcnow()
    _audit(session, viewer, MODEL_ENABLE if enabled else MODEL_DISABLE, row)
    if not enabled:
        service.pool.unload(spec_from_row(row))
    _after_commit_refresh(session, service)


def set_default(*, session: Session, viewer: Viewer, service: AnalysisService, model_id: str) -> None:
    """Make the model the pickers' initial choice (exactly one model is the default)."""
    _require_admin(viewer)
    registry_db.lock_registry(session=session)
    row = _row(session, model_id)
    if row.is_default:
        return
    if not row.enabled:
        raise ModelAdminError(f"{row.label} is turned off; turn it on before making it the default.")
    previous = next((r.model_id for r in registry_db.list_models(session=session) if r.is_default), None)
    registry_db.clear_default(session=session)
    row.is_default = True
    row.updated_at = utcnow()
    session.flush()
    _audit(session, viewer, MODEL_DEFAULT, row, previous=previous or "")
    _after_commit_refresh(session, service)


# --- Memory ----------------------------------------------------------------------------------


def load(*, session: Session, viewer: Viewer, service: AnalysisService, model_id: str) -> LoadOutcome:
    """Load the model into this process's pool; a failure is an outcome (audited), not an error,
    so its audit event is committed with the page's transaction."""
    _require_admin(viewer)
    spec = service.registry.get(model_id)
    started = time.perf_counter()
    was_loaded = service.pool.is_loaded(spec)
    # The row is read (and locked) only after the load: a load can take a minute.
    try:
        loaded = service.pool.get(spec)
    except HeadlightError as exc:
        _audit(session, viewer, MODEL_LOAD_FAILURE, _row(session, model_id), reason=str(exc)[:500])
        return LoadOutcome(False, str(exc))
    seconds = time.perf_counter() - started
    if was_loaded:
        return LoadOutcome(True, f"{spec.label} is already loaded on {loaded.info.device}.")
    row = _row(session, model_id)
    _audit(session, viewer, MODEL_LOAD, row, device=loaded.info.device, seconds=round(seconds, 2))
    return LoadOutcome(
        True,
        f"{spec.label} loaded on {loaded.info.device} in {seconds:.1f} s "
        f"({loaded.nbytes / 2**20:,.0f} MiB of weights).",
    )


def unload(*, session: Session, viewer: Viewer, service: AnalysisService, model_id: str) -> bool:
    """Drop the model from this process's memory; False when it was not loaded."""
    _require_admin(viewer)
    spec = service.registry.get(model_id)
    if not service.pool.unload(spec):
        return False
    _audit(session, viewer, MODEL_UNLOAD, _row(session, model_id))
    return True
