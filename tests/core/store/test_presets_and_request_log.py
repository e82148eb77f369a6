"""Presets (permissions, favourites, duplicate, share, export/import) and the request log,
on SQLite and Postgres."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access import permissions
from core.domain.analysis import GenerationParams
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import Role, Viewer
from core.domain.owned import RecordKind
from core.ops import drift
from core.store import model_analytics, owned, presets
from core.store.model_analytics import DriftWindows
from core.store.presets import GenerateSettings, GenerateView, PresetError
from core.store.request_log import RequestEntry, RequestLog
from db import purge as purge_command
from db import request_log as request_log_db
from db.models import AnalysisRequestLog, AuditEvent, Preset, PresetScreen
from tests.fixtures.databases import UserFactory

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
        (b"[" * 30_000, "nests too deeply"),
        (
            b'{"format": "headlight.preset", "version": 1, "name": "x", "screen": "generate",'
            b' "settings": {"model_id": "[click](https://evil.example)"}}',
            "model_id",
        ),
        (
            b'{"format": "headlight.preset", "version": 1, "name": "x", "screen": "generate",'
            b' "settings": {"model_id": "m", "generation": {"temperature": 0.01}}}',
            "temperature",
        ),
        (
            b'{"format": "headlight.preset", "version": 1, "name": "x", "screen": "compare",'
            b' "settings": {"model_a": "a", "model_b": "b", "generation": {"top_p": 0.001}}}',
            "top_p",
        ),
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
    owned.set_public(session=session, viewer=alice, kind=RecordKind.PRESET, record_id=preset_id, public=True)
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
    owned.delete(session=session, viewer=alice, kind=RecordKind.PRESET, record_id=preset_id)
    assert [i.id for i in presets.list_presets(session=session, viewer=viewer)] == []
    with pytest.raises(PresetError, match="name"):
        _create(session, alice, name="   ")


def _log(at: datetime, **fields: object) -> dict[str, object]:
    return {"at": at, "model_id": "smollm2", "mode": "generate", "latency_s": 1.0, **fields}


def test_request_log_writes_in_background_and_aggregates(session: Session, make_user: UserFactory) -> None:
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
    summaries = model_analytics.per_model(
        session=session, since=now - timedelta(hours=1), until=now + timedelta(seconds=1)
    )
    assert list(summaries) == ["m"]
    m = summaries["m"]
    assert (m.requests, m.served, m.errors, m.tokens, m.error_kinds) == (2, 1, 1, 5, {"rate_limited": 1})
    assert m.p50_s == pytest.approx(0.5)
    assert request_log_db.purge_requests(session=session, before=now - timedelta(days=1)) == 1
    assert log.close()


def _history(session: Session, ann: int, bob: int, t0: datetime) -> None:
    """100 served requests with latencies 1..100 s (every 4th a cache hit, at 0.01 s), 10
    rate-limited guests, one request of another model."""
    rows = [
        _log(
            t0 + timedelta(minutes=i),
            latency_s=0.01 if i % 4 == 0 else float(i + 1),
            cache_hit=i % 4 == 0,
            tokens=10,
            user_id=ann if i < 30 else bob,
        )
        for i in range(100)
    ]
    rows += [
        _log(t0 + timedelta(minutes=100 + i), latency_s=0.01, error_kind="rate_limited") for i in range(10)
    ]
    rows.append(_log(t0 + timedelta(minutes=5), model_id="minilm", latency_s=0.5))
    request_log_db.insert_requests(session=session, rows=rows)


def test_analytics_are_aggregated_in_sql_with_model_run_latency(
    session: Session, make_user: UserFactory
) -> None:
    ann, bob = make_user("ann"), make_user("bob")
    admin = make_user("root", Role.ADMIN)
    t0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    _history(session, ann.user_id or 0, bob.user_id or 0, t0)
    window = {"since": t0, "until": t0 + timedelta(hours=2)}
    summaries = model_analytics.per_model(session=session, **window)
    assert list(summaries) == ["smollm2", "minilm"]
    s = summaries["smollm2"]
    assert (s.requests, s.served, s.errors) == (110, 100, 10)
    runs = [float(i + 1) for i in range(100) if i % 4]  # cache hits are not model runs
    assert s.p50_s == pytest.approx(float(np.percentile(runs, 50)))
    assert s.p95_s == pytest.approx(float(np.percentile(runs, 95)))
    assert s.hit_p50_s == pytest.approx(0.01)
    assert s.cache_hit_rate == pytest.approx(0.25)
    assert s.tokens == 1000
    assert s.error_kinds == {"rate_limited": 10}

    series = model_analytics.time_series(
        session=session, model_id="smollm2", width=timedelta(hours=1), **window
    )
    assert series.starts == [t0, t0 + timedelta(hours=1)]
    assert series.requests == [60, 50]
    assert series.errors == [0, 10]
    assert sum(series.cache_hits) == 25 and sum(series.tokens) == 1000
    first_hour = [float(i + 1) for i in range(60) if i % 4]
    assert series.p50_s[0] == pytest.approx(float(np.percentile(first_hour, 50)))
    assert model_analytics.bucket_width(timedelta(hours=1)) == timedelta(minutes=1)

    breakdown = model_analytics.per_user(admin, session=session, model_id="smollm2", **window)
    assert [(b.user, b.summary.requests) for b in breakdown] == [
        ("bob", 70),
        ("ann", 30),
        (model_analytics.GUEST_LABEL, 10),
    ]
    with pytest.raises(model_analytics.AnalyticsPermissionError):
        model_analytics.per_user(ann, session=session, model_id="smollm2", **window)


def test_drift_reads_both_windows_in_full(session: Session) -> None:
    """Every request of both windows counts (lengths in SQL); token profiles up to a cap,
    reported when hit, and the baseline is never cut to make room for the recent window."""
    end = datetime(2026, 11, 10, tzinfo=UTC)
    windows = DriftWindows.ending_at(end, recent=timedelta(days=1), baseline=timedelta(days=7))
    rows = [
        _log(
            end - timedelta(days=1, hours=1 + i), input_chars=50, token_profile=drift.token_profile([1, 2, 3])
        )
        for i in range(30)
    ]
    rows += [
        _log(
            end - timedelta(minutes=5 + i), input_chars=5000, token_profile=drift.token_profile([9000, 9001])
        )
        for i in range(25)
    ]
    rows.append(_log(end - timedelta(days=9), input_chars=50))  # before the baseline
    request_log_db.insert_requests(session=session, rows=rows)
    result = model_analytics.model_drift(session=session, model_id="smollm2", windows=windows)
    report = result.report
    assert (report.baseline_requests, report.recent_requests) == (30, 25)
    assert report.length.baseline_counts[2] == 30 and report.length.recent_counts[-2] == 25
    assert report.tokens.baseline_counts.sum() == 90 and report.tokens.recent_counts.sum() == 50
    assert report.flagged and not result.profiles_capped
    capped = model_analytics.model_drift(
        session=session, model_id="smollm2", windows=windows, profile_limit=10
    )
    assert capped.profiles_capped and capped.report.baseline_requests == 30
    assert capped.report.tokens.baseline_counts.sum() == 30  # the newest 10 profiles


def test_request_log_retention_purge(session: Session) -> None:
    now = datetime(2026, 11, 10, tzinfo=UTC)
    request_log_db.insert_requests(
        session=session,
        rows=[_log(now - timedelta(days=d)) for d in (1, 89, 91, 400)],
    )
    assert purge_command.purge_request_log(session=session, days=90, now=now) == 2
    left = sorted(session.scalars(select(AnalysisRequestLog.at)))
    assert [round((now - at).total_seconds() / 86400) for at in reversed(left)] == [1, 89]
    actions = set(session.scalars(select(AuditEvent.action)))
    assert "request_log.purge" in actions
    with pytest.raises(ValueError):
        purge_command.purge_request_log(session=session, days=0, now=now)


def test_preset_filter_and_can_read_preset_agree(session: Session, make_user: UserFactory) -> None:
    """Every viewer (owner, another user, admin, guest account, visitor) against every
    preset (private, public, deleted): the SQL filter lists exactly what the check allows."""
    owner, other = make_user("owner"), make_user("other", Role.VIEWER)
    admin, guest = make_user("root", Role.ADMIN), make_user("guesty", Role.GUEST)
    visitor = Viewer(user_id=None, role=Role.GUEST)
    ids = {}
    for public, deleted in itertools.product((False, True), (False, True)):
        preset_id = _create(session, owner, name=f"p{public}{deleted}", is_public=public)
        if deleted:
            owned.delete(session=session, viewer=owner, kind=RecordKind.PRESET, record_id=preset_id)
        ids[(public, deleted)] = preset_id
    for viewer in (owner, other, admin, guest, visitor):
        listed = set(session.scalars(select(Preset.id).where(permissions.preset_filter(viewer))))
        for preset_id in ids.values():
            preset = session.get(Preset, preset_id)
            assert preset is not None
            assert (preset_id in listed) == permissions.can_read_preset(viewer, preset), (viewer, preset_id)
    assert not any(permissions.can_read_preset(guest, session.get(Preset, i)) for i in ids.values())  # type: ignore[arg-type]
    assert permissions.can_read_preset(other, session.get(Preset, ids[(True, False)]))  # type: ignore[arg-type]
    assert not permissions.can_view_model_analytics(guest) and permissions.can_view_model_analytics(other)


def test_request_log_survives_an_unavailable_database() -> None:
    def broken() -> Session:
        raise ConnectionError("database down")

    log = RequestLog(broken)  # type: ignore[arg-type]
    log.record(RequestEntry(model_id="m", mode="encode", latency_s=0.1))
    assert log.flush() and log.dropped == 1 and "database down" in (log.last_error or "")
