"""Presets (permissions, favourites, duplicate, share, export/import) and the request log,
on SQLite and Postgres."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import presets
from core.analysis import GenerationParams
from core.library import NotFoundError, PermissionDeniedError
from core.presets import GenerateSettings, GenerateView, PresetError
from core.request_log import RequestEntry, RequestLog
from db import request_log as request_log_db
from db.models import AuditEvent, PresetScreen, Role
from tests.db.conftest import UserFactory

SETTINGS = GenerateSettings(
    model_id="smollm2-135m-instruct",
    generation=GenerationParams(max_new_tokens=7, do_sample=True, temperature=0.7, seed=42),
    top_k_next=9,
    view=GenerateView(bertviz_view="model", layer=3, head=2),
)


def _create(session: Session, viewer: object, name: str = "Greedy short", **kwargs: object) -> int:
    return presets.create_preset(
        session=session, viewer=viewer, name=name, screen=PresetScreen.GENERATE, settings=SETTINGS, **kwargs
    )


def test_preset_round_trip_through_export_and_import(session: Session, make_user: UserFactory) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    preset_id = _create(session, alice, description="for demos")
    data = presets.export_preset(session=session, viewer=alice, preset_id=preset_id)
    document = json.loads(data)
    assert document["format"] == "headlight.preset" and document["version"] == 1
    assert "owner" not in document and "id" not in document
    copy_id = presets.import_preset(session=session, viewer=bob, data=data)
    assert presets.load_settings(session=session, viewer=bob, preset_id=copy_id) == SETTINGS
    items = presets.list_presets(session=session, viewer=bob)
    assert [(i.name, i.owner, i.is_public, i.can_edit) for i in items] == [
        ("Greedy short", "bob", False, True)
    ]
    assert presets.export_preset(session=session, viewer=bob, preset_id=copy_id) == data
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "preset")))
    assert {"preset.create", "preset.export", "preset.import"} <= actions


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b'{"format": "headlight.analysis"}', "not a Headlight preset"),
        (
            b'{"format": "headlight.preset", "version": 2, "name": "x", "screen": "generate",'
            b' "settings": {}}',
            "version",
        ),
        (
            b'{"format": "headlight.preset", "version": 1, "name": "x", "screen": "generate",'
            b' "settings": {"model_id": "m", "top_k_next": 999}}',
            "top_k_next",
        ),
        (b"x" * (presets.MAX_IMPORT_BYTES + 1), "at most"),
    ],
)
def test_malformed_imports_are_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(PresetError, match=message):
        presets.parse_document(data)


def test_sharing_favourites_duplicate_and_permissions(session: Session, make_user: UserFactory) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    viewer, admin = make_user("vera", Role.VIEWER), make_user("root", Role.ADMIN)
    preset_id = _create(session, alice)
    assert presets.list_presets(session=session, viewer=bob) == []
    with pytest.raises(NotFoundError):
        presets.load_settings(session=session, viewer=bob, preset_id=preset_id)
    presets.set_public(session=session, viewer=alice, preset_id=preset_id, public=True)
    assert [i.id for i in presets.list_presets(session=session, viewer=viewer)] == [preset_id]
    with pytest.raises(PermissionDeniedError):
        presets.update_preset(session=session, viewer=bob, preset_id=preset_id, name="mine now")
    with pytest.raises(PermissionDeniedError):
        presets.create_preset(
            session=session, viewer=viewer, name="v", screen=PresetScreen.GENERATE, settings=SETTINGS
        )
    presets.set_favourite(session=session, viewer=viewer, preset_id=preset_id, favourite=True)
    presets.set_favourite(session=session, viewer=viewer, preset_id=preset_id, favourite=True)  # idempotent
    assert presets.list_presets(session=session, viewer=viewer)[0].is_favourite
    copy_id = presets.duplicate_preset(session=session, viewer=bob, preset_id=preset_id)
    bobs = {i.id: i for i in presets.list_presets(session=session, viewer=bob)}
    assert (
        bobs[copy_id].name == "Greedy short (copy)" and bobs[copy_id].can_edit and not bobs[copy_id].is_public
    )
    presets.update_preset(session=session, viewer=admin, preset_id=preset_id, name="  Renamed   by admin ")
    assert presets.list_presets(session=session, viewer=alice)[0].name == "Renamed by admin"
    presets.delete_preset(session=session, viewer=alice, preset_id=preset_id)
    assert [i.id for i in presets.list_presets(session=session, viewer=viewer)] == []
    with pytest.raises(PresetError, match="name"):
        _create(session, alice, name="   ")


def test_request_log_writes_in_background_and_reads_back(session: Session, make_user: UserFactory) -> None:
    alice = make_user("alice")
    now = datetime.now(UTC)
    log = RequestLog(lambda: Session(bind=session.connection(), join_transaction_mode="create_savepoint"))
    log.record(
        RequestEntry(model_id="m", mode="encode", latency_s=0.5, at=now, user_id=alice.user_id, tokens=5)
    )
    log.record(
        RequestEntry(
            model_id="m",
            mode="generate",
            latency_s=0.01,
            at=now,
            error_kind="rate_limited",
            error_message="slow",
        )
    )
    log.record(RequestEntry(model_id="other", mode="encode", latency_s=1.0, at=now - timedelta(days=2)))
    assert log.flush()
    rows = request_log_db.list_requests(session=session, since=now - timedelta(hours=1), model_id="m")
    assert [(r.username, r.error_kind, r.tokens) for r in rows] == [
        ("alice", None, 5),
        (None, "rate_limited", 0),
    ]
    assert request_log_db.logged_models(session=session) == ["m", "other"]
    assert request_log_db.purge_requests(session=session, before=now - timedelta(days=1)) == 1


def test_request_log_survives_an_unavailable_database() -> None:
    def broken() -> Session:
        raise ConnectionError("database down")

    log = RequestLog(broken)  # type: ignore[arg-type]
    log.record(RequestEntry(model_id="m", mode="encode", latency_s=0.1))
    assert log.flush() and log.dropped == 1 and "database down" in (log.last_error or "")
