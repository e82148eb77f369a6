"""AppTest: the Metrics screen's per-model analytics on a seeded request log (drift flag,
per-user breakdown for admins), and Generate started from a preset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.domain.analysis import GenerationParams
from core.domain.identity import Role
from core.ops import drift
from core.store import presets, transaction
from core.store.presets import GenerateSettings, GenerateView
from db import request_log as request_log_db
from db.models import AuditEvent, PresetScreen
from tests.pages.accounts import add_account, signed_in

APP = Path(__file__).resolve().parents[2] / "app.py"


def _seed_log(user_id: int) -> None:
    """Seven days of short English-like inputs, then a last day of long inputs of other tokens."""
    now = datetime.now(UTC)
    rows = []
    for i in range(60):
        rows.append(
            {
                "at": now - timedelta(days=1, hours=2 + i),
                "model_id": "smollm2-135m-instruct",
                "mode": "generate",
                "latency_s": 0.5 + i / 100,
                "cache_hit": i % 3 == 0,
                "tokens": 20,
                "input_chars": 60,
                "user_id": user_id,
                "token_profile": drift.token_profile([1, 2, 3, 4, 5] * 4),
            }
        )
        rows.append(
            {
                "at": now - timedelta(minutes=5 + i),
                "model_id": "smollm2-135m-instruct",
                "mode": "generate",
                "latency_s": 2.0,
                "tokens": 300,
                "input_chars": 3000,
                "user_id": None,
                "token_profile": drift.token_profile(list(range(9000, 9300))),
                **({"error_kind": "model_load", "error_message": "boom"} if i % 10 == 0 else {}),
            }
        )
    with transaction.unit_of_work() as session:
        request_log_db.insert_requests(session=session, rows=rows)


def test_models_tab_shows_analytics_drift_flag_and_users_for_admins(database: str) -> None:
    admin = add_account("root", Role.ADMIN)
    _seed_log(admin.user_id or 0)
    at = signed_in(AppTest.from_file(str(APP), default_timeout=120), "root")
    at.run()
    at.switch_page("pages/metrics.py").run()
    at.selectbox(key="analytics.window").set_value("last 7 days").run()
    assert not at.exception
    labels = {m.label for m in at.metric}
    assert {
        "Requests",
        "p50 latency",
        "p95 latency",
        "Cache hit rate",
        "Tokens processed",
        "Errors",
    } <= labels
    assert any(m.label == "Requests" and m.value == "120" for m in at.metric)
    assert any("Input drift" in e.value for e in at.error), [e.value for e in at.error]
    assert any(h.value == "Requests per user" for h in at.subheader)


def test_analysts_see_analytics_without_the_user_breakdown(database: str) -> None:
    analyst = add_account("alice")
    _seed_log(analyst.user_id or 0)
    at = signed_in(AppTest.from_file(str(APP), default_timeout=120))
    at.run()
    at.switch_page("pages/metrics.py").run()
    assert not at.exception
    assert any(m.label == "Requests" for m in at.metric)
    assert not any(h.value == "Requests per user" for h in at.subheader)


def test_generate_starts_from_a_preset(database: str) -> None:
    alice = add_account("alice")
    settings = GenerateSettings(
        model_id="smollm2-135m-instruct",
        generation=GenerationParams(max_new_tokens=7, do_sample=True, temperature=0.7, top_p=0.9, seed=42),
        top_k_next=9,
        view=GenerateView(bertviz_view="model"),
    )
    with transaction.unit_of_work() as session:
        presets.create_preset(
            session=session,
            viewer=alice,
            name="Sampled, 7 tokens",
            screen=PresetScreen.GENERATE,
            settings=settings,
        )
    at = signed_in(AppTest.from_file(str(APP), default_timeout=120))
    at.run()
    at.switch_page("pages/generate.py").run()
    assert at.selectbox(key="generate.presets.choice").options == ["Sampled, 7 tokens (alice)"]
    at.button(key="generate.presets.apply").click().run()
    assert not at.exception
    assert at.number_input(key="generate.max_new_tokens").value == 7
    assert at.toggle(key="generate.do_sample").value is True
    assert at.number_input(key="generate.temperature").value == 0.7
    assert at.number_input(key="generate.seed").value == 42
    assert at.slider(key="generate.top_k_next").value == 9
    assert any("Preset applied" in s.value for s in at.success)

    at.number_input(key="generate.max_new_tokens").set_value(3).run()
    at.text_input(key="generate.presets.new_name").set_value("Three tokens").run()
    at.button(key="generate.presets.save").click().run()
    assert not at.exception
    with transaction.unit_of_work() as session:
        saved = {i.name: i for i in presets.list_presets(session=session, viewer=alice)}
    assert saved["Three tokens"].settings["generation"]["max_new_tokens"] == 3


def _preset(owner: object, name: str, description: str = "", **settings: object) -> int:
    with transaction.unit_of_work() as session:
        return presets.create_preset(
            session=session,
            viewer=owner,
            name=name,
            description=description,
            screen=PresetScreen.GENERATE,
            settings=GenerateSettings(model_id="smollm2-135m-instruct", **settings),  # type: ignore[arg-type]
        )


def _generate_page(database: str) -> AppTest:
    at = signed_in(AppTest.from_file(str(APP), default_timeout=120))
    at.run()
    at.switch_page("pages/generate.py").run()
    assert not at.exception
    return at


def test_edit_form_follows_the_chosen_preset(database: str) -> None:
    """Pick A, tick "replace settings", then pick B: the form shows B's name and description,
    the box is unticked, and saving renames B (not B with A's name)."""
    alice = add_account("alice")
    first = _preset(alice, "Preset A", "about A")
    second = _preset(alice, "Preset B", "about B")
    at = _generate_page(database)
    choice = at.selectbox(key="generate.presets.choice")
    choice.set_value(first).run()
    name = next(t for t in at.text_input if t.label == "Name")
    assert name.value == "Preset A"
    next(c for c in at.checkbox if c.label.startswith("Replace its settings")).check().run()
    at.selectbox(key="generate.presets.choice").set_value(second).run()
    assert [t.value for t in at.text_input if t.label == "Name"] == ["Preset B"]
    assert [t.value for t in at.text_area if t.label == "Description"] == ["about B"]
    assert [c.value for c in at.checkbox if c.label.startswith("Replace its settings")] == [False]
    next(t for t in at.text_input if t.label == "Name").set_value("Preset B renamed")
    at.button(key="FormSubmitter:" + f"generate.presets.edit.{second}-Save changes").click().run()
    assert not at.exception
    with transaction.unit_of_work() as session:
        names = {i.id: i.name for i in presets.list_presets(session=session, viewer=alice)}
    assert names == {first: "Preset A", second: "Preset B renamed"}


def test_rendering_presets_writes_no_export_event_and_escapes_user_text(database: str) -> None:
    """Export (and its audit event) happens on click only; descriptions are not Markdown."""
    alice = add_account("alice")
    _preset(alice, "Linked", "see [here](https://evil.example) ![x](https://evil.example/x.png)")
    at = _generate_page(database)
    for _ in range(3):
        at.run()
    assert not at.exception
    with transaction.unit_of_work() as session:
        exports = session.scalars(select(AuditEvent.id).where(AuditEvent.action == "preset.export")).all()
    assert exports == []
    captions = [c.value for c in at.caption]
    assert any("\\[here\\]\\(https\\:" in c for c in captions), captions
    assert not any("[here](https://evil.example)" in c for c in captions)


def test_chat_template_preset_on_a_model_without_one_is_unticked(database: str) -> None:
    alice = add_account("alice")
    with transaction.unit_of_work() as session:
        presets.create_preset(
            session=session,
            viewer=alice,
            name="Chat on Gemma",
            screen=PresetScreen.GENERATE,
            settings=GenerateSettings(
                model_id="gemma-3-270m", generation=GenerationParams(use_chat_template=True)
            ),
        )
    at = _generate_page(database)
    at.button(key="generate.presets.apply").click().run()
    assert not at.exception
    assert at.selectbox(key="generate.model").value == "gemma-3-270m"
    box = at.checkbox(key="generate.chat_template")
    assert box.disabled and box.value is False
    # The preset schema's lower bounds are the widgets': Streamlit would reset values below them.
    assert at.number_input(key="generate.temperature").min == presets.MIN_TEMPERATURE
    assert at.number_input(key="generate.top_p").min == presets.MIN_TOP_P
