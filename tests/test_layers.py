"""The layering contract (DESIGN.md, "Layout"): dependencies point one way.

- ``app.text`` is the leaf of pure text functions: it imports nothing of ours outside
  ``app.text`` (no other ``app`` module, no ``ingest``);
- nothing in ``app`` imports ``ingest`` except the CLI (``app/cli.py``, or an ``app/cli/``
  package) and the app factory (``app/main.py``), which start a worker.

Every ``.py`` file under ``app/`` and ``ingest/`` is parsed with ``ast``; imports count
wherever they stand (inside functions, under ``TYPE_CHECKING``), relative imports are
resolved, and ``importlib.import_module("...")`` / ``__import__("...")`` with a literal
name count too. A violation is reported as ``file:line: imports module (rule)``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Top-level packages of ours.
OURS = ("app", "ingest")
LEAF = "app.text"
# The only modules of app that may import ingest: the CLI and the app factory.
INGEST_ENTRY_MODULES = ("app.cli", "app.main")

LEAF_RULE = f"{LEAF} imports nothing of ours outside {LEAF}"
INGEST_RULE = "app imports ingest only in app/cli.py and app/main.py"


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    module: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.module} ({self.rule})"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _module_name(rel: Path) -> tuple[str, bool]:
    """Dotted name of a file relative to the root, and whether it is a package."""
    parts = list(rel.with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``tree``, at any depth.

    ``from a.b import c`` gives ``a.b.c`` (c may be a submodule; a name in ``a.b`` lies
    within ``a.b`` all the same)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: max(0, len(base_parts) - (node.level - 1))]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if alias.name != "*" else base
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (
                    isinstance(node.func, ast.Name)
                    and node.func.id in {"__import__", "import_module"}
                )
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            yield node.lineno, node.args[0].value


def check_layers(root: Path) -> list[Violation]:
    """Every import under ``root``'s ``app/`` and ``ingest/`` that breaks the layering."""
    found: list[Violation] = []
    for top in OURS:
        if not (root / top).is_dir():
            continue
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root)
            module, is_package = _module_name(rel)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
            for line, target in _imported(tree, module, is_package):
                if target.split(".")[0] not in OURS:
                    continue
                if _within(module, LEAF) and not _within(target, LEAF):
                    found.append(Violation(rel.as_posix(), line, target, LEAF_RULE))
                elif (
                    _within(module, "app")
                    and _within(target, "ingest")
                    and not any(_within(module, m) for m in INGEST_ENTRY_MODULES)
                ):
                    found.append(Violation(rel.as_posix(), line, target, INGEST_RULE))
    return sorted(found)


def test_the_code_keeps_its_layers() -> None:
    violations = check_layers(ROOT)
    assert not violations, "layering broken:\n" + "\n".join(map(str, violations))


# --- the checker itself, on a made-up tree ------------------------------------------------


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_checker_finds_each_kind_of_violation(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": "",
        "app/settings.py": "",
        "app/text/__init__.py": "from app.text.scripts import HAN\nfrom . import scripts\n",
        "app/text/scripts.py": "import re\nHAN = ''\n",
        # Inside a function, and relative: both resolve to app.settings.
        "app/text/bad.py": "import re\n\n\ndef f():\n    from app.settings import Settings\n",
        "app/text/relative.py": "from .. import settings\n",
        "app/text/whole.py": "import app\nimport ingest.types\n",
        "app/search/__init__.py": "",
        "app/search/service.py": "from app.text import scripts\nfrom ingest.x import y\n",
        "app/search/lazy.py": "import importlib\nimportlib.import_module('ingest.worker')\n",
        "app/search/up.py": "from ...ingest import worker\n",
        "app/cli.py": "def serve():\n    from ingest.worker import Worker\n",
        "app/cli/__init__.py": "from ingest import worker\n",
        "app/main.py": "from ingest.worker import start_in_background\n",
        "ingest/__init__.py": "",
        "ingest/worker.py": "from app.settings import Settings\nfrom app.text import scripts\n",
    }
    for rel, text in files.items():
        _write(tmp_path, rel, text)
    got = {(v.path, v.line, v.module, v.rule) for v in check_layers(tmp_path)}
    assert got == {
        ("app/text/bad.py", 5, "app.settings.Settings", LEAF_RULE),
        ("app/text/relative.py", 1, "app.settings", LEAF_RULE),
        ("app/text/whole.py", 1, "app", LEAF_RULE),
        ("app/text/whole.py", 2, "ingest.types", LEAF_RULE),
        ("app/search/service.py", 2, "ingest.x.y", INGEST_RULE),
        ("app/search/lazy.py", 2, "ingest.worker", INGEST_RULE),
        # "..." from app/search/up.py climbs past app: a broken import, still caught.
        ("app/search/up.py", 1, "ingest.worker", INGEST_RULE),
    }


def test_checker_catches_an_ingest_import_added_to_the_search_service(tmp_path: Path) -> None:
    source = (ROOT / "app/search/service.py").read_text(encoding="utf-8")
    _write(tmp_path, "app/search/service.py", source + "\nfrom ingest.x import y\n")
    line = source.count("\n") + 2
    violations = check_layers(tmp_path)
    assert [str(v) for v in violations] == [
        f"app/search/service.py:{line}: imports ingest.x.y ({INGEST_RULE})"
    ]
