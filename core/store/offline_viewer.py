"""A standalone HTML viewer of one exported analysis: opens offline, loads nothing.

The page embeds the export document (`core.store.export.export_document`) as JSON and draws, with
a little inline JavaScript on canvases: the text (generated part and pinned tokens marked),
both per-head statistics heatmaps, one head's top-k map (click a heatmap cell to pick the
head), and the annotations. A Content-Security-Policy forbids every network request.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

_TEMPLATE = Path(__file__).resolve().parent / "assets" / "offline_viewer.html"
_PLACEHOLDER = re.compile(r"__(TITLE|DATA)__")
# Inside <script> the JSON must not contain "</script>" or an HTML comment opener; escaping
# <, > and & as JSON unicode escapes keeps the data identical once parsed.
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside ``<script type="application/json">``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda match: _SCRIPT_ESCAPES[match.group(0)], text)


def offline_html(document: dict[str, Any]) -> str:
    """The viewer page for one export document (see `core.store.export`)."""
    values = {"TITLE": html.escape(document["analysis"]["title"]), "DATA": script_json(document)}
    # One pass, so a title containing a placeholder name is never substituted again.
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], _TEMPLATE.read_text(encoding="utf-8"))
