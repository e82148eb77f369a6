"""House rule: core/ (outside resources and render) and db/ never import streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("core/resources.py", "core/render/")


def _imports_streamlit(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(name == "streamlit" or name.startswith("streamlit.") for name in names):
            return True
    return False


def test_core_and_db_do_not_import_streamlit() -> None:
    """Only core/resources.py and core/render/ may import streamlit."""
    offenders = []
    for folder in ("core", "db"):
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(ALLOWED) and _imports_streamlit(path):
                offenders.append(relative)
    assert offenders == []


def test_no_remote_code_for_models() -> None:
    """No code path passes trust_remote_code=True."""
    for path in (ROOT / "core").rglob("*.py"):
        assert "trust_remote_code=True" not in path.read_text(encoding="utf-8"), path
