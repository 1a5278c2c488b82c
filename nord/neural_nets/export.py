"""Exporting a compiled network: descriptor, weights, TorchScript and Python source.

:func:`export_network` writes, into one folder:

* ``descriptor.json`` — the architecture (``NeuralDescriptor.to_json``);
* ``weights.pt`` — the state dict with what the network was compiled with
  (classes, input shape, channels, size policy, head) and the versions of
  NORD, torch and this format;
* ``model.torchscript.pt`` — a traced TorchScript module (no NORD needed to run it);
* ``model.py`` — readable Python source of an equivalent ``nn.Module``
  (``ExportedNet``) whose ``load()`` reads ``weights_plain.pt``, the same weights
  keyed by its attribute names.

Every export is checked before it is returned: the TorchScript module and the
generated source, loaded with the exported weights, must give the compiled
network's outputs on an example batch. :func:`load_network` rebuilds the
compiled network from the folder.
"""

from __future__ import annotations

import contextlib
import importlib
import keyword
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

import nord
from nord.errors import NordError
from nord.neural_nets.neural_builder import InputMerge, NeuralNet

__all__ = ["export_network", "load_network", "network_source", "ExportError", "ExportedFiles",
           "EXPORT_FORMAT"]

#: bumped whenever the files' layout changes
EXPORT_FORMAT = 1
DESCRIPTOR, WEIGHTS, TORCHSCRIPT, SOURCE, PLAIN_WEIGHTS = (
    "descriptor.json", "weights.pt", "model.torchscript.pt", "model.py", "weights_plain.pt")


class ExportError(NordError):
    """A network that cannot be exported, or an export folder that cannot be read."""


@dataclass(frozen=True)
class ExportedFiles:
    folder: Path
    descriptor: Path
    weights: Path
    torchscript: Path
    source: Path
    plain_weights: Path


# ------------------------------------------------------------------ export
def export_network(net: NeuralNet, descriptor, folder, example: Optional[torch.Tensor] = None,
                   atol: float = 1e-5) -> ExportedFiles:
    """Write the four exports of ``net`` (compiled from ``descriptor``) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = dict(net.build_settings)
    head = settings.pop("head")
    settings["head"] = _reference(head) if head is not None else None
    settings["input_shape"] = list(settings["input_shape"]) if not isinstance(
        settings["input_shape"], int) else settings["input_shape"]
    if example is None:
        example = _example_input(net)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            expected = net(example)
        (folder / DESCRIPTOR).write_text(descriptor.to_json(indent=1))
        # Plain values only, so that torch.load's safe default (weights_only) reads it.
        torch.save({"format": EXPORT_FORMAT, "nord": nord.__version__,
                    "torch": str(torch.__version__), "build": settings,
                    "state_dict": net.state_dict()}, folder / WEIGHTS)
        with _torchscript_quietly():
            traced = torch.jit.trace(net, example)
            traced.save(str(folder / TORCHSCRIPT))
        source, renames = network_source(net)
        (folder / SOURCE).write_text(source)
        plain = {renames[k]: v for k, v in net.state_dict().items()}
        torch.save(plain, folder / PLAIN_WEIGHTS)
        _check(folder, example, expected, atol)
    finally:
        net.train(was_training)
    return ExportedFiles(folder, folder / DESCRIPTOR, folder / WEIGHTS, folder / TORCHSCRIPT,
                         folder / SOURCE, folder / PLAIN_WEIGHTS)


@contextlib.contextmanager
def _torchscript_quietly():
    """TorchScript is what deployment tools read today; torch >= 2.9 warns that it
    is deprecated in favour of ``torch.export``, which need not be heard per export."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


def _example_input(net: NeuralNet) -> torch.Tensor:
    shape = net.build_settings["input_shape"]
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return torch.randn(2, net.build_settings["input_channels"], *shape,
                       generator=torch.Generator().manual_seed(0))


def _check(folder: Path, example, expected, atol: float) -> None:
    with _torchscript_quietly():
        scripted = torch.jit.load(str(folder / TORCHSCRIPT))
    with torch.no_grad():
        got = scripted(example)
    if not torch.allclose(got, expected, atol=atol):
        raise ExportError(f"the TorchScript export in {folder} does not reproduce the network "
                          f"(max difference {float((got - expected).abs().max()):.3g})")
    module = _load_source(folder / SOURCE)
    generated = module.ExportedNet()
    generated.load_state_dict(torch.load(folder / PLAIN_WEIGHTS, weights_only=True))
    generated.eval()
    with torch.no_grad():
        got = generated(example)
    if not torch.allclose(got, expected, atol=atol):
        raise ExportError(f"the Python source export in {folder} does not reproduce the network "
                          f"(max difference {float((got - expected).abs().max()):.3g})")


def _load_source(path: Path):
    spec = importlib.util.spec_from_file_location(f"nord_export_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference(obj) -> str:
    """``module:qualname`` of a module-level function or class."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or "<" in name:
        raise ExportError(f"the network's head {obj!r} is not a module-level function or class, "
                          f"so it cannot be named in an export; define it at module level")
    return f"{module}:{name}"


def _resolve(reference: str):
    module, _, name = reference.partition(":")
    target = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


# ------------------------------------------------------------------ loading
def load_network(folder) -> Tuple[NeuralNet, object]:
    """The compiled network (weights loaded, eval mode) and its descriptor."""
    from nord.neural_nets.neural_descriptor import NeuralDescriptor

    folder = Path(folder)
    for name in (DESCRIPTOR, WEIGHTS):
        if not (folder / name).is_file():
            raise ExportError(f"{folder / name} is missing; {folder} is not a complete export "
                              f"(write one with nord export or export_network)")
    try:
        saved = torch.load(folder / WEIGHTS, weights_only=True, map_location="cpu")
    except Exception as error:
        raise ExportError(f"{folder / WEIGHTS} could not be read ({type(error).__name__}: "
                          f"{error}); export the network again") from error
    if not isinstance(saved, dict) or saved.get("format") != EXPORT_FORMAT:
        found = saved.get("format") if isinstance(saved, dict) else "none"
        raise ExportError(f"{folder / WEIGHTS} has export format {found}, this NORD "
                          f"({nord.__version__}) reads format {EXPORT_FORMAT}; export the "
                          f"network again with this version")
    descriptor = NeuralDescriptor.from_json((folder / DESCRIPTOR).read_text())
    build = dict(saved["build"])
    head = _resolve(build.pop("head")) if build.get("head") else None
    build.pop("head", None)
    shape = build.pop("input_shape")
    net = NeuralNet(descriptor, build.pop("num_classes"), shape, build.pop("input_channels"),
                    head=head, **build)
    net.load_state_dict(saved["state_dict"])
    return net.eval(), descriptor


# ------------------------------------------------------------------ source
class _Writer:
    def __init__(self) -> None:
        self.imports: Dict[str, set] = {}
        self.uses_ordered_dict = False

    def constructor(self, module: nn.Module, where: str) -> str:
        """Python expression that builds an equivalent ``module``."""
        cls = type(module)
        if isinstance(module, nn.Sequential) and cls.forward is nn.Sequential.forward:
            children = list(module.named_children())
            if [name for name, _ in children] == [str(i) for i in range(len(children))]:
                parts = ", ".join(self.constructor(child, f"{where}.{name}")
                                  for name, child in children)
                return f"nn.Sequential({parts})"
            self.uses_ordered_dict = True  # named children keep their weight names
            parts = ", ".join(f"({name!r}, {self.constructor(child, f'{where}.{name}')})"
                              for name, child in children)
            return f"nn.Sequential(OrderedDict([{parts}]))"
        if isinstance(module, nn.ModuleList):
            parts = ", ".join(self.constructor(child, f"{where}.{i}")
                              for i, child in enumerate(module))
            return f"nn.ModuleList([{parts}])"
        text = repr(module)
        if "\n" in text:
            raise ExportError(f"{where} ({cls.__module__}.{cls.__name__}) has no one-line "
                              f"repr to rebuild it from; give it an extra_repr() listing its "
                              f"constructor arguments")
        if getattr(nn, cls.__name__, None) is cls:
            expression = f"nn.{text}"
        else:
            self.imports.setdefault(cls.__module__, set()).add(cls.__name__)
            expression = text
        self._verify(expression, module, where)
        return expression

    def _verify(self, expression: str, module: nn.Module, where: str) -> None:
        namespace = {"nn": nn, "torch": torch}
        for path, names in self.imports.items():
            imported = importlib.import_module(path)
            namespace.update({n: getattr(imported, n) for n in names})
        try:
            rebuilt = eval(expression, namespace)  # noqa: S307 (our own generated text)
        except Exception as error:
            raise ExportError(f"{where}: {expression!r} does not rebuild the layer "
                              f"({type(error).__name__}: {error}); give its class an "
                              f"extra_repr() listing its constructor arguments") from error
        mine = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
        if type(rebuilt) is not type(module) or mine != theirs:
            raise ExportError(f"{where}: {expression!r} builds a different layer")


def _identifier(key: str, taken: set) -> str:
    name = re.sub(r"\W", "_", key).strip("_").lower() or "layer"
    if name[0].isdigit() or keyword.iskeyword(name) or name in ("forward", "training", "x",
                                                                  "load", "torch", "nn", "F"):
        name = f"l_{name}"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def network_source(net: NeuralNet, class_name: str = "ExportedNet") -> Tuple[str, Dict[str, str]]:
    """Readable source of a module equivalent to ``net``, and the state-dict key renames."""
    writer, taken = _Writer(), {"head"}
    init, body, renames = [], [], {}
    names: Dict[int, str] = {0: "x"}
    for (key, merge_key, sources, slot), node in zip(net._steps, net.plan.nodes):
        attr = _identifier(key, taken)
        init.append(f"        self.{attr} = {writer.constructor(net.layers[key], node.name)}"
                    f"  # {node.name}: {node.out_shape}")
        _rename(renames, f"layers.{key}.", f"{attr}.", net.layers[key])
        inputs = [names[s] for s in sources]
        if merge_key is None:
            value = inputs[0]
        else:
            value = _merge_source(writer, net.merges[merge_key], inputs, attr, init, renames,
                                  merge_key, taken)
        names[slot] = attr
        body.append(f"        {attr} = self.{attr}({value})")
    out = names[net._output_slot]
    if net.head is not None:
        init.append(f"        self.head = {writer.constructor(net.head, 'head')}")
        _rename(renames, "head.", "head.", net.head)
        body.append(f"        return self.head(torch.flatten({out}, 1))")
    else:
        body.append(f"        return {out}")
    imports = (["from collections import OrderedDict", ""] if writer.uses_ordered_dict else [])
    imports += ["import torch", "import torch.nn as nn", "import torch.nn.functional as F"]
    imports += [f"from {module} import {', '.join(sorted(names_))}"
                for module, names_ in sorted(writer.imports.items())]
    header = (f'"""{class_name}: exported by NORD {nord.__version__} (torch {torch.__version__}).\n\n'
              f"Equivalent to the compiled network; load the weights with\n"
              f"``{class_name}.load('weights_plain.pt')``.\n\"\"\"\n")
    source = "\n".join([header] + imports + ["", "", f"class {class_name}(nn.Module):",
                                              "    def __init__(self):",
                                              "        super().__init__()"] + init +
                       ["", "    def forward(self, x):"] + body +
                       ["", "    @classmethod", "    def load(cls, path='weights_plain.pt'):",
                        "        net = cls()",
                        "        net.load_state_dict(torch.load(path, weights_only=True))",
                        "        return net.eval()", ""])
    missing = set(net.state_dict()) - set(renames)
    if missing:
        raise ExportError(f"no source for the weights {sorted(missing)[:5]}")
    return source, renames


def _rename(renames: Dict[str, str], old: str, new: str, module: nn.Module) -> None:
    for key in module.state_dict():
        renames[old + key] = new + key


def _merge_source(writer: _Writer, merge: InputMerge, inputs: List[str], attr: str,
                  init: List[str], renames: Dict[str, str], merge_key: str, taken: set) -> str:
    parts = []
    for i, (name, flat, size, mode, project) in enumerate(zip(
            inputs, merge.flatten, merge.sizes, merge.modes, merge.projections)):
        expression = f"torch.flatten({name}, 1)" if flat else name
        if size is not None:
            expression = f"F.interpolate({expression}, size={tuple(size)}, mode={mode!r})"
        if not isinstance(project, nn.Identity):
            projection = _identifier(f"{attr}_in{i}", taken)
            init.append(f"        self.{projection} = {writer.constructor(project, projection)}")
            _rename(renames, f"merges.{merge_key}.projections.{i}.", f"{projection}.", project)
            expression = f"self.{projection}({expression})"
        parts.append(expression)
    if len(parts) == 1:
        return parts[0]
    if merge.concat:
        return f"torch.cat([{', '.join(parts)}], dim=1)"
    return " + ".join(parts)
