"""The audit log on SQLite and Postgres: who sees which events, filters, and the CSV export."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from core.access import audit, auth
from core.domain.identity import ANONYMOUS
from core.domain.owned import RecordKind
from core.store import analyses as library
from core.store import owned, sharing
from db.audit import AuditFilters, AuditRow
from db.models import AuditEvent, Job, utcnow
from tests.core.store.test_batch import _atlas, _upload
from tests.fixtures.databases import UserFactory
from tests.fixtures.records import save


def test_owners_see_their_items_and_account_admins_see_all(session: Session, make_user: UserFactory) -> None:
    owner, other, admin = make_user("owner"), make_user("other"), make_user("root", auth.Role.ADMIN)
    mine = save(session, owner, "owner's text")
    theirs = save(session, other, "other's text")
    library.export_json(session=session, viewer=owner, visualization_id=mine.id)
    sharing.create_link(session=session, viewer=owner, record_id=mine.id, expires_in_days=None, now=utcnow())
    auth.record_logout(session=session, user_id=owner.user_id or 0)
    seen = {(r.action, r.target_id) for r in audit.events(session=session, viewer=owner)}
    assert {("analysis.save", mine.id), ("analysis.export", mine.id), ("share.create", mine.id)} <= seen
    assert ("logout", owner.user_id) in seen
    assert all(target != theirs.id for _, target in seen)
    everything = {(r.action, r.target_id) for r in audit.events(session=session, viewer=admin)}
    assert seen | {("analysis.save", theirs.id)} <= everything
    assert audit.events(session=session, viewer=ANONYMOUS) == []
    assert "share.create" in audit.action_choices(session=session, viewer=owner)
    assert [
        r.actor for r in audit.events(session=session, viewer=admin, filters=AuditFilters(actor="Other"))
    ] == ["other"]


def test_filters_narrow_by_action_item_and_date(session: Session, make_user: UserFactory) -> None:
    owner, admin = make_user("owner"), make_user("root", auth.Role.ADMIN)
    first, second = save(session, owner, "first"), save(session, owner, "second")
    old = AuditEvent(
        actor_id=owner.user_id, action="analysis.view", target_type="visualization", target_id=first.id
    )
    old.at = datetime(2025, 1, 1, 9, tzinfo=UTC)
    session.add(old)
    session.flush()

    def ids(**values: object) -> list[tuple[str, int | None]]:
        rows = audit.events(session=session, viewer=admin, filters=audit.date_filters(**values))  # type: ignore[arg-type]
        return [(r.action, r.target_id) for r in rows]

    assert ids(actions=("analysis.view",)) == [("analysis.view", first.id)]
    assert ids(target_type="visualization", target_id=second.id) == [("analysis.save", second.id)]
    assert ids(date_from=date(2025, 1, 1), date_to=date(2025, 1, 1)) == [("analysis.view", first.id)]
    today = utcnow().date()
    assert ("analysis.view", first.id) not in ids(date_from=today - timedelta(days=1))


def test_csv_export_keeps_formulas_as_text() -> None:
    row = AuditRow(
        id=1,
        at=datetime(2026, 1, 1, tzinfo=UTC),
        actor=None,
        action="=HYPERLINK(1)",
        target_type="visualization",
        target_id=4,
        detail={"via": "share link", "link": 2},
    )
    text = audit.to_csv([row]).decode("utf-8")
    assert text.splitlines()[0] == ",".join(audit.CSV_COLUMNS)
    assert "'=HYPERLINK(1)" in text and "link=2; via=share link" in text
    [line] = audit.table([row])
    assert (line["who"], line["item"]) == ("(not signed in)", "visualization #4")


def test_owners_see_the_events_of_their_jobs_datasets_and_atlases(
    session: Session, make_user: UserFactory
) -> None:
    """Batch work is audited under its own item types; its owner reads them, others do not."""
    owner, other = make_user("owner"), make_user("other")
    dataset = _upload(session, owner)
    atlas_id = _atlas(session, owner, dataset)
    owned.set_public(session=session, viewer=owner, kind=RecordKind.ATLAS, record_id=atlas_id, public=True)
    owned.delete(session=session, viewer=owner, kind=RecordKind.DATASET, record_id=dataset.id)
    jobs = [Job(kind="atlas", owner_id=user.user_id) for user in (owner, other)]
    session.add_all(jobs)
    session.flush()
    for job in jobs:
        audit.record(
            session=session, actor_id=job.owner_id, action="job.cancel", target_type="job", target_id=job.id
        )
    seen = {(r.action, r.target_type, r.target_id) for r in audit.events(session=session, viewer=owner)}
    assert {
        ("dataset.create", "dataset", dataset.id),
        ("dataset.delete", "dataset", dataset.id),
        ("atlas.publish", "atlas", atlas_id),
        ("job.cancel", "job", jobs[0].id),
    } <= seen
    assert ("job.cancel", "job", jobs[1].id) not in seen
    theirs = {(r.target_type, r.target_id) for r in audit.events(session=session, viewer=other)}
    assert theirs == {("job", jobs[1].id)}
