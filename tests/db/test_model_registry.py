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

from core import model_admin
from core.analysis import AnalysisRequest
from core.config import Settings
from core.errors import ModelDisabledError
from core.live_registry import MODEL_SEED, MODEL_SEED_UPDATE, LiveRegistry
from core.model_admin import ModelAdminError, NewModel
from core.model_import import ModelCheckError
from core.permissions import Viewer
from core.service import AnalysisService
from db.models import AuditEvent, RegisteredModel, Role
from tests.core.tiny import save_tiny
from tests.db.conftest import UserFactory

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
    row = model_admin.add_local(
        session=session,
        viewer=admin,
        service=live_service,
        directory=str(tiny_dir),
        new=NewModel(family=SMOL, version="Local-Copy"),
    )
    assert (row.model_id, row.family, row.origin.value) == (COPY, SMOL, "admin")
    assert row.label == "SmolLM2-135M-Instruct (local-copy)" and row.licence == "Apache-2.0"
    assert row.max_input_tokens == 2048 and row.kind == "causal" and row.revision.startswith("sha256-")
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
    )
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
    )
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
    )
    path = Path(row.source["path"])
    assert row.model_id == "tiny@v1" and path.is_relative_to(uploads) and (path / "config.json").is_file()
    session.flush()
    listed = model_admin.model_rows(session=session, viewer=admin, service=live_service, uploads_dir=uploads)
    assert {r.model_id: r.state for r in listed}["tiny@v1"] == "uploaded"


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
    listed = {r.model_id: r for r in model_admin.model_rows(uploads_dir=tmp_path, **common)}
    assert listed["tiny"].loaded and listed["tiny"].device == "cpu" and listed["tiny"].memory_mb
    assert model_admin.unload(model_id="tiny", **common) and not model_admin.unload(model_id="tiny", **common)
    (doomed / "model.safetensors").unlink()
    outcome = model_admin.load(model_id="doomed", **common)
    assert not outcome.ok
    [failure] = model_admin.recent_failures(viewer=admin, service=live_service)
    assert failure.model_id == "doomed" and failure.reason
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
        lambda: model_admin.set_enabled(model_id="gpt2", enabled=False, **common),
        lambda: model_admin.set_default(model_id="gpt2", **common),
        lambda: model_admin.load(model_id=SMOL, **common),
        lambda: model_admin.unload(model_id=SMOL, **common),
        lambda: model_admin.recent_failures(viewer=viewer, service=live_service),
    ):
        with pytest.raises(ModelAdminError, match="Only admins can manage models"):
            action()
    assert rows(session)["gpt2"].enabled and not rows(session)["gpt2"].is_default


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
