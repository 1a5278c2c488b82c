"""Modules talk to each other through public names only.

A name starting with ``_`` is private to the module that defines it: no other
module of NORD (nor a benchmark script or example) imports it, or reaches it
as an attribute. Attribute access on objects of the module's own classes
(``other._data`` inside the class that sets ``self._data``) stays allowed.
"""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "nord").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
                  *(ROOT / "examples").glob("*.py")])
#: private names of other libraries that NORD may use
FOREIGN = {"_exit"}  # os._exit: leave a forked worker without running atexit handlers


def _defined_here(tree: ast.AST) -> set:
    """Private names the module itself defines: functions, classes, attributes it
    assigns (``self._x = ...``, ``new._x = ...``), class-level names."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute):
            names.add(node.target.attr)
    return {name for name in names if name.startswith("_")}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _offences(path: Path) -> list:
    tree = ast.parse(path.read_text(), filename=str(path))
    own = _defined_here(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nord"):
            found += [f"{node.lineno}: from {node.module} import {alias.name}"
                      for alias in node.names if _private(alias.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if node.attr in own or node.attr in FOREIGN:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue  # inherited from a class of another NORD module: checked there
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_uses_another_modules_private_names(path):
    assert _offences(path) == []


def test_the_check_catches_what_it_is_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from nord.neural_nets.graph import _hidden\n"
                   "def f(evaluator):\n    return evaluator._metric('x')\n")
    assert _offences(bad) == ["1: from nord.neural_nets.graph import _hidden",
                              "3: evaluator._metric"]


BENCHMARK_MODULES = ["nasbench101", "nasbench101_cells", "nasbench101_tables",
                     "nasbench101_records", "nasbench201", "nasbench201_cells",
                     "nasbench201_descriptors", "nasbench201_tables", "tfrecord"]


@pytest.mark.parametrize("name", BENCHMARK_MODULES)
def test_each_benchmark_module_lists_its_public_surface(name):
    module = importlib.import_module(f"nord.neural_nets.benchmarks.{name}")
    assert module.__all__, name
    assert len(set(module.__all__)) == len(module.__all__)
    missing = [item for item in module.__all__ if not hasattr(module, item)]
    assert missing == []
    # what sibling modules import from it is in its __all__
    used = set()
    for path in (ROOT / "nord").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.ImportFrom)
                    and node.module == f"nord.neural_nets.benchmarks.{name}"):
                used |= {alias.name for alias in node.names}
    assert sorted(used - set(module.__all__)) == []
