"""One error hierarchy: every error NORD raises on purpose is a ``NordError`` from ``nord.errors``."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import nord
import nord.errors as errors

PACKAGE = Path(nord.__file__).parent
# control flow inside one function: raised and caught a few lines below, never seen by users
INTERNAL = {("nord/neural_nets/benchmarks/nasbench201.py", "TypeError")}


def _modules():
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="nord."):
        if info.name.endswith("__main__"):  # optional dependencies import on use only
            continue
        yield importlib.import_module(info.name)


def test_every_public_error_class_is_a_nord_error_listed_in_nord_errors():
    found = {}
    for module in _modules():
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__.startswith("nord") and not name.startswith("_")):
                found[name] = value
    assert len(found) >= 40
    not_nord = sorted(name for name, cls in found.items() if not issubclass(cls, errors.NordError))
    assert not_nord == []
    elsewhere = sorted(name for name, cls in found.items() if cls.__module__ != "nord.errors")
    assert elsewhere == [], "define errors in nord/errors.py and import them where they are raised"
    assert sorted(found) == sorted(errors.__all__)


def test_nord_errors_all_names_exactly_its_classes():
    defined = sorted(name for name, value in vars(errors).items()
                     if inspect.isclass(value) and issubclass(value, BaseException))
    assert sorted(errors.__all__) == defined
    assert all(issubclass(getattr(errors, name), errors.NordError) for name in errors.__all__)


def _bare_raises(path: Path):
    """(line, name) of each ``raise X(...)`` of a builtin exception or of NordError itself."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name):
                name = target.id
                builtin = getattr(builtins, name, None)
                if name == "NordError" or (inspect.isclass(builtin)
                                           and issubclass(builtin, Exception)):
                    yield node.lineno, name


def test_no_raise_of_a_bare_builtin_or_the_base_class():
    # NotImplementedError marks abstract methods; AttributeError is the protocol of
    # module __getattr__ and lazy attributes; StopIteration ends iterators.
    protocol = {"NotImplementedError", "AttributeError", "StopIteration", "KeyboardInterrupt"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        for line, name in _bare_raises(path):
            if name not in protocol and (relative, name) not in INTERNAL:
                offenders.append(f"{relative}:{line} raise {name}")
    assert offenders == []


@pytest.mark.parametrize("name, builtin", [
    ("NonFiniteLossError", ArithmeticError), ("ProtobufError", ValueError),
    ("StrategyError", ValueError), ("InvalidArgumentError", TypeError),
    ("RunNotFoundError", FileNotFoundError), ("TableFormatError", ValueError),
])
def test_errors_keep_their_builtin_base_for_generic_handlers(name, builtin):
    assert issubclass(getattr(errors, name), (errors.NordError, builtin))
    assert issubclass(getattr(errors, name), builtin)


def test_old_import_paths_still_name_the_same_classes():
    from nord.design.strategies.base import StrategyError
    from nord.neural_nets.benchmarks.tfrecord import ProtobufError
    from nord.neural_nets.distributed import DistributedError
    from nord.neural_nets.export import ExportError, TamperedExportError
    from nord.neural_nets.training import NonFiniteLossError
    assert (StrategyError, ProtobufError, DistributedError, ExportError, TamperedExportError,
            NonFiniteLossError) == (errors.StrategyError, errors.ProtobufError,
                                    errors.DistributedError, errors.ExportError,
                                    errors.TamperedExportError, errors.NonFiniteLossError)
