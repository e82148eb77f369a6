"""Owned records, one lifecycle for every kind: analyses, comparisons, head atlases, datasets
and presets are opened, written, moved to the Trash, restored, published and audited here,
driven by `KINDS`, a table that says for each kind where its rows live, what it is called on
screen and which rules of `core.access.permissions` decide who reads and who writes it.

- `open_readable`: a live record the viewer may read; anything else (missing, in the Trash,
  private, or of another owner) is `not_found`, one message for all, so a guess learns nothing.
- `open_writable`: a record the viewer may also change: a live one, or one in their Trash
  (``in_trash=True``); a record they read but may not change is `PermissionDeniedError`.
- `delete`, `restore`, `set_public`: the lifecycle steps, each audited by `audit`.

Functions take keyword-only ``session`` and ``viewer`` and never commit (services open the
transaction, `core.store.transaction.unit_of_work`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.base import ExecutableOption

from core.access import audit as audit_log
from core.access import permissions
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import Viewer
from core.domain.owned import Access, RecordKind
from db import jobs as jobs_db
from db import owned as owned_db
from db.models import Atlas, Comparison, Dataset, Preset, Visualization

View = TypeVar("View")


@dataclass(frozen=True)
class KindRules:
    """How one kind of record is stored, named and guarded."""

    model: type[Any]  # its table
    noun: str  # in messages: "Analysis #3 was not found", "the owner of a head atlas"
    audit_target: str  # the ``target_type`` of its audit events
    audit_prefix: str  # its audit actions are "<prefix>.<verb>": "analysis.delete"
    read_filter: Callable[[Viewer], ColumnElement[bool]]  # live rows the viewer reads
    can_read: Callable[[Viewer, Any, Collection[int]], bool]  # one row; ids granted to the viewer
    can_write: Callable[[Viewer, Any], bool]
    grants: bool = False  # shared with single users through `grants`
    shareable: bool = True  # has a public switch (and, for `LINK_KINDS`, share links)
    write_lock: bool = False  # written by batch workers too: writes take the lock first
    load: Sequence[ExecutableOption] = ()  # relations an opened record comes with
    describe: Callable[[Any], dict[str, object]] | None = None  # detail of each audit event
    keep_hint: str = ""  # said to a reader who may not change it

    @property
    def label(self) -> str:
        return self.noun[0].upper() + self.noun[1:]

    @property
    def article(self) -> str:
        return "an" if self.noun[0] in "aeiou" else "a"


def _saved(model: type[Any], noun: str, target: str, prefix: str, **options: Any) -> KindRules:
    """The rules of a saved record (analysis, comparison, atlas): private, public or granted."""
    return KindRules(
        model=model,
        noun=noun,
        audit_target=target,
        audit_prefix=prefix,
        read_filter=lambda viewer: permissions.read_filter(viewer, model),
        can_read=lambda viewer, record, shared: permissions.can_read(viewer, record, shared_ids=shared),
        can_write=permissions.can_write,
        grants=True,
        **options,
    )


KINDS: dict[RecordKind, KindRules] = {
    RecordKind.ANALYSIS: _saved(
        Visualization,
        "analysis",
        audit_log.VISUALIZATION,
        "analysis",
        load=(selectinload(Visualization.tags), selectinload(Visualization.annotations)),
    ),
    RecordKind.COMPARISON: _saved(Comparison, "comparison", audit_log.COMPARISON, "comparison"),
    RecordKind.ATLAS: _saved(Atlas, "head atlas", audit_log.ATLAS, "atlas", write_lock=True),
    RecordKind.DATASET: KindRules(
        model=Dataset,
        noun="dataset",
        audit_target=audit_log.DATASET,
        audit_prefix="dataset",
        read_filter=permissions.dataset_filter,
        can_read=lambda viewer, record, _shared: permissions.can_read_dataset(viewer, record),
        can_write=permissions.can_write,
        write_lock=True,
        shareable=False,  # only built-in datasets are public; uploads stay with their owner
    ),
    RecordKind.PRESET: KindRules(
        model=Preset,
        noun="preset",
        audit_target=audit_log.PRESET,
        audit_prefix="preset",
        read_filter=permissions.preset_filter,
        can_read=lambda viewer, record, _shared: permissions.can_read_preset(viewer, record),
        can_write=permissions.can_write_preset,
        describe=lambda preset: {"name": preset.name, "screen": preset.screen.value},
        keep_hint=" Duplicate it to make your own.",
    ),
}


def action(kind: RecordKind, verb: str) -> str:
    """The audit action of ``verb`` on a kind: ``action(ANALYSIS, "delete") == "analysis.delete"``."""
    return f"{KINDS[kind].audit_prefix}.{verb}"


def not_found(kind: RecordKind, record_id: int, *, in_trash: bool = False) -> NotFoundError:
    """The one answer for a record that is missing, deleted, unreadable or behind a bad link."""
    if in_trash:
        return NotFoundError(f"{KINDS[kind].label} #{record_id} was not found in the Trash.")
    return NotFoundError(f"{KINDS[kind].label} #{record_id} was not found. It may have been deleted.")


def denied(kind: RecordKind, verb: str = "change") -> PermissionDeniedError:
    """A record the viewer reads but may not ``verb``."""
    rules = KINDS[kind]
    return PermissionDeniedError(
        f"Only the owner of {rules.article} {rules.noun} (or an admin) can {verb} it.{rules.keep_hint}"
    )


def shared_ids(*, session: Session, viewer: Viewer, kind: RecordKind, record_id: int) -> set[int]:
    """``{record_id}`` when a live grant shares that record with the viewer, else empty."""
    rules = KINDS[kind]
    if not rules.grants or viewer.user_id is None:
        return set()
    return owned_db.granted_ids(
        session=session, model=rules.model, user_id=viewer.user_id, record_ids=[record_id]
    )


def _lock(session: Session, kind: RecordKind) -> None:
    if KINDS[kind].write_lock:
        jobs_db.take_write_lock(session=session)


def open_readable(*, session: Session, viewer: Viewer, kind: RecordKind, record_id: int) -> Any:
    """A live record the viewer may read; `not_found` otherwise."""
    rules = KINDS[kind]
    record = owned_db.get(
        session=session,
        model=rules.model,
        record_id=record_id,
        readable=rules.read_filter(viewer),
        options=rules.load,
    )
    shared = shared_ids(session=session, viewer=viewer, kind=kind, record_id=record_id)
    if record is None or not rules.can_read(viewer, record, shared):
        raise not_found(kind, record_id)
    return record


def open_writable(
    *, session: Session, viewer: Viewer, kind: RecordKind, record_id: int, in_trash: bool = False
) -> Any:
    """A record the viewer may change: live (readable), or in their Trash with ``in_trash``."""
    rules = KINDS[kind]
    _lock(session, kind)
    if in_trash:
        record = owned_db.get(
            session=session,
            model=rules.model,
            record_id=record_id,
            readable=permissions.trash_filter(viewer, rules.model),
        )
        if record is None:
            raise not_found(kind, record_id, in_trash=True)
    else:
        record = open_readable(session=session, viewer=viewer, kind=kind, record_id=record_id)
    if not rules.can_write(viewer, record):
        raise denied(kind)
    return record


def access(viewer: Viewer, kind: RecordKind, record: Any) -> Access:
    """What the viewer may do with an opened record."""
    rules = KINDS[kind]
    can_write = rules.can_write(viewer, record)
    return Access(can_write=can_write, can_share=rules.shareable and can_write and record.deleted_at is None)


def view_of(view: type[View], record: Any, **computed: object) -> View:
    """A plain, frozen view of a row: each field of the ``view`` dataclass is the row's
    attribute of the same name, unless ``computed`` gives it."""
    copied = {item.name for item in fields(view) if item.name not in computed}  # type: ignore[arg-type]
    return view(**{name: getattr(record, name) for name in copied}, **computed)


def audit(
    *, session: Session, viewer: Viewer | None, kind: RecordKind, action: str, record: Any, **detail: object
) -> None:
    """Record one event on a record (a row, or its id when only that is known) of ``kind``.

    ``viewer`` None is a visitor who is not signed in (a share link).
    """
    rules = KINDS[kind]
    if rules.describe is not None and not isinstance(record, int):
        detail = {**rules.describe(record), **detail}
    audit_log.record(
        session=session,
        actor_id=viewer.user_id if viewer is not None else None,
        action=action,
        target_type=rules.audit_target,
        target_id=record if isinstance(record, int) else record.id,
        detail=detail or None,
    )


def delete(*, session: Session, viewer: Viewer, kind: RecordKind, record_id: int) -> Any:
    """Move a record to the Trash (restorable until purged); returns it."""
    record = open_writable(session=session, viewer=viewer, kind=kind, record_id=record_id)
    owned_db.set_deleted(session=session, record=record, deleted=True)
    audit(session=session, viewer=viewer, kind=kind, action=action(kind, "delete"), record=record)
    return record


def restore(*, session: Session, viewer: Viewer, kind: RecordKind, record_id: int) -> Any:
    """Bring a record back from the Trash; returns it."""
    record = open_writable(session=session, viewer=viewer, kind=kind, record_id=record_id, in_trash=True)
    owned_db.set_deleted(session=session, record=record, deleted=False)
    audit(session=session, viewer=viewer, kind=kind, action=action(kind, "restore"), record=record)
    return record


def open_shareable(*, session: Session, viewer: Viewer, kind: RecordKind, record_id: int) -> Any:
    """A live record the viewer may publish and make links to: its owner's, or any for admins."""
    rules = KINDS[kind]
    if not rules.shareable:
        raise PermissionDeniedError(f"{rules.label}s are not shared; they stay with their owner.")
    _lock(session, kind)
    record = open_readable(session=session, viewer=viewer, kind=kind, record_id=record_id)
    if not access(viewer, kind, record).can_share:
        raise denied(kind, "share")
    return record


def set_public(*, session: Session, viewer: Viewer, kind: RecordKind, record_id: int, public: bool) -> None:
    """Make a record readable by everyone its kind allows, or private again (audited on change)."""
    record = open_shareable(session=session, viewer=viewer, kind=kind, record_id=record_id)
    if record.is_public == public:
        return
    owned_db.set_public(session=session, record=record, public=public)
    verb = "publish" if public else "unpublish"
    audit(session=session, viewer=viewer, kind=kind, action=action(kind, verb), record=record)
