"""House rule: core/ (outside resources and render) and db/ never import streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("ui/resources.py", "ui/")


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
    """Only ui/resources.py and ui/ may import streamlit."""
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


def _from_pretrained_without_explicit_refusal(path: Path) -> list[int]:
    """Lines of ``*.from_pretrained(...)`` calls that do not pass ``trust_remote_code=False``
    themselves (a ``**kwargs`` that may hold it does not count: it is not visible at the call)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "from_pretrained"
        ):
            explicit = any(
                keyword.arg == "trust_remote_code"
                and isinstance(keyword.value, ast.Constant)
                and keyword.value.value is False
                for keyword in node.keywords
            )
            if not explicit:
                lines.append(node.lineno)
    return lines


def test_every_from_pretrained_refuses_remote_code_explicitly() -> None:
    """transformers' default may change and some code paths read it from the model's config:
    every load in the repository says trust_remote_code=False at the call."""
    offenders = []
    for folder in ("core", "db", "pages", "tests", "bench", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            offenders += [
                f"{path.relative_to(ROOT)}:{line}" for line in _from_pretrained_without_explicit_refusal(path)
            ]
    offenders += [f"app.py:{line}" for line in _from_pretrained_without_explicit_refusal(ROOT / "app.py")]
    assert offenders == []
