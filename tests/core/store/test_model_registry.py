"""The live model registry on SQLite and Postgres: seeding, versions, switches, adding, audit.

The registry is read through a `LiveRegistry` bound to the test's connection, so it sees the
test's uncommitted rows and everything is rolled back afterwards.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.domain.analysis import AnalysisRequest
from core.domain.errors import ModelDisabledError
from core.domain.identity import Role, Viewer
from core.domain.settings import Settings
from core.models.import_checks import ModelCheckError
from core.service.analysis_service import AnalysisService
from core.store import model_admin
from core.store.model_admin import ModelAdminError, NewModel
from core.store.model_registry import MODEL_SEED, MODEL_SEED_UPDATE, LiveRegistry
from db.models import AuditEvent, ModelOrigin, RegisteredModel
from tests.fixtures.databases import UserFactory
from tests.fixtures.tiny import save_tiny

SMOL = "smollm2-135m-instruct"
COPY = f"{SMOL}@local-copy"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def live_registry(session: Session, seed_path: Path) -> LiveRegistry:
    factory = sessionmaker(
        bind=session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    return LiveRegistry(lambda: factory, seed_path, refresh_seconds=3600)


@pytest.fixture
def live(session: Session, settings: Settings) -> LiveRegistry:
    return live_registry(session, settings.registry_path)


@pytest.fixture
def live_service(settings: Settings, live: LiveRegistry) -> AnalysisService:
    return AnalysisService(settings, live)


@pytest.fixture
def admin(make_user: UserFactory) -> Viewer:
    return make_user("root", Role.ADMIN)


def rows(session: Session) -> dict[str, RegisteredModel]:
    session.expire_all()
    return {row.model_id: row for row in session.scalars(select(RegisteredModel))}


def events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_seeding_fills_an_empty_registry_once(
    session: Session, live: LiveRegistry, settings: Settings
) -> None:
    registry = live.current()
    assert registry.ids()[:3] == [SMOL, "all-minilm-l6-v2", "gemma-3-270m"]
    assert registry.default_id == SMOL
    stored = rows(session)
    assert set(stored) == set(registry.ids()) and sum(r.is_default for r in stored.values()) == 1
    assert len(events(session, MODEL_SEED)) == len(stored)
    live_registry(session, settings.registry_path).current()  # another process starts
    assert len(rows(session)) == len(stored) and len(events(session, MODEL_SEED)) == len(stored)


def test_seeding_keeps_admin_switches_and_follows_the_file(
    session: Session, live: LiveRegistry, live_service: AnalysisService, admin: Viewer, tmp_path: Path
) -> None:
    live.current()
    model_admin.set_enabled(
        session=session, viewer=admin, service=live_service, model_id="gpt2", enabled=False
    )
    model_admin.set_default(session=session, viewer=admin, service=live_service, model_id="all-minilm-l6-v2")
    session.flush()
    # models.yaml changes SmolLM2's revision and drops gpt2 from the file.
    changed = (
        Path(live_service.settings.registry_path).read_text().replace("gguf-q4_1-0.1.2", "gguf-q4_1-0.2.0")
    )
    changed = changed.replace("id: gpt2\n", "id: gpt2-renamed\n")
    seed_path = tmp_path / "models.yaml"
    seed_path.write_text(changed)
    registry = live_registry(session, seed_path).current()
    stored = rows(session)
    assert stored[SMOL].revision == "gguf-q4_1-0.2.0" and stored[SMOL].enabled
    assert not stored["gpt2"].enabled and "gpt2" in registry.ids()  # kept: saved analyses name it
    assert "gpt2-renamed" in stored
    assert stored["all-minilm-l6-v2"].is_default and not stored[SMOL].is_default
    assert [e.detail["fields"] for e in events(session, MODEL_SEED_UPDATE)] == [["revision"]]


def test_add_a_local_copy_as_a_version(
    session: Session, live: LiveRegistry, live_service: AnalysisService, admin: Viewer, tiny_dir: Path
) -> None:
    """A second version of a family lives next to the first; the original id is untouched."""
    live.current()
    added = model_admin.add_local(
        session=session,
        viewer=admin,
        service=live_service,
        directory=str(tiny_dir),
        new=NewModel(family=SMOL, version="Local-Copy"),
    )
    row = added.row
    assert added.warnings == ()
    assert (row.model_id, row.family, row.origin.value) == (COPY, SMOL, "admin")
    assert row.label == "SmolLM2-135M-Instruct (local-copy)" and row.licence == "Apache-2.0"
    # The family allows 2,048 tokens, but this copy's config has 128 positions: the smaller wins.
    assert row.max_input_tokens == 128 and row.kind == "causal" and row.revision.startswith("sha256-")
    assert row.source == {"type": "local", "path": str(tiny_dir)} and row.added_by_id == admin.user_id
    session.flush()
    registry = live_service.registry
    assert {SMOL, COPY} <= set(registry.ids())
    assert registry.get(COPY).family == registry.get(SMOL).family == SMOL
    assert COPY in [spec.id for spec, _ in live_service.model_choices()]
    [event] = events(session, model_admin.MODEL_ADD)
    assert (event.actor_id, event.target_id, event.detail["model"]) == (admin.user_id, row.id, COPY)
    listed = model_admin.model_rows(
        session=session, viewer=admin, service=live_service, uploads_dir=Path("/x")
    ).rows
    by_id = {r.model_id: r for r in listed}
    assert by_id[COPY].state == "local directory" and by_id[COPY].version == "local-copy"
    assert by_id[SMOL].state == "bundled" and by_id["bert-base-uncased"].state == "unavailable"
    assert [r.model_id for r in listed][:2] == [SMOL, COPY]  # versions of one family together

    for new, message in [
        (NewModel(family=SMOL), "already registered; name this copy's version"),
        (NewModel(family=SMOL, version="local-copy"), f"'{COPY}' is already registered"),
        (NewModel(family="Bad Id!"), "cannot name a model"),
        (NewModel(family=SMOL, version="no/slash"), "cannot name a version"),
        (NewModel(family="brand-new"), "licence"),
    ]:
        with pytest.raises(ModelAdminError, match=message):
            model_admin.add_local(
                session=session, viewer=admin, service=live_service, directory=str(tiny_dir), new=new
            )
    brand_new = model_admin.add_local(
        session=session,
        viewer=admin,
        service=live_service,
        directory=str(tiny_dir),
        new=NewModel(family="brand-new", licence="MIT", max_input_tokens=64),
    ).row
    assert (brand_new.model_id, brand_new.label, brand_new.max_input_tokens) == ("brand-new", "brand-new", 64)


def test_invalid_models_are_refused_and_nothing_is_added(
    session: Session, live: LiveRegistry, live_service: AnalysisService, admin: Viewer, tmp_path: Path
) -> None:
    live.current()
    before = len(rows(session))
    remote = save_tiny(tmp_path / "remote")
    config = (remote / "config.json").read_text().replace("{", '{"auto_map": {"AutoModel": "x.Y"},', 1)
    (remote / "config.json").write_text(config)
    new = NewModel(family="candidate", licence="MIT")
    common = {"session": session, "viewer": admin, "service": live_service, "new": new}
    with pytest.raises(ModelCheckError, match="needs its own Python code"):
        model_admin.add_local(directory=str(remote), **common)
    with pytest.raises(ModelCheckError, match="not a directory"):
        model_admin.add_local(directory=str(tmp_path / "absent"), **common)
    with pytest.raises(ModelCheckError, match="not a Hugging Face model id"):
        model_admin.add_hub(repo="not an id", revision="0" * 40, **common)
    with pytest.raises(ModelCheckError, match="full commit sha"):
        model_admin.add_hub(repo="openai-community/gpt2", revision="main", **common)
    with pytest.raises(ModelCheckError, match="not in this server's Hugging Face cache"):
        model_admin.add_hub(repo="openai-community/gpt2", revision="0" * 40, **common)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("m/config.json", "{}")
        archive.writestr("m/pytorch_model.bin", b"pickle")
    buffer.seek(0)
    uploads = tmp_path / "uploads"
    with pytest.raises(ModelCheckError, match="Pickle-based weight files are refused"):
        model_admin.add_upload(data=buffer, filename="m.zip", uploads_dir=uploads, max_bytes=2**20, **common)
    assert list(uploads.iterdir()) == []
    assert len(rows(session)) == before and not events(session, model_admin.MODEL_ADD)


def test_upload_is_unpacked_under_the_uploads_directory(
    session: Session,
    live: LiveRegistry,
    live_service: AnalysisService,
    admin: Viewer,
    tiny_dir: Path,
    tmp_path: Path,
) -> None:
    live.current()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in tiny_dir.iterdir():
            archive.writestr(f"tiny/{path.name}", path.read_bytes())
    buffer.seek(0)
    uploads = tmp_path / "uploads"
    row = model_admin.add_upload(
        session=session,
        viewer=admin,
        service=live_service,
        data=buffer,
        filename="tiny.zip",
        new=NewModel(family="tiny", version="v1", licence="MIT"),
        uploads_dir=uploads,
        max_bytes=2**30,
    ).row
    path = Path(row.source["path"])
    assert row.model_id == "tiny@v1" and path.is_relative_to(uploads) and not path.exists()
    # Until the commit the files sit in a staging directory no registry row names.
    [staging] = list(uploads.iterdir())
    assert (
        staging.name.startswith(model_admin.PARTIAL_PREFIX) and (staging / "tiny" / "config.json").is_file()
    )
    session.commit()
    assert (path / "config.json").is_file() and not staging.exists()
    listed = model_admin.model_rows(session=session, viewer=admin, service=live_service, uploads_dir=uploads)
    assert {r.model_id: r.state for r in listed.rows}["tiny@v1"] == "uploaded"


def test_disable_removes_from_pickers_but_not_from_the_registry(
    session: Session, live: LiveRegistry, live_service: AnalysisService, admin: Viewer
) -> None:
    live.current()
    common = {"session": session, "viewer": admin, "service": live_service}
    model_admin.set_enabled(model_id="all-minilm-l6-v2", enabled=False, **common)
    session.flush()
    choices = [spec.id for spec, _ in live_service.model_choices()]
    assert "all-minilm-l6-v2" not in choices and choices[0] == SMOL  # the default comes first
    assert live_service.registry.get("all-minilm-l6-v2").label  # saved analyses still resolve it
    with pytest.raises(ModelDisabledError, match="turned off by an admin"):
        live_service.run(AnalysisRequest(model_id="all-minilm-l6-v2", text="hello"))
    assert [e.detail["model"] for e in events(session, model_admin.MODEL_DISABLE)] == ["all-minilm-l6-v2"]

    with pytest.raises(ModelAdminError, match="is the default model; make another model the default"):
        model_admin.set_enabled(model_id=SMOL, enabled=False, **common)
    with pytest.raises(ModelAdminError, match="turn it on before making it the default"):
        model_admin.set_default(model_id="all-minilm-l6-v2", **common)
    model_admin.set_default(model_id="gemma-3-270m", **common)
    model_admin.set_enabled(model_id=SMOL, enabled=False, **common)
    model_admin.set_enabled(model_id="all-minilm-l6-v2", enabled=True, **common)
    session.flush()
    stored = rows(session)
    assert [i for i, r in stored.items() if r.is_default] == ["gemma-3-270m"]
    choices = [spec.id for spec, _ in live_service.model_choices()]
    assert choices[0] == "gemma-3-270m" and SMOL not in choices and "all-minilm-l6-v2" in choices
    [moved] = [e for e in events(session, model_admin.MODEL_DEFAULT) if e.actor_id == admin.user_id]
    assert moved.detail == {"model": "gemma-3-270m", "previous": SMOL}


def test_the_database_keeps_one_default(session: Session, live: LiveRegistry) -> None:
    live.current()
    stored = rows(session)
    with pytest.raises(IntegrityError), session.begin_nested():
        stored["gpt2"].is_default = True
        session.flush()
    with pytest.raises(IntegrityError), session.begin_nested():
        stored[SMOL].enabled = False  # the default must stay enabled
        session.flush()
    assert session.scalar(select(func.count()).where(RegisteredModel.is_default)) == 1


def test_load_unload_and_failures(
    session: Session,
    live: LiveRegistry,
    live_service: AnalysisService,
    admin: Viewer,
    tiny_dir: Path,
    tmp_path: Path,
) -> None:
    live.current()
    common = {"session": session, "viewer": admin, "service": live_service}
    model_admin.add_local(directory=str(tiny_dir), new=NewModel(family="tiny", licence="MIT"), **common)
    doomed = save_tiny(tmp_path / "doomed")
    model_admin.add_local(directory=str(doomed), new=NewModel(family="doomed", licence="MIT"), **common)
    session.flush()
    outcome = model_admin.load(model_id="tiny", **common)
    assert outcome.ok and "loaded on cpu" in outcome.message
    listed = {r.model_id: r for r in model_admin.model_rows(uploads_dir=tmp_path, **common).rows}
    assert listed["tiny"].loaded and listed["tiny"].device == "cpu" and listed["tiny"].memory_mb
    assert model_admin.unload(model_id="tiny", **common) and not model_admin.unload(model_id="tiny", **common)
    (doomed / "model.safetensors").unlink()
    outcome = model_admin.load(model_id="doomed", **common)
    assert not outcome.ok
    [failure] = model_admin.recent_failures(session=session, viewer=admin)
    assert failure.model_id == "doomed" and failure.reason and failure.process == model_admin.process_name()
    assert [e.detail["model"] for e in events(session, model_admin.MODEL_LOAD)] == ["tiny"]
    assert [e.detail["model"] for e in events(session, model_admin.MODEL_UNLOAD)] == ["tiny"]
    assert [e.detail["model"] for e in events(session, model_admin.MODEL_LOAD_FAILURE)] == ["doomed"]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_only_admins_manage_models(
    session: Session,
    live: LiveRegistry,
    live_service: AnalysisService,
    make_user: UserFactory,
    tiny_dir: Path,
    role: Role,
) -> None:
    live.current()
    viewer = make_user("someone", role)
    common = {"session": session, "viewer": viewer, "service": live_service}
    for action in (
        lambda: model_admin.model_rows(uploads_dir=Path("/x"), **common),
        lambda: model_admin.add_local(
            directory=str(tiny_dir), new=NewModel(family="x", licence="MIT"), **common
        ),
        lambda: model_admin.add_hub(
            repo="openai-community/gpt2", revision="0" * 40, new=NewModel(family="x", licence="MIT"), **common
        ),
        lambda: model_admin.add_upload(
            data=io.BytesIO(b"not read"),
            filename="m.zip",
            uploads_dir=tiny_dir.parent / "uploads",
            max_bytes=2**20,
            new=NewModel(family="x", licence="MIT"),
            **common,
        ),
        lambda: model_admin.set_enabled(model_id="gpt2", enabled=False, **common),
        lambda: model_admin.set_default(model_id="gpt2", **common),
        lambda: model_admin.load(model_id=SMOL, **common),
        lambda: model_admin.unload(model_id=SMOL, **common),
        lambda: model_admin.recent_failures(session=session, viewer=viewer),
    ):
        with pytest.raises(ModelAdminError, match="Only admins can manage models"):
            action()
    assert rows(session)["gpt2"].enabled and not rows(session)["gpt2"].is_default
    assert not (tiny_dir.parent / "uploads").exists()  # refused before anything was unpacked


def test_snapshot_is_cached_until_stale_or_invalidated(session: Session, settings: Settings) -> None:
    """Pickers read the registry on every rerun: no query until the refresh period passes or a
    change in this process invalidates the snapshot."""
    now = [0.0]
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    live = LiveRegistry(lambda: factory, settings.registry_path, refresh_seconds=5, clock=lambda: now[0])
    first = live.current()
    assert live.current() is first and first.is_enabled("gpt2")
    session.execute(update(RegisteredModel).where(RegisteredModel.model_id == "gpt2").values(enabled=False))
    session.flush()
    now[0] = 4.0
    assert live.current() is first  # another process's change: not yet
    now[0] = 6.0
    second = live.current()
    assert second is not first and not second.is_enabled("gpt2")
    live.invalidate()
    assert live.current() is not second


def test_unreadable_database_serves_models_yaml(settings: Settings) -> None:
    def unreachable() -> sessionmaker[Session]:
        raise OperationalError("connect", {}, Exception("connection refused"))

    live = LiveRegistry(unreachable, settings.registry_path)
    registry = live.current()
    assert SMOL in registry.ids() and registry.default_id == SMOL
    assert live.last_error and "models.yaml only" in live.last_error


def test_broken_models_yaml_keeps_the_database_registry(
    session: Session, live: LiveRegistry, tmp_path: Path
) -> None:
    live.current()
    broken = tmp_path / "models.yaml"
    broken.write_text("models: [")
    other_process = live_registry(session, broken)
    registry = other_process.current()
    assert SMOL in registry.ids() and other_process.last_error
    assert "models.yaml was not applied" in other_process.last_error


def _zip_of_dir(directory: Path, prefix: str = "tiny/") -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in directory.iterdir():
            archive.writestr(f"{prefix}{path.name}", path.read_bytes())
    buffer.seek(0)
    return buffer


def test_slow_checks_run_before_the_registry_lock(
    session: Session,
    live: LiveRegistry,
    live_service: AnalysisService,
    admin: Viewer,
    tiny_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unpacking, inspecting and hashing take minutes for big weights: none of it may run while
    the registry lock (SQLite's write lock) is held."""
    live.current()
    locked: list[bool] = []
    real_lock = model_admin.registry_db.lock_registry

    def lock(*, session: Session) -> None:
        locked.append(True)
        real_lock(session=session)

    def unlocked(fn):
        def wrapper(*args, **kwargs):
            assert not locked, f"{fn.__name__} ran under the registry lock"
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(model_admin.registry_db, "lock_registry", lock)
    for name in ("extract_archive", "inspect_directory", "content_revision"):
        monkeypatch.setattr(model_admin, name, unlocked(getattr(model_admin, name)))
    common = {"session": session, "viewer": admin, "service": live_service}
    model_admin.add_local(directory=str(tiny_dir), new=NewModel(family="tiny", licence="MIT"), **common)
    assert locked == [True]
    locked.clear()
    model_admin.add_upload(
        data=_zip_of_dir(tiny_dir),
        filename="tiny.zip",
        uploads_dir=tmp_path / "uploads",
        max_bytes=2**30,
        new=NewModel(family="tiny", version="up", licence="MIT"),
        **common,
    )
    assert locked == [True]


def test_form_is_checked_before_any_file_is_read(
    session: Session,
    live: LiveRegistry,
    live_service: AnalysisService,
    admin: Viewer,
    tiny_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Labels and licences longer than the table keeps, and a missing licence, are refused
    first (not by Postgres as a DataError shown as an outage, nor after minutes of hashing)."""
    live.current()

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model's files were read before the form was checked")

    monkeypatch.setattr(model_admin, "inspect_directory", never)
    common = {"session": session, "viewer": admin, "service": live_service, "directory": str(tiny_dir)}
    for new, message in [
        (
            NewModel(family="long", label="x" * 201, licence="MIT"),
            "label is 201 characters long; at most 200",
        ),
        (NewModel(family="long", licence="y" * 201), "licence is 201 characters long; at most 200"),
        (NewModel(family="nolicence"), "Name the model's licence"),
    ]:
        with pytest.raises(ModelAdminError, match=message):
            model_admin.add_local(new=new, **common)


def test_an_id_taken_while_checking_is_refused_and_the_upload_removed(
    session: Session,
    live: LiveRegistry,
    live_service: AnalysisService,
    admin: Viewer,
    tiny_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another admin adds the same id while this upload is being hashed: the re-check under
    the lock refuses it and the unpacked files go."""
    live.current()
    common = {"session": session, "viewer": admin, "service": live_service}
    real_revision = model_admin.content_revision

    def meanwhile(check):
        # The other admin's add, committed while this one hashes its weights.
        model_admin.registry_db.add_model(
            session=session,
            spec_fields={**live_service.registry.get("gpt2").model_dump(mode="json"), "id": "race"},
            family="race",
            origin=ModelOrigin.ADMIN,
            position=99,
            added_by_id=admin.user_id,
        )
        return real_revision(check)

    monkeypatch.setattr(model_admin, "content_revision", meanwhile)
    uploads = tmp_path / "uploads"
    with pytest.raises(ModelAdminError, match="'race' is already registered"):
        model_admin.add_upload(
            data=_zip_of_dir(tiny_dir),
            filename="t.zip",
            uploads_dir=uploads,
            max_bytes=2**30,
            new=NewModel(family="race", licence="MIT"),
            **common,
        )
    assert list(uploads.iterdir()) == []


def test_upload_files_follow_the_transaction(
    session: Session,
    live: LiveRegistry,
    live_service: AnalysisService,
    admin: Viewer,
    tiny_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed insert, or a rollback of the add, removes the unpacked files; a rollback of
    some later savepoint does not (the row still commits, and its files move into place)."""
    live.current()
    uploads = tmp_path / "uploads"
    common = {"session": session, "viewer": admin, "service": live_service, "uploads_dir": uploads}

    def upload(version: str) -> model_admin.Added:
        return model_admin.add_upload(
            data=_zip_of_dir(tiny_dir),
            filename="t.zip",
            max_bytes=2**30,
            new=NewModel(family="tiny", version=version, licence="MIT"),
            **common,
        )

    def refused(**_kwargs: object) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with monkeypatch.context() as patch:
        patch.setattr(model_admin.registry_db, "add_model", refused)
        with pytest.raises(OperationalError):
            upload("failed-insert")
    assert list(uploads.iterdir()) == []

    with pytest.raises(RuntimeError, match="page failed"), session.begin_nested():
        upload("rolled-back")
        assert len(list(uploads.iterdir())) == 1
        raise RuntimeError("page failed after the add")
    assert list(uploads.iterdir()) == []

    kept = upload("kept").row
    with pytest.raises(IntegrityError), session.begin_nested():
        rows(session)["gpt2"].is_default = True  # an unrelated savepoint that rolls back
        session.flush()
    [staging] = list(uploads.iterdir())
    assert staging.name.startswith(model_admin.PARTIAL_PREFIX)
    session.commit()
    assert (Path(kept.source["path"]) / "config.json").is_file() and not staging.exists()


def test_stale_staging_directories_are_swept(tmp_path: Path) -> None:
    import os
    import time

    old = tmp_path / f"{model_admin.PARTIAL_PREFIX}old"
    fresh = tmp_path / f"{model_admin.PARTIAL_PREFIX}fresh"
    model = tmp_path / "tiny--v1-12345678"
    for directory in (old, fresh, model):
        (directory / "m").mkdir(parents=True)
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    assert model_admin.sweep_partial_uploads(tmp_path) == [old]
    assert fresh.is_dir() and model.is_dir() and not old.exists()
    assert model_admin.sweep_partial_uploads(tmp_path / "absent") == []


def test_a_bad_row_is_skipped_with_a_reason(
    session: Session, live: LiveRegistry, live_service: AnalysisService, admin: Viewer
) -> None:
    live.current()
    session.execute(
        update(RegisteredModel)
        .where(RegisteredModel.model_id == "gpt2")
        .values(source={"type": "ftp", "path": "/x"})
    )
    listing = model_admin.model_rows(
        session=session, viewer=admin, service=live_service, uploads_dir=Path("/x")
    )
    assert "gpt2" not in [r.model_id for r in listing.rows] and SMOL in [r.model_id for r in listing.rows]
    [(model_id, reason)] = listing.skipped
    assert model_id == "gpt2" and "type" in reason


def test_a_version_of_another_kind_is_added_with_a_warning(
    session: Session, live: LiveRegistry, live_service: AnalysisService, admin: Viewer, tiny_dir: Path
) -> None:
    live.current()
    added = model_admin.add_local(
        session=session,
        viewer=admin,
        service=live_service,
        directory=str(tiny_dir),
        new=NewModel(family="all-minilm-l6-v2", version="odd"),
    )
    assert added.row.kind == "encoder" and added.row.max_input_tokens == 128
    [warning] = added.warnings
    assert "suggests a causal model" in warning and "registered as encoder" in warning
    with pytest.raises(ModelAdminError, match=r"more than this model's config\.json allows"):
        model_admin.add_local(
            session=session,
            viewer=admin,
            service=live_service,
            directory=str(tiny_dir),
            new=NewModel(family="all-minilm-l6-v2", version="long", max_input_tokens=4096),
        )


def test_turned_off_models_are_not_loaded(
    session: Session, live: LiveRegistry, live_service: AnalysisService, admin: Viewer
) -> None:
    live.current()
    common = {"session": session, "viewer": admin, "service": live_service}
    model_admin.set_enabled(model_id="gpt2", enabled=False, **common)
    session.flush()
    with pytest.raises(ModelAdminError, match="turned off; turn it on before loading it"):
        model_admin.load(model_id="gpt2", **common)


def test_failed_loads_of_any_process_reach_the_audit_log(
    session: Session,
    live: LiveRegistry,
    live_service: AnalysisService,
    admin: Viewer,
    tmp_path: Path,
) -> None:
    """The pool's recorder writes each failure once, in its own transaction, naming the process
    (and the admin when the Load button caused it); the Models screen lists them all."""
    live.current()
    common = {"session": session, "viewer": admin, "service": live_service}
    doomed = save_tiny(tmp_path / "doomed")
    model_admin.add_local(directory=str(doomed), new=NewModel(family="doomed", licence="MIT"), **common)
    session.flush()
    (doomed / "model.safetensors").unlink()
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    live_service.pool.on_failure = model_admin.LoadFailureRecorder(lambda: factory, process="replica-2:7")
    assert not model_admin.load(model_id="doomed", **common).ok
    # A batch worker's load (no admin behind it) fails too.
    with pytest.raises(Exception, match="doomed"):
        live_service.pool.get(live_service.registry.get("doomed"))
    failures = model_admin.recent_failures(session=session, viewer=admin)
    assert [(f.model_id, f.process) for f in failures] == [("doomed", "replica-2:7")] * 2
    assert sorted(e.actor_id or 0 for e in events(session, model_admin.MODEL_LOAD_FAILURE)) == [
        0,
        admin.user_id,
    ]
