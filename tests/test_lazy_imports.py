"""Imports cost what they use: package faces load their names on first use (PEP 562).

A descriptor-only script must not import torch; every public name stays
importable where the thesis listings import it.
"""

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import nord

ROOT = Path(nord.__file__).resolve().parents[1]
#: the package faces that load their names lazily
LAZY_FACES = ["nord.neural_nets", "nord.neural_nets.benchmarks", "nord.neural_nets.distributed",
              "nord.data_curators", "nord.configurations"]
#: every package face with an ``__all__``
FACES = LAZY_FACES + ["nord.design.spaces", "nord.design.strategies"]


def fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON value, returned here."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


LOADED = "import json, sys; print(json.dumps(sorted(m for m in sys.modules))); "


def test_importing_the_descriptor_module_does_not_import_torch():
    loaded = fresh("import nord.neural_nets.neural_descriptor; " + LOADED)
    assert "torch" not in loaded
    assert sorted(m for m in loaded if m.startswith("nord")) == [
        "nord", "nord.errors", "nord.neural_nets", "nord.neural_nets.neural_descriptor"]


def test_a_descriptor_only_script_does_not_import_torch():
    script = """
from nord.neural_nets import NeuralDescriptor
d = NeuralDescriptor()
d.add_layer('input', {}, 'in')
d.add_layer_sequential('conv3x3-bn-relu', {'out_channels': 16}, 'a')
d.add_layer_sequential('maxpool3x3', {'kernel_size': (3, 3)}, 'b')
d.add_layer_sequential('output', {}, 'out')
d.connect_layers('in', 'out')
text = d.to_json(indent=1)
again = NeuralDescriptor.from_json(text)
assert again == d and again.to_json(indent=1) == text
assert d.active_layers() == ['in', 'a', 'b', 'out']
assert len(d.canonical_hash()) > 10 and 'digraph' in d.to_dot()
d.validate()
assert d.is_valid()
"""
    loaded = fresh(script + LOADED)
    assert "torch" not in loaded


def test_importing_a_package_face_imports_none_of_its_names():
    loaded = fresh("import nord.neural_nets, nord.data_curators, nord.configurations; " + LOADED)
    assert sorted(m for m in loaded if m.startswith("nord")) == [
        "nord", "nord.configurations", "nord.data_curators", "nord.neural_nets"]
    assert "torch" not in loaded and "numpy" not in loaded


def test_nord_help_does_not_import_torch():
    loaded = fresh("import runpy, sys\nsys.argv = ['nord', '--help']\ntry:\n"
                   "    runpy.run_module('nord', run_name='__main__')\nexcept SystemExit:\n"
                   "    pass\n" + LOADED)
    assert "torch" not in loaded


@pytest.mark.slow  # imports torch in a fresh interpreter: about 5 s on 2 busy cores
def test_the_thesis_imports_and_distributed_evaluator_work_in_a_fresh_interpreter():
    names = fresh("from nord.neural_nets import (DistributedEvaluator, LocalEvaluator, "
                  "NASBench_101Evaluator, NATSBench_Evaluator, NeuralDescriptor, NeuralNet); "
                  "import json; print(json.dumps([c.__module__ + '.' + c.__name__ for c in "
                  "(DistributedEvaluator, LocalEvaluator, NASBench_101Evaluator, "
                  "NATSBench_Evaluator, NeuralDescriptor, NeuralNet)]))")
    assert names == ["nord.neural_nets.distributed.data_parallel.DistributedEvaluator",
                     "nord.neural_nets.evaluators.LocalEvaluator",
                     "nord.neural_nets.benchmarks.nasbench101.NASBench_101Evaluator",
                     "nord.neural_nets.benchmarks.nasbench201.NATSBench_Evaluator",
                     "nord.neural_nets.neural_descriptor.NeuralDescriptor",
                     "nord.neural_nets.neural_builder.NeuralNet"]


def test_nord_neural_nets_keeps_every_name_it_exported_and_adds_distributed_evaluator():
    import nord.neural_nets as face
    assert sorted(face.__all__) == sorted([
        "NeuralDescriptor", "LayerSpec", "NeuralNet", "LocalEvaluator", "EvaluationResult",
        "NASBench_101Evaluator", "NATSBench_Evaluator", "DistributedEvaluator",
        "list_layers", "register_layer", "register_op"])
    from nord.neural_nets.distributed import DistributedEvaluator
    assert face.DistributedEvaluator is DistributedEvaluator


@pytest.mark.parametrize("face", FACES)
def test_every_name_in_all_resolves_and_is_listed_by_dir(face):
    module = importlib.import_module(face)
    assert module.__all__ and len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        assert value is not None
        namespace = {}
        exec(f"from {face} import {name}", namespace)
        assert namespace[name] is value
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("face", LAZY_FACES)
def test_an_unknown_name_raises_attribute_error_naming_the_module(face):
    module = importlib.import_module(face)
    with pytest.raises(AttributeError, match=f"module '{face}' has no attribute 'NoSuchThing'"):
        module.NoSuchThing
    with pytest.raises(ImportError, match="NoSuchThing"):
        exec(f"from {face} import NoSuchThing", {})


def test_a_misspelt_name_is_answered_with_close_matches():
    import nord.neural_nets as face
    with pytest.raises(AttributeError, match="did you mean 'NeuralDescriptor'"):
        face.NeuralDescripter


def test_submodules_still_import_through_the_face():
    from nord.neural_nets import export, serialization
    assert export.__name__ == "nord.neural_nets.export"
    assert serialization.__name__ == "nord.neural_nets.serialization"


def _type_checking_imports(path: Path) -> dict:
    """name -> defining module, from the ``if TYPE_CHECKING:`` block of an ``__init__.py``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    blocks = [node for node in tree.body if isinstance(node, ast.If)
              and ast.unparse(node.test) == "TYPE_CHECKING"]
    assert len(blocks) == 1, f"{path} has no single 'if TYPE_CHECKING:' block"
    return {alias.asname or alias.name: node.module for node in blocks[0].body
            if isinstance(node, ast.ImportFrom) for alias in node.names}


@pytest.mark.parametrize("face", LAZY_FACES)
def test_type_checkers_see_what_the_face_gives_at_run_time(face):
    module = importlib.import_module(face)
    seen = _type_checking_imports(Path(module.__file__))
    assert sorted(seen) == sorted(module.__all__)
    for name, home in seen.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name)


def test_validating_an_unknown_op_still_names_the_closest_ones():
    script = """
import json
from nord.neural_nets import NeuralDescriptor
d = NeuralDescriptor()
d.add_layer('input', {}, 'in')
d.add_layer_sequential('conv3x3-bn-rleu', {}, 'a')
d.add_layer_sequential('output', {}, 'out')
print(json.dumps([str(p) for p in d.problems()]))
"""
    problems = fresh(script)
    assert problems == ["layer 'a': unknown op 'conv3x3-bn-rleu'; did you mean "
                        "'conv3x3-bn-relu', 'conv1x1-bn-relu', 'sep_conv_3x3'? Register new "
                        "ops with "
                        "nord.neural_nets.layers.register_op()"]


def test_the_torch_free_op_list_is_the_registry_s_own():
    from nord.neural_nets.builtin_ops import BUILTIN_OPS
    from nord.neural_nets.layers import LayerRegistry, _register_ops
    registry = LayerRegistry()
    _register_ops(registry)
    assert set(registry.ops()) == BUILTIN_OPS
