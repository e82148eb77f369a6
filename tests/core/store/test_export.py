"""Export (JSON, CSV, ZIP with an offline viewer) and import, round trip and bad files."""

from __future__ import annotations

import base64
import copy
import csv
import io
import json
import re
import zipfile

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.attention import compact as compact_codec
from core.domain.owned import RecordKind
from core.store import analyses as library
from core.store import export, owned
from core.store.export import ImportFileError
from core.store.offline_viewer import script_json
from core.store.records import analysis_from_record
from db.models import Visualization
from tests.factories import make_analysis
from tests.fixtures.databases import UserFactory
from tests.fixtures.records import save

VOLATILE = ("exported_at",)


def _stable(document: dict) -> dict:
    """The document without what legitimately changes on a new import (times, author)."""
    document = copy.deepcopy(document)
    for key in VOLATILE:
        document.pop(key)
    document["analysis"].pop("created_at")
    for note in document["annotations"]:
        note.pop("created_at")
        note.pop("author")
    return document


@pytest.fixture
def exported(session: Session, make_user: UserFactory) -> tuple:
    alice = make_user("alice")
    record = save(
        session,
        alice,
        "The capital of France is",
        generated=" Paris, <b>of</b> course",
        tags="geo, demo",
        title='Capitals </script><!-- "quoted"',
    )
    library.annotate(
        session=session,
        viewer=alice,
        visualization_id=record.id,
        values={"body": "Head 0.1 looks at France", "layer": 0, "head": 1, "token_start": 3},
    )
    library.annotate(
        session=session, viewer=alice, visualization_id=record.id, values={"body": "=cmd|' /C calc'!A0"}
    )
    data = library.export_json(session=session, viewer=alice, visualization_id=record.id)
    return alice, record, data


def test_round_trip_is_equal(session: Session, make_user: UserFactory, exported: tuple) -> None:
    """Import re-creates the analysis: exporting it again gives the same document and view."""
    _, record, data = exported
    bob = make_user("bob")
    new_id = library.import_json(session=session, viewer=bob, data=data)
    again = library.export_json(session=session, viewer=bob, visualization_id=new_id)
    assert _stable(json.loads(again)) == _stable(json.loads(data))
    imported = owned.open_readable(session=session, viewer=bob, kind=RecordKind.ANALYSIS, record_id=new_id)
    assert imported.owner_id == bob.user_id and not imported.is_public
    assert [n.author_id for n in imported.annotations] == [bob.user_id] * 2
    original, copy_ = analysis_from_record(record), analysis_from_record(imported)
    assert copy_.tokens == original.tokens and copy_.offsets == original.offsets
    assert copy_.request == original.request and copy_.next_tokens == original.next_tokens
    assert np.array_equal(copy_.compact.topk_index, original.compact.topk_index)
    assert (
        library.search_history(session=session, viewer=bob, query=library.HistoryQuery(text="france")).total
        == 1
    )


def test_reopened_analysis_equals_the_saved_one(session: Session, make_user: UserFactory) -> None:
    """Everything the view shows comes back from storage without the model; full attention does not."""
    alice = make_user("alice")
    analysis = make_analysis("one two three four five", generated=" six seven", n_layers=2, n_heads=3)
    record_id = library.save_analysis(session=session, viewer=alice, analysis=analysis, title="t", tags="")
    session.expire_all()
    reopened = analysis_from_record(session.get(Visualization, record_id))
    assert reopened.attention is None
    for name in ("text", "tokens", "token_ids", "offsets", "prompt_len", "next_tokens", "request", "model"):
        assert getattr(reopened, name) == getattr(analysis, name), name
    assert reopened.timings.total_s == pytest.approx(analysis.timings.total_s)
    assert reopened.generated_text == analysis.generated_text == "six seven"
    for name, values in analysis.stats.items():
        assert np.array_equal(reopened.stats[name], values), name
    assert compact_codec.encode(reopened.compact) == compact_codec.encode(analysis.compact)


def _mutated(data: bytes, change) -> bytes:
    document = json.loads(data)
    change(document)
    return json.dumps(document).encode()


def _other_attention(document: dict) -> None:
    other = make_analysis("just three words", n_layers=1, n_heads=2)
    document["compact_attention"]["data"] = base64.b64encode(compact_codec.encode(other.compact)).decode()


BAD_FILES = [
    (lambda d: b"\xff\xfe not utf-8", "not UTF-8"),
    (lambda d: b'{"format": "headlight.analysis", ', "not valid JSON (line 1"),
    (lambda d: b"[1, 2, 3]", "not a Headlight analysis export"),
    (lambda d: _mutated(d, lambda x: x.update(format="other")), "not a Headlight analysis export"),
    (lambda d: _mutated(d, lambda x: x.update(version=99)), "export version 99"),
    (lambda d: _mutated(d, lambda x: x.update(extra=1)), "extra"),
    (lambda d: _mutated(d, lambda x: x["analysis"]["token_data"]["tokens"].pop()), "equal length"),
    (
        lambda d: _mutated(d, lambda x: x["analysis"]["token_data"]["offsets"].__setitem__(0, [0, 10**6])),
        "outside",
    ),
    (lambda d: _mutated(d, lambda x: x["analysis"]["request"].update(text="x" * 20_001)), "limit is 20,000"),
    (lambda d: _mutated(d, lambda x: x["analysis"]["timings"].update(load_s=-1)), "greater than or equal"),
    (lambda d: _mutated(d, lambda x: x["analysis"]["head_stats"]["entropy"].pop()), "shaped"),
    (lambda d: _mutated(d, lambda x: x["annotations"][0].update(layer=7)), "layer or head"),
    (lambda d: _mutated(d, lambda x: x["annotations"][0].update(token_start=999)), "beyond the text"),
    (lambda d: _mutated(d, lambda x: x["analysis"]["model"].update(model_id="other")), "differs"),
    (lambda d: _mutated(d, lambda x: x["compact_attention"].update(data="!!notbase64")), "damaged"),
    (lambda d: _mutated(d, lambda x: x["compact_attention"].update(data="SExDQQ==")), "damaged"),
    (lambda d: _mutated(d, lambda x: x["compact_attention"].update(format_version=9)), "format version 9"),
    (lambda d: _mutated(d, _other_attention), "does not match"),
    (lambda d: _mutated(d, lambda x: x["analysis"].update(tags=["t"] * 21)), "at most 20"),
]


@pytest.mark.parametrize(("make_bad", "message"), BAD_FILES)
def test_bad_imports_are_refused_clearly(session: Session, exported: tuple, make_bad, message: str) -> None:
    """Malformed files are refused with a message that says why, and nothing is written."""
    alice, _, data = exported
    before = session.scalar(select(func.count()).select_from(Visualization))
    with pytest.raises(ImportFileError, match=re.escape(message)):
        library.import_json(session=session, viewer=alice, data=make_bad(data))
    assert session.scalar(select(func.count()).select_from(Visualization)) == before


def test_oversized_import_is_refused(
    session: Session, exported: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _, data = exported
    monkeypatch.setattr(export, "MAX_IMPORT_BYTES", len(data) - 1)
    with pytest.raises(ImportFileError, match="imports are limited"):
        library.import_json(session=session, viewer=alice, data=data)


def test_csv_lists_my_analyses_safely(session: Session, make_user: UserFactory, exported: tuple) -> None:
    """One row per own analysis with its note count; formulas are neutralised; others' rows absent."""
    alice, record, _ = exported
    save(session, alice, "=1+1 looks like a formula", title="@risky")
    save(session, make_user("bob"), "bob's public text", title="bob", public=True)
    rows = list(
        csv.DictReader(io.StringIO(library.export_csv(session=session, viewer=alice).decode("utf-8-sig")))
    )
    assert [r["title"] for r in rows] == [record.title, "'@risky"]
    assert rows[0]["annotation_count"] == "2" and rows[0]["model"] == "smol" and rows[0]["tags"] == "demo geo"
    assert rows[1]["text"].startswith("'=1+1")
    assert list(rows[0]) == list(export.CSV_COLUMNS)


def test_zip_bundle_holds_an_offline_viewer(session: Session, exported: tuple) -> None:
    """The ZIP has the viewer, the JSON and the CSV; the viewer loads nothing from outside."""
    alice, record, data = exported
    bundle = zipfile.ZipFile(
        io.BytesIO(library.export_zip(session=session, viewer=alice, visualization_id=record.id))
    )
    stem = f"headlight-analysis-{record.id}"
    assert sorted(bundle.namelist()) == [
        f"{stem}/analyses.csv",
        f"{stem}/analysis.html",
        f"{stem}/analysis.json",
    ]
    page = bundle.read(f"{stem}/analysis.html").decode()
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "</script><!--" not in page.split('id="headlight-data">', 1)[1].split("</script>\n<script>")[0]
    assert "<title>Capitals &lt;/script&gt;&lt;!-- &quot;quoted&quot; · Headlight</title>" in page
    embedded = page.split('id="headlight-data">', 1)[1].split("</script>", 1)[0]
    assert _stable(json.loads(embedded)) == _stable(json.loads(bundle.read(f"{stem}/analysis.json")))
    assert _stable(json.loads(data)) == _stable(json.loads(embedded))


def test_script_json_escapes_markup() -> None:
    text = script_json({"t": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": "</script><!-- & \u2028"}
