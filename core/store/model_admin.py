"""The Models screen's actions: one function per admin action, each permission-checked and
audited in the same transaction as its change.

Versions: a model id is ``<family>`` or ``<family>@<version>`` (`core.models.registry`). Adding a
model to an existing family needs a version name; the new entry sits next to the others and
leaves their ids, and so every saved analysis, untouched.

Functions take keyword-only ``session`` (never committed here: the Models screen's service,
`core.service.models_screen`, wraps one action in `core.store.transaction.unit_of_work`) and
``viewer``; changes invalidate the service's registry snapshot when their transaction
commits, so the pickers show them on the next rerun.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import ValidationError
from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from core.access import audit, permissions
from core.domain.errors import HeadlightError, validation_message
from core.domain.identity import Viewer
from core.models.import_checks import (
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
from core.models.pool import ModelPool
from core.models.registry import (
    TEXT_FIELD_MAX,
    VERSION_SEPARATOR,
    ModelSource,
    ModelSpec,
    Registry,
    availability,
)
from core.store.model_registry import MODEL, MODEL_DEFAULT, RegistrySource, spec_columns, spec_from_row
from db import model_registry as registry_db
from db.models import AuditEvent, ModelOrigin, RegisteredModel, User, utcnow

log = logging.getLogger(__name__)

MODEL_ADD = "model.add"
MODEL_ENABLE = "model.enable"
MODEL_DISABLE = "model.disable"
MODEL_LOAD = "model.load"
MODEL_LOAD_FAILURE = "model.load_failure"
MODEL_UNLOAD = "model.unload"

DEFAULT_MAX_INPUT_TOKENS = 2048
_VERSION = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# An upload is unpacked under this name and renamed once its row is committed, so a half
# unpacked or never committed upload is never mistaken for a model directory.
PARTIAL_PREFIX = ".partial-"
# A staging directory older than this was left by a crash (unpacking and checking take
# seconds to minutes); younger ones may belong to an upload running in another process.
PARTIAL_MAX_AGE_S = 3600.0

# The admin whose Load button is running, so the pool's failure hook can name the actor.
_LOAD_ACTOR: contextvars.ContextVar[int | None] = contextvars.ContextVar("load_actor", default=None)


def process_name() -> str:
    """``<host>:<pid>``, as Celery workers name themselves (`core.service.celery_worker.worker_name`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ModelHost(Protocol):
    """What model administration needs of the analysis service: its registry and its pool."""

    @property
    def registry_source(self) -> RegistrySource: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def pool(self) -> ModelPool: ...


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
class Added:
    """A model just added, with what the admin should know about it (e.g. a kind kept from
    the family although config.json suggests another)."""

    row: RegisteredModel
    warnings: tuple[str, ...] = ()


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
    loaded: bool  # in this process's pool (each replica and worker has its own)
    device: str
    memory_mb: float | None
    origin: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True)
class ModelListing:
    """The Models screen's rows, and the stored rows that are not valid models (id, why)."""

    rows: list[ModelRow]
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class FailureRow:
    model_id: str
    at: datetime
    reason: str
    process: str  # host:pid of the process whose load failed


@dataclass(frozen=True)
class LoadOutcome:
    ok: bool
    message: str


def _require_admin(viewer: Viewer) -> int:
    if not permissions.can_manage_models(viewer) or viewer.user_id is None:
        raise ModelAdminError("Only admins can manage models.")
    return viewer.user_id


def _after_commit_refresh(session: Session, service: ModelHost) -> None:
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


def model_rows(*, session: Session, viewer: Viewer, service: ModelHost, uploads_dir: Path) -> ModelListing:
    """Every registry model, versions of one family together, with its state in this process.

    A stored row that is not a valid model (edited by hand) is listed in ``skipped`` instead
    of breaking the screen, as the pickers skip it (`live_registry.registry_from_rows`).
    """
    _require_admin(viewer)
    service.registry  # noqa: B018 - the first read seeds an empty registry from models.yaml
    query = (
        select(RegisteredModel, User.username)
        .outerjoin(User, User.id == RegisteredModel.added_by_id)
        .order_by(RegisteredModel.position, RegisteredModel.created_at, RegisteredModel.id)
    )
    loaded = {(m.spec.id, m.spec.revision): m for m in service.pool.loaded()}
    rows = []
    skipped = []
    for record, username in session.execute(query).all():
        try:
            spec = spec_from_row(record)
        except ValidationError as exc:
            skipped.append((record.model_id, validation_message(exc)))
            continue
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
    ordered = sorted(rows, key=lambda r: (first_seen[r.family], r.version != "", r.added_at))
    return ModelListing(ordered, skipped)


def recent_failures(*, session: Session, viewer: Viewer, limit: int = 20) -> list[FailureRow]:
    """The latest load failures of every process (app replicas, Celery workers), newest first,
    from the audit log: each pool writes its failures there (`LoadFailureRecorder`)."""
    _require_admin(viewer)
    query = (
        select(AuditEvent)
        .where(AuditEvent.action == MODEL_LOAD_FAILURE)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    return [
        FailureRow(
            model_id=str(event.detail.get("model", "")),
            at=event.at,
            reason=str(event.detail.get("reason", "")),
            process=str(event.detail.get("process", "")),
        )
        for event in session.scalars(query)
    ]


class LoadFailureRecorder:
    """A `ModelPool` failure hook: each failed load, in any screen, job or worker of this
    process, becomes a ``model.load_failure`` audit event in its own transaction, so the
    Models screen lists failures of every process, not just the one serving the admin."""

    def __init__(self, sessions: Callable[[], sessionmaker[Session]], process: str | None = None) -> None:
        self._sessions = sessions
        self.process = process or process_name()

    def __call__(self, spec: ModelSpec, reason: str) -> None:
        with self._sessions().begin() as session:
            row = registry_db.by_model_id(session=session, model_id=spec.id)
            audit.record(
                session=session,
                actor_id=_LOAD_ACTOR.get(),
                action=MODEL_LOAD_FAILURE,
                target_type=MODEL,
                target_id=row.id if row is not None else None,
                detail={"model": spec.id, "reason": reason[:500], "process": self.process},
            )


# --- Adding ----------------------------------------------------------------------------------


def _parse_id(family: str, version: str) -> tuple[str, str, str]:
    """The new entry's id, family and version from the form, or why they cannot name a model."""
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
    return (f"{family}{VERSION_SEPARATOR}{version}" if version else family), family, version


def _check_free(session: Session, model_id: str, family: str, version: str) -> None:
    taken = set(session.scalars(select(RegisteredModel.model_id)))
    family_exists = any(i.partition(VERSION_SEPARATOR)[0] == family for i in taken)
    if family_exists and not version:
        raise ModelAdminError(
            f"'{family}' is already registered; name this copy's version (e.g. 'local-copy') to add it "
            "next to the existing one."
        )
    if model_id in taken:
        raise ModelAdminError(f"'{model_id}' is already registered; choose another version name.")


def new_model_id(*, session: Session, family: str, version: str) -> str:
    """The id of a new entry: ``family`` for a new family, ``family@version`` for a version."""
    model_id, family, version = _parse_id(family, version)
    _check_free(session, model_id, family, version)
    return model_id


def _check_form(session: Session, new: NewModel) -> tuple[str, str, str]:
    """Everything about the form that can be checked without the model's files: the id (and
    that it is free now; checked again under the registry lock before the insert), the text
    lengths the table stores, and a licence. Runs before any slow work."""
    model_id, family, version = _parse_id(new.family, new.version)
    for name, value in (("label", new.label), ("licence", new.licence)):
        if len(value.strip()) > TEXT_FIELD_MAX:
            raise ModelAdminError(
                f"The {name} is {len(value.strip())} characters long; at most {TEXT_FIELD_MAX} are kept."
            )
    _check_free(session, model_id, family, version)
    if not new.licence.strip() and _family_spec(session, family) is None:
        raise ModelAdminError(_NO_LICENCE)
    return model_id, family, version


_NO_LICENCE = "Name the model's licence (e.g. Apache-2.0), so users know its terms."


def _family_spec(session: Session, family: str) -> ModelSpec | None:
    for row in registry_db.list_models(session=session):
        if row.family == family:
            try:
                return spec_from_row(row)
            except ValidationError:  # an unusable row lends nothing to its versions
                continue
    return None


def _build_spec(
    session: Session, model_id: str, new: NewModel, source: ModelSource, revision: str, check: ModelCheck
) -> tuple[ModelSpec, list[str]]:
    family = _family_spec(session, model_id.partition(VERSION_SEPARATOR)[0])
    version = model_id.partition(VERSION_SEPARATOR)[2]
    warnings = []
    kind = new.kind or check.kind
    if family is not None and family.kind != check.kind and new.kind is None:
        kind = family.kind
        warnings.append(
            f"config.json ({check.architecture}) suggests a {check.kind} model, but {family.family} is "
            f"registered as {family.kind}; it was added as {family.kind}. If that is wrong, add it "
            "again with the kind chosen under Details."
        )
    default_label = f"{family.label} ({version})" if family and version else model_id
    detected = check.max_positions
    if new.max_input_tokens:
        if detected and new.max_input_tokens > detected:
            raise ModelAdminError(
                f"Max input tokens {new.max_input_tokens:,} is more than this model's config.json "
                f"allows ({detected:,} positions)."
            )
        max_tokens = new.max_input_tokens
    elif family is not None:
        # The family's limit may be larger than this copy's positions (a shorter-context
        # variant): longer inputs would index past its position embeddings.
        max_tokens = min(family.max_input_tokens, detected) if detected else family.max_input_tokens
    else:
        max_tokens = min(detected or DEFAULT_MAX_INPUT_TOKENS, 131_072)
    licence = new.licence.strip() or (family.licence if family else "")
    if not licence:
        raise ModelAdminError(_NO_LICENCE)
    try:
        spec = ModelSpec(
            id=model_id,
            label=new.label.strip() or default_label[:TEXT_FIELD_MAX],
            kind=kind,
            source=source,
            revision=revision,
            licence=licence,
            max_input_tokens=max_tokens,
            chat_template=check.chat_template if new.chat_template is None else new.chat_template,
        )
    except ValidationError as exc:
        raise ModelAdminError(validation_message(exc)) from None
    return spec, warnings


def _lock_and_insert(
    session: Session,
    viewer: Viewer,
    service: ModelHost,
    model_id: str,
    new: NewModel,
    source: ModelSource,
    revision: str,
    check: ModelCheck,
) -> Added:
    """The short write at the end of an add: take the registry lock, make sure no one took
    the id while the files were checked, insert and audit."""
    registry_db.lock_registry(session=session)
    _, family, version = _parse_id(new.family, new.version)
    _check_free(session, model_id, family, version)
    spec, warnings = _build_spec(session, model_id, new, source, revision, check)
    row = registry_db.add_model(
        session=session,
        spec_fields=spec_columns(spec),
        family=spec.family,
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
        notes="; ".join([*check.notes, *warnings]),
    )
    _after_commit_refresh(session, service)
    return Added(row, tuple(warnings))


# The adds below check the form first, then read and hash the model's files with no lock held
# (that can take minutes for large weights: on SQLite the registry lock is the database's
# write lock, and on Postgres it would stall seeding, and with it every registry read), and
# only then lock, re-check the id and insert.


def add_local(
    *, session: Session, viewer: Viewer, service: ModelHost, directory: str, new: NewModel
) -> Added:
    """Register a model directory on the server, in place (its revision is a content hash)."""
    _require_admin(viewer)
    model_id, _, _ = _check_form(session, new)
    if not directory.strip():
        raise ModelCheckError("Enter the directory that holds the model on the server.")
    try:
        path = Path(directory.strip()).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable home
        raise ModelCheckError(f"{directory.strip()} cannot be resolved on this server: {exc}.") from None
    check = inspect_directory(path, refuse_pickle=False)
    revision = content_revision(check)
    source = ModelSource(type="local", path=str(path))
    return _lock_and_insert(session, viewer, service, model_id, new, source, revision, check)


def add_hub(
    *, session: Session, viewer: Viewer, service: ModelHost, repo: str, revision: str, new: NewModel
) -> Added:
    """Register a hub model pinned to a commit; it must already be in the local cache."""
    _require_admin(viewer)
    model_id, _, _ = _check_form(session, new)
    repo = check_hub_id(repo)
    revision = check_commit_sha(revision, repo=repo, cached_refs=cached_refs(repo))
    check = inspect_directory(hub_snapshot(repo, revision), refuse_pickle=False)
    source = ModelSource(type="hub", repo=repo)
    return _lock_and_insert(session, viewer, service, model_id, new, source, revision, check)


def add_upload(
    *,
    session: Session,
    viewer: Viewer,
    service: ModelHost,
    data: IO[bytes],
    filename: str,
    new: NewModel,
    uploads_dir: Path,
    max_bytes: int,
) -> Added:
    """Unpack an uploaded archive under ``uploads_dir``, check it (no pickle files at all) and
    register it.

    The archive is unpacked into ``.partial-<uuid>`` and renamed to its final name (the path
    the row records) when the transaction commits; on any refusal, or when the insert is
    rolled back, the staging directory is removed. Crash leftovers are swept at start-up
    (`sweep_partial_uploads`).
    """
    _require_admin(viewer)
    model_id, _, _ = _check_form(session, new)
    try:
        uploads_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelCheckError(
            f"The uploads directory {uploads_dir} cannot be created: {exc.strerror}."
        ) from None
    token = uuid.uuid4().hex
    staging = uploads_dir / f"{PARTIAL_PREFIX}{token}"
    final = uploads_dir / f"{model_id.replace(VERSION_SEPARATOR, '--')}-{token[:8]}"
    try:
        directory = extract_archive(data, filename, staging, max_bytes=max_bytes)
        check = inspect_directory(directory, refuse_pickle=True)
        revision = content_revision(check)
        source = ModelSource(type="local", path=str(final / directory.relative_to(staging)))
        added = _lock_and_insert(session, viewer, service, model_id, new, source, revision, check)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    when_transaction_ends(
        session,
        committed=lambda: _install_upload(staging, final),
        undone=lambda: shutil.rmtree(staging, ignore_errors=True),
    )
    return added


def _install_upload(staging: Path, final: Path) -> None:
    try:
        staging.rename(final)
    except OSError:
        # The row is committed; its model shows as unavailable (its path is missing) and the
        # staging directory is swept at the next start.
        log.exception("uploaded model not moved into place", extra={"staging": str(staging)})


def when_transaction_ends(
    session: Session, *, committed: Callable[[], None], undone: Callable[[], None]
) -> None:
    """Call ``committed`` once the outermost transaction commits, or ``undone`` once the
    change made now is rolled back: the transaction or savepoint it was made in (or one
    enclosing it) rolls back, or the outermost one ends without committing. Rolling back
    another savepoint (one opened and closed after this change) leaves it alone, since the
    change is still there to commit. Exactly one of the two runs."""
    current = session.get_nested_transaction() or session.get_transaction()
    chain: list[SessionTransaction] = []
    while current is not None:
        chain.append(current)
        current = current.parent
    root = chain[-1]
    done = False

    def finish(action: Callable[[], None]) -> None:
        nonlocal done
        if done:
            return
        # The listeners stay (SQLAlchemy cannot remove one while dispatching the event) and
        # do nothing from now on; they go with the session, which lives for one action.
        done = True
        action()

    def on_commit(committing: Session) -> None:
        # after_commit also fires when a savepoint is released; only the outermost counts.
        if not committing.in_nested_transaction():
            finish(committed)

    def on_rollback(_session: Session, previous: SessionTransaction) -> None:
        if any(previous is transaction for transaction in chain):
            finish(undone)

    def on_end(_session: Session, transaction: SessionTransaction) -> None:
        if transaction is root:  # ended without a commit (closed): the change is gone
            finish(undone)

    event.listen(session, "after_commit", on_commit)
    event.listen(session, "after_soft_rollback", on_rollback)
    event.listen(session, "after_transaction_end", on_end)


def sweep_partial_uploads(uploads_dir: Path, *, max_age_s: float = PARTIAL_MAX_AGE_S) -> list[Path]:
    """Remove staging directories a crashed upload left behind (at start-up); the removed."""
    if not uploads_dir.is_dir():
        return []
    now = time.time()
    removed = []
    for entry in uploads_dir.glob(f"{PARTIAL_PREFIX}*"):
        try:
            stale = entry.is_dir() and now - entry.stat().st_mtime > max_age_s
        except OSError:
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        log.info("stale model uploads removed", extra={"count": len(removed)})
    return removed


# --- Switches --------------------------------------------------------------------------------


def set_enabled(
    *, session: Session, viewer: Viewer, service: ModelHost, model_id: str, enabled: bool
) -> None:
    """Offer the model in the pickers again, or take it out (and out of this process's memory;
    queued and running batch jobs on it fail when they next load it, `core.jobs.tasks`)."""
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


def set_default(*, session: Session, viewer: Viewer, service: ModelHost, model_id: str) -> None:
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


def load(*, session: Session, viewer: Viewer, service: ModelHost, model_id: str) -> LoadOutcome:
    """Load the model into this process's pool; a failure is an outcome (audited), not an error.

    A turned-off model is refused: loading it would hold memory for a model no one may run.
    The pool's `LoadFailureRecorder` audits a failure in its own transaction (naming this
    admin); a pool without one gets the event in the page's transaction.
    """
    _require_admin(viewer)
    registry = service.registry
    spec = registry.get(model_id)
    if not registry.is_enabled(model_id):
        raise ModelAdminError(f"{spec.label} is turned off; turn it on before loading it.")
    started = time.perf_counter()
    was_loaded = service.pool.is_loaded(spec)
    # The row is read (and locked) only after the load: a load can take a minute.
    token = _LOAD_ACTOR.set(viewer.user_id)
    try:
        loaded = service.pool.get(spec)
    except HeadlightError as exc:
        if service.pool.on_failure is None:
            detail = {"reason": str(exc)[:500], "process": process_name()}
            _audit(session, viewer, MODEL_LOAD_FAILURE, _row(session, model_id), **detail)
        return LoadOutcome(False, str(exc))
    finally:
        _LOAD_ACTOR.reset(token)
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


def unload(*, session: Session, viewer: Viewer, service: ModelHost, model_id: str) -> bool:
    """Drop the model from this process's memory; False when it was not loaded."""
    _require_admin(viewer)
    spec = service.registry.get(model_id)
    if not service.pool.unload(spec):
        return False
    _audit(session, viewer, MODEL_UNLOAD, _row(session, model_id))
    return True
