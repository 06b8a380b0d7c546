"""The package's layers only look down:
cli > experiment > lit > hardware > tasks > data, models > nn.

Every import of a ``bnn_edge`` module is read from the source (function-local ones too), so a
layer reaching up fails here rather than in a reviewer's reading.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "bnn_edge"
#: a layer may import the layers of lower rank (data and models are side by side)
RANK = {"nn": 0, "models": 1, "data": 1, "tasks": 2, "hardware": 3, "lit": 4, "experiment": 5,
        "cli": 6}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of a ``bnn_edge`` module in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        out += [(node.lineno, n) for n in names if n.split(".")[0] == "bnn_edge"]
    return out


def layer_of(module: str) -> str | None:
    """The layer a dotted ``bnn_edge`` module name belongs to, None for top-level modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def upward_imports(package: Path) -> list[str]:
    """``file:line imports module`` for each import of a layer at or above the file's own
    (other than itself)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        own = layer_of(".".join(("bnn_edge", *path.relative_to(package).parts)))
        if own is None:
            continue
        for line, module in imported_modules(path):
            target = layer_of(module)
            if target not in (None, own) and RANK[target] >= RANK[own]:
                found.append(f"{path.relative_to(package.parent)}:{line} imports {module}")
    return found


def test_no_layer_imports_one_above_it():
    assert upward_imports(PACKAGE) == []


def test_the_check_sees_an_upward_import_even_inside_a_function(tmp_path):
    """The check itself: a hardware module importing experiment inside a function (as
    hardware/engine.py did to read a checkpoint), and models importing its sibling data."""
    package = tmp_path / "bnn_edge"
    (package / "hardware").mkdir(parents=True)
    (package / "hardware" / "engine.py").write_text(
        "import bnn_edge.nn.binary\n\ndef load(path):\n"
        "    from bnn_edge.experiment.rundir import load_module\n    return load_module(path)\n")
    (package / "models").mkdir()
    (package / "models" / "net.py").write_text("from bnn_edge.data import base\n")
    assert upward_imports(package) == [
        "bnn_edge/hardware/engine.py:4 imports bnn_edge.experiment.rundir",
        "bnn_edge/models/net.py:1 imports bnn_edge.data"]
