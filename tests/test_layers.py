"""The package's layers import one way: core → envs → contract → algos → training → analysis → (labs) → the CLI and
chapter tooling. A module may import from its own layer and the layers before it; chapter labs are imported only
by other labs (and by notebooks and tests), never by production code."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import rlcourse

PACKAGE = Path(rlcourse.__file__).parent
LAYERS = ["core", "envs", "contract", "algos", "training", "analysis", "labs", "<top>"]


def layer_of(module: str) -> str:
    """``rlcourse.algos.sb3`` → ``algos``; a top-level module (``rlcourse.cli``) → ``<top>``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else "<top>"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every ``rlcourse...`` module a file imports (anywhere in it, function bodies included), with line numbers."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlcourse"):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import; the package uses absolute imports")
            names = [f"{node.module}.{a.name}" if node.module == "rlcourse" else node.module for a in node.names]
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("rlcourse")]
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = layer_of(module_name(path)) if module_name(path) != "rlcourse" else "<top>"
        for line, target in imports_of(path):
            there = layer_of(target)
            if there == "labs" and here != "labs":
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports the chapter lab {target}")
            elif there != "labs" and LAYERS.index(there) > LAYERS.index(here):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports {target} ({there})")
    return bad


def test_imports_point_one_way():
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker is not vacuous: a core module importing the training layer, or an algorithm importing a lab,
    is reported."""
    fake = tmp_path / "rlcourse"
    (fake / "core").mkdir(parents=True)
    (fake / "algos").mkdir()
    (fake / "core" / "bad.py").write_text("def f():\n    from rlcourse.training.train import train\n")
    (fake / "algos" / "worse.py").write_text("from rlcourse.labs.sac import squashed_log_prob\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = violations()
    assert any("core/bad.py:2" in v and "(training)" in v for v in found)
    assert any("algos/worse.py:1" in v and "chapter lab" in v for v in found)


def test_every_layer_is_a_package_with_a_docstring():
    for name in LAYERS[:-1]:
        init = PACKAGE / name / "__init__.py"
        assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), name
