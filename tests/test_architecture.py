"""House rules of the whole tree: the import-linter floors, a UI that reaches the database only
through services, and no remote code for models."""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / ".importlinter"


def test_import_contracts_hold() -> None:
    """Floors point down, only the store floors import db, only ui imports Streamlit, only
    the model adapter imports transformers (`.importlinter`; `make lint` runs the same)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), str(CONTRACTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_package_stands_on_a_floor() -> None:
    """A new package under core/ must be placed in the floors contract, or nothing checks it."""
    config = configparser.ConfigParser()
    config.read(CONTRACTS)
    layers = config["importlinter:contract:floors"]["layers"]
    floors = {name.strip() for line in layers.splitlines() for name in line.split("|") if name.strip()}
    packages = {f"core.{path.parent.name}" for path in (ROOT / "core").glob("*/__init__.py")}
    assert packages <= floors, sorted(packages - floors)
    assert not [p.name for p in (ROOT / "core").glob("*.py") if p.name != "__init__.py"], (
        "core/ holds packages only"
    )


UI_FORBIDDEN = ("db", "sqlalchemy", "core.store.transaction")


def _ui_files() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").rglob("*.py"))]


def _forbidden_in_ui(path: Path) -> list[str]:
    """What ``path`` imports of the database (directly), and its uses of ``unit_of_work``."""
    source = path.read_text(encoding="utf-8")
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found += [name for name in names if name in UI_FORBIDDEN or name.startswith(("db.", "sqlalchemy."))]
    if "unit_of_work" in source:
        found.append("unit_of_work")
    return found


def test_the_ui_reaches_the_database_only_through_services() -> None:
    """pages/, app.py and ui/ import neither db nor SQLAlchemy and open no transaction: each user
    action is one service call that opens its own and returns plain views (pages/ is not a
    package, so import-linter's ui contract cannot see it)."""
    offenders = {}
    for path in _ui_files():
        found = _forbidden_in_ui(path)
        if found:
            offenders[path.relative_to(ROOT).as_posix()] = found
    assert offenders == {}


def test_the_ui_check_sees_what_it_forbids(tmp_path: Path) -> None:
    """The scan above catches each form a database import or a transaction can take."""
    for line in (
        "from db.models import Visualization",
        "import db.session",
        "from db import queries",
        "import sqlalchemy",
        "from sqlalchemy.orm import Session",
        "from core.store import transaction",
        "from core.store.transaction import unit_of_work",
        "with transaction.unit_of_work() as session: pass",
    ):
        page = tmp_path / "page.py"
        page.write_text(line + "\n", encoding="utf-8")
        assert _forbidden_in_ui(page), line


def test_no_remote_code_for_models() -> None:
    """No code path passes trust_remote_code=True."""
    for path in [*(ROOT / "core").rglob("*.py"), *(ROOT / "ui").rglob("*.py")]:
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
    for folder in ("core", "db", "ui", "pages", "tests", "bench", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            offenders += [
                f"{path.relative_to(ROOT)}:{line}" for line in _from_pretrained_without_explicit_refusal(path)
            ]
    offenders += [f"app.py:{line}" for line in _from_pretrained_without_explicit_refusal(ROOT / "app.py")]
    assert offenders == []
    assert offenders == []


ADAPTER = "core/models/huggingface/"
# transformers and bertviz's model classes; bertviz's HTML/JS views are the UI's to use.
MODEL_LIBRARIES = ("transformers", "bertviz.transformers_neuron_view")


def _imported_names(path: Path) -> list[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _source_files() -> list[Path]:
    """The application's source: core, db, ui, pages (not a package: import-linter misses it), app.py."""
    files = [ROOT / "app.py"]
    for folder in ("core", "db", "ui", "pages"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def test_only_the_model_adapter_imports_transformers() -> None:
    """Outside core/models/huggingface/ no module imports transformers or bertviz's model classes."""
    offenders = []
    for path in _source_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(ADAPTER):
            continue
        for name in _imported_names(path):
            if any(name == library or name.startswith(f"{library}.") for library in MODEL_LIBRARIES):
                offenders.append(f"{relative}: {name}")
    assert offenders == []


def test_only_the_model_adapter_reaches_for_its_transformers_objects() -> None:
    """The adapter's escape hatches (``hf_model``, ``hf_tokenizer``) are for tests and benchmarks."""
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in _source_files()
        if not path.relative_to(ROOT).as_posix().startswith(ADAPTER)
        and re.search(r"\bhf_(model|tokenizer)\b", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
