"""Batch screen under AppTest on a temporary SQLite database: upload with its skip report,
token statistics, a head-atlas job run by the embedded worker, and the atlas it produces."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.domain.identity import Role
from tests.pages.accounts import add_account, signed_in

APP = Path(__file__).resolve().parents[2] / "app.py"
TIMEOUT = 120
MODEL = "all-minilm-l6-v2"
CSV = b"id,text\n1,The cat sat on the mat.\n2,\n3,A dog barked at the moon.\n4,Birds sing at dawn.\n"


def open_batch(username: str = "alice") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    signed_in(at, username)
    at.run()
    at.switch_page("pages/batch.py")
    at.run()
    assert not at.exception
    return at


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on screen with ``column``."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in (*at.success, *at.warning, *at.error, *at.info)]
    return "\n".join(str(p) for p in parts)


def test_upload_report_save_and_token_statistics(database: str) -> None:
    """A CSV with an empty row is checked, reported, saved, previewed and tokenized."""
    add_account("alice")
    at = open_batch()
    at.file_uploader[0].set_value(("notes.csv", CSV, "text/csv")).run()
    assert not at.exception
    assert at.selectbox(key="batch.upload.column").value == "id"
    at.selectbox(key="batch.upload.column").set_value("text").run()
    assert "Kept 3 rows; skipped 1: 1 empty (line 3)." in [w.value for w in at.warning]
    at.button(key="batch.upload.save").click().run()
    assert not at.exception
    assert any("with 3 rows" in s.value for s in at.success)
    assert "notes" in at.selectbox(key="batch.datasets.pick").format_func(
        at.selectbox(key="batch.datasets.pick").value
    )
    preview = frame(at, "row")
    assert list(preview["text"]) == [
        "The cat sat on the mat.",
        "A dog barked at the moon.",
        "Birds sing at dawn.",
    ]
    at.selectbox(key="batch.tokens.model").set_value(MODEL).run()
    at.button(key="batch.tokens.run").click().run()
    assert not at.exception
    assert {"Tokens", "Mean per row", "Over 512"} <= {m.label for m in at.metric}


def test_bad_files_are_explained(database: str) -> None:
    """A file that is not UTF-8 is refused with the line of the first bad byte."""
    add_account("alice")
    at = open_batch()
    at.file_uploader[0].set_value(("rows.txt", b"fine\n\xff\xfe\n", "text/plain")).run()
    assert "not UTF-8: byte 0xff on line 2" in at.error[0].value
    assert not [b for b in at.button if b.key == "batch.upload.save"]


def _wait_until_done(at: AppTest, timeout: float = 90.0) -> AppTest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        label = at.selectbox(key="batch.jobs.pick")
        if "completed" in label.format_func(label.value):
            return at
        time.sleep(0.3)
    raise AssertionError("the job did not complete:\n" + texts(at))


@pytest.mark.model
def test_atlas_job_on_the_probe_then_open_the_atlas(database: str) -> None:
    """A job on the built-in probe runs on the embedded worker with live progress; its atlas
    shows heatmaps, the top heads, the CSV export and the rows behind a head."""
    add_account("alice")
    at = open_batch()
    at.radio(key="batch.section").set_value("Jobs").run()
    assert "Induction probe" in at.selectbox(key="batch.launch.dataset").format_func(
        at.selectbox(key="batch.launch.dataset").value
    )
    at.selectbox(key="batch.launch.model").set_value(MODEL)
    at.number_input(key="batch.launch.max_tokens").set_value(64)
    at.button(key="batch.launch.start").click().run()
    assert not at.exception
    assert any("queued: 32 rows" in s.value for s in at.success)
    _wait_until_done(at)
    [bar] = at.get("progress")
    assert bar.proto.value == 100 and bar.proto.text == "32 of 32 rows"
    timeline = frame(at, "event")
    assert list(timeline["event"])[:2] == ["queued", "started"] and list(timeline["event"])[-1] == "completed"
    assert "started on worker embedded@" in " ".join(timeline["detail"])

    job_id = at.selectbox(key="batch.jobs.pick").value
    at.button(key=f"batch.job.atlas.{job_id}").click().run()
    assert not at.exception
    assert at.radio(key="batch.section").value == "Atlases"
    top = frame(at, "kind")
    assert set(top["kind"]) >= {"Previous-token heads", "Induction heads", "First-token sinks"}
    assert at.get("download_button")[0].proto.label == "Download CSV"
    at.radio(key="batch.atlas.stat").set_value("induction").run()
    run_buttons = [b for b in at.button if b.key and b.key.startswith("batch.atlas.run.")]
    assert len(run_buttons) == 10
    run_buttons[0].click().run()
    assert not at.exception
    assert {"Tokens", "Model"} <= {m.label for m in at.metric}

    atlas_id = at.session_state["batch.atlas"]
    at.switch_page("pages/history.py").run()
    at.button_group(key="history.kind").set_value("atlases").run()
    at.button(key=f"history.atlas.{atlas_id}").click().run()
    assert not at.exception
    assert at.session_state["history.atlas.open_id"] == atlas_id
    assert any(b.label == "Download CSV" for b in at.get("download_button"))


def test_viewers_cannot_upload_or_launch(database: str) -> None:
    """A viewer sees datasets and jobs sections without the upload and launch controls."""
    add_account("victor", Role.VIEWER)
    at = open_batch("victor")
    assert not any(e.label == "Upload a dataset" for e in at.expander)
    at.radio(key="batch.section").set_value("Jobs").run()
    assert not at.exception and "No jobs yet." in texts(at)
    assert not [b for b in at.button if b.key == "batch.launch.start"]
