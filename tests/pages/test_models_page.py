"""Models screen under AppTest: an admin adds a local copy of a bundled model as a new version,
loads it, runs it on Generate and finds it in the analytics; turning it off takes it out of
the pickers; viewers never reach the screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from core.domain.identity import Role
from core.domain.settings import Settings
from core.models.huggingface.loading import resolve_weights_dir
from core.models.registry import Registry
from core.store import transaction
from db.models import AnalysisRequestLog, AuditEvent, RegisteredModel
from tests.pages.accounts import add_account, signed_in
from ui import models_view
from ui.resources import get_service

APP = Path(__file__).resolve().parents[2] / "app.py"
TIMEOUT = 240
SMOL = "smollm2-135m-instruct"
COPY = f"{SMOL}@local-copy"


@pytest.fixture(scope="session")
def smollm2_copy(tmp_path_factory: pytest.TempPathFactory, registry: Registry, settings: Settings) -> Path:
    """A local copy of bundled SmolLM2 as `save_pretrained` wrote it (links to the converted files)."""
    source = resolve_weights_dir(registry.get(SMOL), settings.model_cache_dir)
    target = tmp_path_factory.mktemp("copies") / "smollm2-copy"
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).symlink_to(path)
    return target


def plain(message: str) -> str:
    """A flashed message without the backslashes that keep Markdown from interpreting it."""
    return message.replace("\\", "")


def models_screen(username: str) -> AppTest:
    at = signed_in(AppTest.from_file(str(APP), default_timeout=TIMEOUT), username)
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    return at


def table_ids(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["model id"])


@pytest.mark.model
def test_admin_adds_loads_runs_and_turns_off_a_version(database: str, smollm2_copy: Path) -> None:
    add_account("root", Role.ADMIN)
    at = models_screen("root")
    assert {SMOL, "all-minilm-l6-v2", "gpt2"} <= set(table_ids(at))

    at.selectbox(key="models.add.family").set_value(SMOL)
    at.text_input(key="models.add.version").input("local-copy")
    at.text_input(key="models.add.directory").input(str(smollm2_copy))
    at.button(key="models.add.submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert f"Added {COPY}" in plain(at.success[0].value)
    ids = table_ids(at)
    assert ids.index(COPY) == ids.index(SMOL) + 1  # side by side with the original

    at.selectbox(key="models.chosen").set_value(COPY).run()
    at.button(key="models.load").click().run()
    assert "loaded on" in plain(at.success[0].value), [e.value for e in at.error]
    table = at.dataframe[0].value.set_index("model id")
    assert table.loc[COPY, models_view.LOADED] and table.loc[COPY, models_view.DEVICE]
    assert table.loc[COPY, models_view.MEMORY] > 0

    at.switch_page("pages/generate.py").run()
    assert COPY in at.selectbox(key="generate.model").options or any(
        "local-copy" in option for option in at.selectbox(key="generate.model").options
    )
    at.selectbox(key="generate.model").set_value(COPY).run()
    at.radio(key="generate.mode").set_value(at.radio(key="generate.mode").options[0]).run()
    at.text_area(key="generate.text").set_value("The capital of France is")
    at.button(key="generate.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert {"Tokens", "Forward"} <= {m.label for m in at.metric}

    # Its analytics: the request log (written off the request path) names the new version;
    # the service's flush waits for the log's writer, so there is nothing to poll.
    get_service().flush()
    with transaction.unit_of_work() as session:
        logged = list(session.scalars(select(AnalysisRequestLog.model_id)))
    assert COPY in logged
    at.switch_page("pages/metrics.py").run()
    assert not at.exception
    assert any(COPY in frame.value.to_csv() for frame in at.dataframe)

    at.switch_page("pages/models.py").run()
    at.selectbox(key="models.chosen").set_value(COPY).run()
    at.button(key="models.toggle").click().run()
    assert "turned off" in plain(at.success[0].value)
    at.switch_page("pages/generate.py").run()
    assert not any("local-copy" in option for option in at.selectbox(key="generate.model").options)
    with transaction.unit_of_work() as session:
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("model.%"))))
    assert {"model.add", "model.load", "model.disable"} <= actions


def test_bad_directory_is_refused_with_a_reason(database: str, tmp_path: Path) -> None:
    add_account("root", Role.ADMIN)
    at = models_screen("root")
    at.text_input(key="models.add.new_id").input("empty-model")
    at.text_input(key="models.add.licence").input("MIT")
    at.text_input(key="models.add.directory").input(str(tmp_path))
    at.button(key="models.add.submit").click().run()
    assert "No config.json" in plain(at.error[0].value)
    assert "empty-model" not in table_ids(at)


def test_a_bad_registry_row_is_a_warning_not_a_broken_page(database: str) -> None:
    add_account("root", Role.ADMIN)
    at = models_screen("root")
    with transaction.unit_of_work() as session:
        session.execute(
            update(RegisteredModel).where(RegisteredModel.model_id == "gpt2").values(source={"type": "ftp"})
        )
    at.run()
    assert not at.exception and "gpt2" not in table_ids(at)
    assert any("gpt2" in plain(w.value) and "not a valid model" in w.value for w in at.warning)
    assert "this process" in " ".join(at.dataframe[0].value.columns)


def test_viewers_never_reach_the_models_screen(database: str) -> None:
    add_account("vera", Role.VIEWER)
    viewer = signed_in(AppTest.from_file(str(APP), default_timeout=TIMEOUT), "vera")
    viewer.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        viewer.switch_page("pages/models.py")
    page = AppTest.from_file(str(APP.parent / "pages" / "models.py"), default_timeout=60)
    page.run()
    assert "Only admins" in page.error[0].value and not page.dataframe
