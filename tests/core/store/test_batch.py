"""The Batch screen's actions on SQLite and Postgres: datasets (store, visibility, Trash,
tokenization), job launch checks and control rights, and atlases shared like analyses."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, true
from sqlalchemy.orm import Session

from core.access.permissions import Scope
from core.attention.atlas import ATLAS_STATS, AtlasAccumulator
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import Role, Viewer
from core.domain.owned import RecordKind
from core.jobs.contract import JobStatus, RowStatus
from core.models.registry import Registry
from core.service import batch
from core.store import atlases, datasets, owned, saved_datasets
from core.store import jobs as job_store
from core.store.datasets import DatasetFormat
from db import atlases as atlas_db
from db import datasets as dataset_db
from db import jobs as jobs_db
from db import purge as purge_command
from db.models import Atlas, Dataset, DatasetRow, JobRow, utcnow
from tests.fixtures.batch import FakeService
from tests.fixtures.databases import UserFactory
from tests.fixtures.tiny import tiny_model

MODEL = "all-minilm-l6-v2"


def _upload(session: Session, viewer: Viewer, text: str = "one\n\ntwo\nthree\n") -> Dataset:
    report = datasets.parse(text.encode(), DatasetFormat.TEXT)
    return saved_datasets.create_dataset(
        session=session, viewer=viewer, name="  my rows ", filename="rows.txt", report=report
    )


def test_datasets_are_private_and_the_probe_is_built_in(session: Session, make_user: UserFactory) -> None:
    """The owner (and admins) see an upload; everyone sees the probe, listed first."""
    alice, bob, admin = make_user("alice"), make_user("bob"), make_user("root", Role.ADMIN)
    dataset = _upload(session, alice)
    assert (dataset.name, dataset.row_count, dataset.format) == ("my rows", 3, "text")
    assert dataset.report["by_reason"] == {"empty": 1}
    names = [d.name for d in saved_datasets.list_datasets(session=session, viewer=alice)]
    assert names == [datasets.PROBE_NAME, "my rows"]
    assert [d.name for d in saved_datasets.list_datasets(session=session, viewer=bob)] == [
        datasets.PROBE_NAME
    ]
    assert len(saved_datasets.list_datasets(session=session, viewer=admin)) == 2
    rows = saved_datasets.preview_rows(session=session, viewer=alice, dataset_id=dataset.id, limit=2)
    assert [(r.position, r.line, r.text) for r in rows] == [(0, 1, "one"), (1, 3, "two")]
    with pytest.raises(NotFoundError):
        saved_datasets.preview_rows(session=session, viewer=bob, dataset_id=dataset.id)
    probe = saved_datasets.probe_dataset(session=session)
    assert probe.builtin_key == datasets.PROBE_KEY and probe.owner_id is None and probe.is_public
    assert saved_datasets.probe_dataset(session=session).id == probe.id


def test_dataset_trash_and_roles(session: Session, make_user: UserFactory) -> None:
    """Only the owner deletes and restores; viewers cannot upload; the probe is not deletable."""
    alice, bob, victor = make_user("alice"), make_user("bob"), make_user("victor", Role.VIEWER)
    dataset = _upload(session, alice)
    with pytest.raises(PermissionDeniedError, match="cannot upload"):
        _upload(session, victor)
    with pytest.raises(NotFoundError):
        owned.delete(session=session, viewer=bob, kind=RecordKind.DATASET, record_id=dataset.id)
    probe = saved_datasets.probe_dataset(session=session)
    with pytest.raises(PermissionDeniedError):
        owned.delete(session=session, viewer=alice, kind=RecordKind.DATASET, record_id=probe.id)
    owned.delete(session=session, viewer=alice, kind=RecordKind.DATASET, record_id=dataset.id)
    assert [d.id for d in saved_datasets.deleted_datasets(session=session, viewer=alice)] == [dataset.id]
    with pytest.raises(NotFoundError):
        saved_datasets.open_dataset(session=session, viewer=alice, dataset_id=dataset.id)
    owned.restore(session=session, viewer=alice, kind=RecordKind.DATASET, record_id=dataset.id)
    assert (
        saved_datasets.open_dataset(session=session, viewer=alice, dataset_id=dataset.id).deleted_at is None
    )


def test_tokenizations_are_stored_per_model(session: Session, make_user: UserFactory) -> None:
    """Counting tokens stores one result per model revision; counting again replaces it."""
    alice = make_user("alice")
    dataset = _upload(session, alice, "hello world\nthe cat sat on the mat\n")
    loaded = tiny_model()
    texts = saved_datasets.dataset_texts(session=session, viewer=alice, dataset_id=dataset.id)
    assert texts == ["hello world", "the cat sat on the mat"]
    for _ in range(2):
        revision, first = batch.count_tokens(texts, service=FakeService(loaded), model_id=loaded.spec.id)
        saved_datasets.save_tokenization(
            session=session,
            viewer=alice,
            dataset_id=dataset.id,
            model_id=loaded.spec.id,
            revision=revision,
            stats=first,
        )
    [(model_id, revision, stats)] = saved_datasets.tokenizations(
        session=session, viewer=alice, dataset_id=dataset.id
    )
    assert (model_id, revision, stats) == (loaded.spec.id, "test", first)
    assert stats.rows == 2 and stats.max_tokens == loaded.spec.max_input_tokens


def test_launch_checks_model_webhook_and_limits(
    session: Session, make_user: UserFactory, registry, settings
) -> None:
    """Jobs need an available model and, for webhooks, a secret and an http(s) URL; the token
    limit is capped at the model's."""
    alice = make_user("alice")
    dataset = _upload(session, alice)
    with pytest.raises(ValueError, match="Unknown model"):
        job_store.launch_atlas_job(
            session=session,
            viewer=alice,
            dataset_id=dataset.id,
            model_id="nope",
            registry=registry,
            settings=settings,
        )
    with pytest.raises(ValueError, match="cannot be used here"):
        job_store.launch_atlas_job(
            session=session,
            viewer=alice,
            dataset_id=dataset.id,
            model_id="gpt2",
            registry=registry,
            settings=settings,
        )
    with pytest.raises(ValueError, match="turned off by an admin"):
        job_store.launch_atlas_job(
            session=session,
            viewer=alice,
            dataset_id=dataset.id,
            model_id="all-minilm-l6-v2",
            registry=Registry(list(registry), disabled={"all-minilm-l6-v2"}),
            settings=settings,
        )
    kwargs = {
        "session": session,
        "viewer": alice,
        "dataset_id": dataset.id,
        "model_id": MODEL,
        "registry": registry,
    }
    with pytest.raises(ValueError, match="HEADLIGHT_WEBHOOK_SECRET"):
        job_store.launch_atlas_job(**kwargs, settings=settings, webhook_url="https://example.org/h")
    with_secret = settings.model_copy(update={"webhook_secret": "k"})
    with pytest.raises(ValueError, match="http:// or https://"):
        job_store.launch_atlas_job(**kwargs, settings=with_secret, webhook_url="file:///etc/passwd")
    job = job_store.launch_atlas_job(
        **kwargs, settings=with_secret, max_tokens=100_000, webhook_url="https://example.org/h"
    )
    assert job.status is JobStatus.QUEUED and job.rows_total == 3
    assert job.params["max_tokens"] == 512 and job.params["webhook_url"] == "https://example.org/h"
    [event] = jobs_db.events(session=session, job_id=job.id)
    assert event.kind == "queued" and "3 rows of 'my rows'" in event.message


def test_only_owners_and_admins_control_jobs(
    session: Session, make_user: UserFactory, registry, settings
) -> None:
    """Another analyst does not even see the job; an admin may cancel it."""
    alice, bob, admin = make_user("alice"), make_user("bob"), make_user("root", Role.ADMIN)
    dataset = _upload(session, alice)
    job = job_store.launch_atlas_job(
        session=session,
        viewer=alice,
        dataset_id=dataset.id,
        model_id=MODEL,
        registry=registry,
        settings=settings,
    )
    assert [j.id for j in job_store.list_jobs(session=session, viewer=bob)] == []
    with pytest.raises(NotFoundError):
        job_store.cancel_job(session=session, viewer=bob, job_id=job.id)
    viewer = Viewer(user_id=alice.user_id, role=Role.VIEWER)  # demoted since
    with pytest.raises(PermissionDeniedError):
        job_store.cancel_job(session=session, viewer=viewer, job_id=job.id)
    with pytest.raises(ValueError, match=r"A queued job cannot become queued"):
        job_store.resume_job(session=session, viewer=alice, job_id=job.id, lease_s=60)
    assert job_store.cancel_job(session=session, viewer=admin, job_id=job.id) is JobStatus.CANCELLED
    view = job_store.job_view(session=session, viewer=alice, job_id=job.id, lease_s=60)
    assert view.job.status is JobStatus.CANCELLED and view.progress.fraction == 0.0 and view.can_control
    assert [e.kind for e in view.events] == ["queued", "cancelled"] and not view.stalled


def _atlas(session: Session, owner: Viewer, dataset: Dataset) -> int:
    rows = saved_datasets.preview_rows(session=session, viewer=owner, dataset_id=dataset.id)
    acc = AtlasAccumulator(n_layers=2, n_heads=3)
    for i, row in enumerate(rows):
        scores = np.full((len(ATLAS_STATS), 2, 3), 0.1 * (i + 1), np.float32)
        acc.add(row.id, scores)
    record = atlas_db.create_atlas(
        session=session,
        owner_id=owner.user_id,
        fields={
            "dataset_id": dataset.id,
            "model_id": MODEL,
            "model_revision": "0.1.0",
            "title": "my rows × minilm",
            "n_layers": 2,
            "n_heads": 3,
            "rows_used": len(rows),
            "result": acc.result().to_json(),
        },
    )
    return record.id


def test_atlases_are_shared_like_analyses(session: Session, make_user: UserFactory) -> None:
    """Private to the owner; public for everyone; a grant for one user; revocable; Trash."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    atlas_id = _atlas(session, alice, _upload(session, alice))
    assert [a.id for a in atlases.list_atlases(session=session, viewer=alice, scope=Scope.MINE)] == [atlas_id]
    for outsider in (bob, carol):
        with pytest.raises(NotFoundError):
            atlases.open_atlas(session=session, viewer=outsider, atlas_id=atlas_id)
    atlases.share_with(session=session, viewer=alice, atlas_id=atlas_id, username="bob")
    assert atlases.open_atlas(session=session, viewer=bob, atlas_id=atlas_id).id == atlas_id
    assert [a.id for a in atlases.list_atlases(session=session, viewer=bob, scope=Scope.SHARED)] == [atlas_id]
    assert atlases.grantees(session=session, viewer=alice, atlas_id=atlas_id) == [(bob.user_id, "bob")]
    with pytest.raises(PermissionDeniedError):
        owned.set_public(session=session, viewer=bob, kind=RecordKind.ATLAS, record_id=atlas_id, public=True)
    with pytest.raises(NotFoundError, match="no active user 'zed'"):
        atlases.share_with(session=session, viewer=alice, atlas_id=atlas_id, username="zed")
    atlases.unshare(session=session, viewer=alice, atlas_id=atlas_id, user_id=bob.user_id)
    with pytest.raises(NotFoundError):
        atlases.open_atlas(session=session, viewer=bob, atlas_id=atlas_id)
    atlases.share_with(session=session, viewer=alice, atlas_id=atlas_id, username="bob")  # grant revived
    assert atlases.open_atlas(session=session, viewer=bob, atlas_id=atlas_id).id == atlas_id
    owned.set_public(session=session, viewer=alice, kind=RecordKind.ATLAS, record_id=atlas_id, public=True)
    assert [a.id for a in atlases.list_atlases(session=session, viewer=carol, scope=Scope.PUBLIC)] == [
        atlas_id
    ]
    owned.delete(session=session, viewer=alice, kind=RecordKind.ATLAS, record_id=atlas_id)
    with pytest.raises(NotFoundError):
        atlases.open_atlas(session=session, viewer=carol, atlas_id=atlas_id)
    owned.restore(session=session, viewer=alice, kind=RecordKind.ATLAS, record_id=atlas_id)
    assert atlases.open_atlas(session=session, viewer=carol, atlas_id=atlas_id).id == atlas_id


def test_atlas_rows_and_csv(session: Session, make_user: UserFactory) -> None:
    """A head's top rows come back with their text, highest first; the CSV has a line per head."""
    alice = make_user("alice")
    atlas_id = _atlas(session, alice, _upload(session, alice))
    top = atlases.top_rows(session=session, viewer=alice, atlas_id=atlas_id, stat="entropy", layer=1, head=2)
    assert [(t.position, t.text) for t in top] == [(2, "three"), (1, "two"), (0, "one")]
    assert top[0].value == pytest.approx(0.3)
    with pytest.raises(ValueError, match="Unknown score"):
        atlases.top_rows(session=session, viewer=alice, atlas_id=atlas_id, stat="vibes", layer=0, head=0)
    with pytest.raises(ValueError, match="layer below 2"):
        atlases.top_rows(session=session, viewer=alice, atlas_id=atlas_id, stat="entropy", layer=2, head=0)
    lines = atlases.export_csv(session=session, viewer=alice, atlas_id=atlas_id).decode().splitlines()
    assert lines[0].startswith("layer,head,previous_token,induction") and len(lines) == 1 + 2 * 3


def test_batch_records_describe_themselves(
    session: Session, make_user: UserFactory, registry, settings
) -> None:
    """Each new table's rows have a repr naming the model."""
    alice = make_user("alice")
    dataset = _upload(session, alice)
    job = job_store.launch_atlas_job(
        session=session,
        viewer=alice,
        dataset_id=dataset.id,
        model_id=MODEL,
        registry=registry,
        settings=settings,
    )
    atlas = atlas_db.get_atlas(session=session, atlas_id=_atlas(session, alice, dataset), readable=true())
    row = saved_datasets.preview_rows(session=session, viewer=alice, dataset_id=dataset.id)[0]
    event = jobs_db.events(session=session, job_id=job.id)[0]
    stat = dataset_db.save_tokenization(
        session=session, dataset_id=dataset.id, model_id=MODEL, model_revision="0", stats={}
    )
    jobs_db.record_row(
        session=session, job_id=job.id, row_id=row.id, worker="w", status=RowStatus.DONE, attempts=1
    )
    job_row = session.scalars(select(JobRow)).first()
    for record in (dataset, row, stat, event, job_row, atlas):
        assert type(record).__name__ + "(" in repr(record)


def test_purge_removes_old_atlases_then_their_datasets(session: Session, make_user: UserFactory) -> None:
    """A trashed dataset stays while an atlas uses it; once the atlas is purged, it goes too."""
    alice = make_user("alice")
    dataset = _upload(session, alice)
    atlas_id, dataset_id = _atlas(session, alice, dataset), dataset.id
    owned.delete(session=session, viewer=alice, kind=RecordKind.DATASET, record_id=dataset_id)
    long_ago = utcnow() - timedelta(days=40)
    dataset.deleted_at = long_ago
    session.flush()
    removed = purge_command.purge(session=session, days=30)
    assert (removed["atlases"], removed["datasets"]) == (0, 0)  # the live atlas still points at it
    owned.delete(session=session, viewer=alice, kind=RecordKind.ATLAS, record_id=atlas_id)
    session.get(Atlas, atlas_id).deleted_at = long_ago
    session.flush()
    removed = purge_command.purge(session=session, days=30)
    assert (removed["atlases"], removed["datasets"]) == (1, 1)
    session.expire_all()
    assert session.get(Atlas, atlas_id) is None and session.get(Dataset, dataset_id) is None
    assert session.scalars(select(DatasetRow).where(DatasetRow.dataset_id == dataset_id)).all() == []
