"""Readable Python source of a compiled network (the ``model.py`` of an export).

The source is built from the layers' own ``repr`` text, but only after that
text has been parsed and found to be a plain constructor call (``nn.X(...)``
or a class imported by name) whose arguments are Python literals; the layer
is then rebuilt from the parsed call, never with ``eval``. Layer names from
the descriptor appear only inside ``repr`` literals in comments, and
attribute names are ASCII identifiers derived from them, so no text from a
descriptor file can become code (see :func:`network_source`).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import keyword
import re
from typing import Any, Dict, List, Tuple

import torch
import torch.nn as nn

import nord
from nord.errors import ExportError
from nord.neural_nets.neural_builder import InputMerge, NeuralNet

__all__ = ["network_source", "ExportError"]

_MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _is_identifier(name: Any) -> bool:
    return (isinstance(name, str) and name.isascii() and name.isidentifier()
            and not keyword.iskeyword(name))


class _UnsafeExpression(ValueError):
    """A layer's repr is more than a constructor call with literal arguments."""


def _rebuild(expression: str, namespace: Dict[str, Any]) -> nn.Module:
    """The module a constructor call expression builds, without ``eval``."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise _UnsafeExpression(f"it does not parse ({error.msg})") from error
    return _call(tree.body, namespace)


def _call(node: ast.AST, namespace: Dict[str, Any]) -> nn.Module:
    if not isinstance(node, ast.Call):
        raise _UnsafeExpression(f"{type(node).__name__} is not a constructor call")
    func = node.func
    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and func.value.id == "nn"):
        cls = getattr(nn, func.attr, None)
    elif isinstance(func, ast.Name):
        cls = namespace.get(func.id)
    else:
        raise _UnsafeExpression("the called name is neither nn.X nor an imported class")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise _UnsafeExpression(f"{ast.unparse(func)} is not a torch.nn.Module class")
    args, kwargs = [], {}
    for arg in node.args:
        args.append(_argument(arg, namespace))
    for item in node.keywords:
        if item.arg is None:
            raise _UnsafeExpression("it unpacks **keyword arguments")
        kwargs[item.arg] = _argument(item.value, namespace)
    return cls(*args, **kwargs)


def _argument(node: ast.AST, namespace: Dict[str, Any]) -> Any:
    if isinstance(node, ast.Call):
        return _call(node, namespace)
    try:
        return ast.literal_eval(node)
    except ValueError as error:  # a name, an operator, a starred argument, ...
        raise _UnsafeExpression(f"argument {ast.unparse(node)!r} is not a Python "
                                f"literal") from error


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
        text = _completed_pool_repr(module, _quoted_conv_strings(module, repr(module)))
        if "\n" in text:
            raise ExportError(f"{where!r} ({cls.__module__}.{cls.__name__}) has no one-line "
                              f"repr to rebuild it from; give it an extra_repr() listing its "
                              f"constructor arguments")
        if getattr(nn, cls.__name__, None) is cls:
            expression = f"nn.{text}"
        else:
            if not (_MODULE_PATH.match(cls.__module__) and _is_identifier(cls.__name__)):
                raise ExportError(f"{where!r}: class {cls.__module__}.{cls.__name__} cannot "
                                  f"be imported by name; define it at module level")
            self.imports.setdefault(cls.__module__, set()).add(cls.__name__)
            expression = text
        self._verify(expression, module, where)
        return expression

    def _verify(self, expression: str, module: nn.Module, where: str) -> None:
        namespace: Dict[str, Any] = {}
        for path, names in self.imports.items():
            imported = importlib.import_module(path)
            namespace.update({n: getattr(imported, n) for n in names})
        try:
            rebuilt = _rebuild(expression, namespace)
        except Exception as error:
            raise ExportError(f"{where!r}: {expression!r} does not rebuild the layer "
                              f"({type(error).__name__}: {error}); give its class an "
                              f"extra_repr() listing its constructor arguments as Python "
                              f"literals") from error
        mine = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
        if type(rebuilt) is not type(module) or mine != theirs:
            raise ExportError(f"{where!r}: {expression!r} builds a different layer")


#: torch's convolution classes (their subclasses, the lazy ones included, print alike)
_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d,
                 nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _quoted_conv_strings(module: nn.Module, text: str) -> str:
    """torch's convolutions print ``padding=same`` and ``padding_mode=reflect``
    unquoted; quote them (torch allows only a few such words)."""
    if isinstance(module, _CONVOLUTIONS):
        for name in ("padding", "padding_mode"):
            value = getattr(module, name)
            if isinstance(value, str) and value.isidentifier():
                text = text.replace(f"{name}={value}", f"{name}={value!r}", 1)
    return text


_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)


def _completed_pool_repr(module: nn.Module, text: str) -> str:
    """torch's average pools leave ``ceil_mode``, ``count_include_pad`` and
    ``divisor_override`` out of their repr; add them back."""
    if not isinstance(module, _AVG_POOLS) or not text.endswith(")"):
        return text
    extra = [f"{name}={getattr(module, name)!r}"
             for name in ("ceil_mode", "count_include_pad", "divisor_override")
             if hasattr(module, name) and f"{name}=" not in text]
    return text[:-1] + "".join(f", {item}" for item in extra) + ")"


def _identifier(key: str, taken: set) -> str:
    """An ASCII attribute name for a layer key, unique among ``taken``."""
    name = re.sub(r"[^0-9A-Za-z]+", "_", key).strip("_").lower()[:40].rstrip("_") or "layer"
    reserved = ("forward", "training", "x", "load", "torch", "nn", "F")
    if name[0].isdigit() or keyword.iskeyword(name) or name in reserved:
        name = f"l_{name}"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def network_source(net: NeuralNet, class_name: str = "ExportedNet") -> Tuple[str, Dict[str, str]]:
    """Readable source of a module equivalent to ``net``, and the state-dict key renames.

    Descriptor text (layer names) appears only as ``repr`` literals in comments.
    """
    if not _is_identifier(class_name):
        raise ExportError(f"class_name must be an ASCII Python identifier, got {class_name!r}")
    writer, taken = _Writer(), {"head"}
    init, body, renames = [], [], {}
    names: Dict[int, str] = {0: "x"}
    for (key, merge_key, sources, slot), node in zip(net.steps, net.plan.nodes):
        attr = _identifier(key, taken)
        init.append(f"        self.{attr} = {writer.constructor(net.layers[key], node.name)}"
                    f"  # {node.name!r}: {node.out_shape}")
        _rename(renames, f"layers.{key}.", f"{attr}.", net.layers[key])
        inputs = [names[s] for s in sources]
        if merge_key is None:
            value = inputs[0]
        else:
            value = _merge_source(writer, net.merges[merge_key], inputs, attr, init, renames,
                                  merge_key, taken)
        names[slot] = attr
        body.append(f"        {attr} = self.{attr}({value})")
    out = names[net.output_slot]
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
    header = (f'"""{class_name}: exported by NORD {nord.__version__} '
              f'(torch {torch.__version__}).\n\n'
              f"Equivalent to the compiled network; load the weights with\n"
              f"``{class_name}.load('weights_plain.pt')``.\n\"\"\"\n")
    source = "\n".join([header] + imports +
                       ["", "", f"class {class_name}(nn.Module):", "    def __init__(self):",
                        "        super().__init__()"] + init +
                       ["", "    def forward(self, x):"] + body +
                       ["", "    @classmethod", "    def load(cls, path='weights_plain.pt'):",
                        "        net = cls()",
                        "        net.load_state_dict(torch.load(path, weights_only=True))",
                        "        return net.eval()", ""])
    missing = set(net.state_dict()) - set(renames)
    if missing:
        raise ExportError(f"no source for the weights {sorted(missing)[:5]}")
    _check_structure(source, class_name)
    return source, renames


def _check_structure(source: str, class_name: str) -> None:
    """The source is imports and one class of three methods, nothing else."""
    tree = ast.parse(source)
    body = tree.body[1:]  # after the docstring
    classes = [node for node in body if isinstance(node, ast.ClassDef)]
    others = [node for node in body if not isinstance(node, (ast.Import, ast.ImportFrom,
                                                             ast.ClassDef))]
    methods = [node.name for node in classes[0].body] if len(classes) == 1 else []
    if others or len(classes) != 1 or classes[0].name != class_name or \
            methods != ["__init__", "forward", "load"]:
        raise ExportError("the generated source is not one class with __init__, forward "
                          "and load; please report this as a NORD bug")


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
            expression = (f"F.interpolate({expression}, size={tuple(int(v) for v in size)}, "
                          f"mode={mode!r})")
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
