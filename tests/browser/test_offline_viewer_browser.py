"""The exported offline viewer in Chromium: draws its heatmaps and head map from the inline
data, reacts to a click, and requests nothing but its own file."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.attention.codec import analysis_fields
from core.store import export
from db.models import Annotation, User, Visualization
from tests.factories import make_analysis

pytestmark = pytest.mark.browser


def _bundle(tmp_path: Path) -> Path:
    """Unpack an export ZIP of a small analysis with a pinned note; return the viewer's path."""
    now = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    analysis = make_analysis(
        "The capital of France is", generated=" Paris <b>indeed</b>", n_layers=3, n_heads=4
    )
    record = Visualization(owner_id=1, title="Capitals </script><b>bold</b>", **analysis_fields(analysis))
    record.created_at = now
    note = Annotation(
        body="Head 2.3 <i>copies</i>", layer=2, head=3, token_start=3, token_end=4, created_at=now
    )
    note.author = User(username="local")
    record.annotations = [note]
    document = export.export_document(record, exported_at=now)
    data = export.zip_bundle(document, export.csv_bytes([]), stem="bundle")
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    return tmp_path / "bundle" / "analysis.html"


def test_offline_viewer_draws_without_network(browser, tmp_path: Path, artifacts: Path) -> None:
    """The page renders text, both heatmaps and the pinned head; only the file itself loads."""
    page = browser.new_page(viewport={"width": 1200, "height": 1400})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    path = _bundle(tmp_path)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    assert page.inner_text("#title") == "Capitals </script><b>bold</b>"
    assert page.locator("#title b").count() == 0  # user text is never parsed as HTML
    assert page.inner_text("#head-title") == "Layer 2, head 3"  # the pinned note's head
    assert "Paris <b>indeed</b>" in page.inner_text("#text")
    assert page.locator("#text .pinned").count() == 2
    assert "tokens 3–4" in page.inner_text("#annotations")
    painted = page.evaluate(
        "() => ['entropy', 'distance', 'topk'].map(id => { const c = document.getElementById(id);"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250) n++;"
        " return n; })"
    )
    assert all(count > 100 for count in painted), painted
    page.click("#entropy", position={"x": 30 + 22 * 1 + 5, "y": 18 + 14 * 0 + 5})
    assert page.inner_text("#head-title") == "Layer 0, head 1"
    page.screenshot(path=str(artifacts / "offline_viewer.png"), full_page=True)
    assert errors == []
    assert requests == [path.as_uri()]
    page.close()
