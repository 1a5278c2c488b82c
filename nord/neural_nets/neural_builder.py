"""The compiler: :class:`NeuralNet` turns a descriptor into an ``nn.Module``.

Example::

    net = NeuralNet(descriptor, 10, (28, 28), 1)            # Fashion-MNIST sized
    logits = net(torch.randn(8, 1, 28, 28))                 # (8, 10)
    print(net.summary())

Layers run in topological order of the descriptor's active part (inactive
layers are pruned, see :func:`~nord.neural_nets.shape_planning.plan_network`
for the size policies); the output layer's tensor is flattened and passed to
the dense head.
"""

from __future__ import annotations

import keyword
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from nord.errors import CompilationError
from nord.neural_nets.layers import LayerRegistry, default_registry
from nord.neural_nets.shape_planning import (DATA, InputPlan, NetworkPlan, check_size,
                                             plan_network)
from nord.neural_nets.tensor_shape import Shape

__all__ = ["NeuralNet", "InputMerge", "default_head", "HeadFactory"]

HeadFactory = Callable[[int, int], nn.Module]


def default_head(in_features: int, num_classes: int) -> nn.Module:
    """The head used when none is given: one linear layer to the outputs."""
    return nn.Linear(in_features, num_classes)


def _projection(rank: int, in_channels: int, out_channels: int) -> nn.Module:
    if rank == 0:
        return nn.Linear(in_channels, out_channels, bias=False)
    conv = nn.Conv1d if rank == 1 else nn.Conv2d
    return conv(in_channels, out_channels, kernel_size=1, bias=False)


class InputMerge(nn.Module):
    """Brings the inputs of one layer to a common shape and combines them.

    Each input is, in this order and where its :class:`InputPlan` asks:
    flattened, interpolated to the planned height/width, projected by a 1×1
    convolution to the planned channel count. Then they are summed, or
    concatenated along channels.
    """

    def __init__(self, inputs: Sequence[InputPlan], merge: str, interpolation: str):
        super().__init__()
        self.flatten = [p.flatten for p in inputs]
        self.sizes = [p.resize_to for p in inputs]
        self.concat = merge == "concat"
        self.modes = [_interpolation_mode(interpolation, len(p.resize_to or ())) for p in inputs]
        self.projections = nn.ModuleList(
            nn.Identity() if p.project_to is None else
            _projection(0 if p.flatten else p.shape.rank,
                        p.shape.numel if p.flatten else p.shape.channels, p.project_to)
            for p in inputs)

    def forward(self, tensors: List[torch.Tensor]) -> torch.Tensor:
        parts = []
        for x, flat, size, mode, project in zip(tensors, self.flatten, self.sizes,
                                                self.modes, self.projections):
            if flat:
                x = torch.flatten(x, 1)
            if size is not None:
                x = F.interpolate(x, size=size, mode=mode)
            parts.append(project(x))
        if len(parts) == 1:
            return parts[0]
        if self.concat:
            return torch.cat(parts, dim=1)
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total


def _interpolation_mode(interpolation: str, rank: int) -> str:
    if interpolation == "nearest":
        return "nearest"
    if interpolation == "linear":
        return {1: "linear", 2: "bilinear"}.get(rank, "nearest")
    raise CompilationError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")


_EMPTY_MODULE_DICT = nn.ModuleDict()


def _module_key(name: str, taken: set) -> str:
    """A ModuleDict key for a layer name: no dots, not an attribute of ModuleDict,
    not a Python keyword (TorchScript cannot load back a module named ``in``)."""
    key = re.sub(r"[^0-9A-Za-z_]", "_", name) or "layer"
    if key[0].isdigit() or keyword.iskeyword(key):
        key = "L" + key
    base, n = key, 1
    while key in taken or hasattr(_EMPTY_MODULE_DICT, key):  # instance attrs too ('training')
        n += 1
        key = f"{base}_{n}"
    taken.add(key)
    return key


#: layers taking at least this many values (per sample) are first built on the meta
#: device, to refuse weights too large to allocate before allocating them
_PROBE_FROM = 2 ** 20


def _check_weights(build: Callable[[], nn.Module], what: str) -> None:
    """Build a module on the meta device (no memory, no random numbers) and
    refuse it if its weights exceed what :func:`check_size` allows."""
    try:
        with torch.device("meta"):
            module = build()
    except Exception:  # noqa: BLE001 - the real build reports its own error next
        return
    weights = sum(t.numel() for t in module.state_dict().values())
    check_size(weights, f"the weights of {what}",
               "use a smaller input_shape, fewer channels, or downsample before it")


class NeuralNet(nn.Module):
    """A network compiled from a :class:`~nord.neural_nets.NeuralDescriptor`.

    Parameters
    ----------
    descriptor : NeuralDescriptor
        The architecture; it is validated first (typed errors on problems).
    num_classes : int or None
        Outputs of the dense head; ``None`` builds no head and returns the
        output layer's feature map.
    input_shape : (H, W), (L,) or L
        Spatial extent of one input sample.
    input_channels : int
        Channels of one input sample.
    policy : str
        ``'minimum_viable_size'`` (default), ``'maximum_viable_size'``,
        ``'fixed_channels'`` (with ``channels=C``) or ``'sum_to_widest'``; see
        :mod:`~nord.neural_nets.shape_planning`.
    head : callable(in_features, num_classes) -> nn.Module
        The dense head (a dataset configuration supplies it);
        :func:`default_head` when omitted.
    interpolation : str
        ``'linear'`` (bilinear for images, default) or ``'nearest'``.
    registry : LayerRegistry
        Layer rules; the default registry when omitted.
    """

    def __init__(self, descriptor, num_classes: Optional[int],
                 input_shape: Union[int, Sequence[int]], input_channels: int, *,
                 policy: str = "minimum_viable_size", channels: Optional[int] = None,
                 head: Optional[HeadFactory] = None, interpolation: str = "linear",
                 registry: Optional[LayerRegistry] = None):
        super().__init__()
        if num_classes is not None and int(num_classes) < 1:
            raise CompilationError(f"num_classes must be at least 1 (or None for no head), "
                                   f"got {num_classes}")
        registry = registry or default_registry()
        #: what the network was compiled with (export rebuilds it from this)
        self.build_settings = {"num_classes": num_classes, "input_shape": input_shape,
                               "input_channels": input_channels, "policy": policy,
                               "channels": channels, "head": head,
                               "interpolation": interpolation}
        self.plan: NetworkPlan = plan_network(descriptor, input_shape, input_channels,
                                              policy=policy, channels=channels,
                                              registry=registry)
        self.layers = nn.ModuleDict()
        self.merges = nn.ModuleDict()
        slots: Dict[str, int] = {DATA: 0}
        taken: set = set()
        steps = []
        for node in self.plan.nodes:
            key = _module_key(node.name, taken)
            kind = registry.lookup(node.layer, node.name)
            if node.in_shape.numel >= _PROBE_FROM:
                _check_weights(lambda: kind.build(node.params, node.in_shape),
                               f"layer {node.name!r} ({kind.name})")
            try:
                self.layers[key] = kind.build(node.params, node.in_shape)
            except Exception as error:
                raise CompilationError(
                    f"layer {node.name!r} ({kind.name}) could not be built with "
                    f"{node.params}: {type(error).__name__}: {error}") from error
            merge_key = None
            if node.needs_merge:
                merge_key = key
                self.merges[key] = InputMerge(node.inputs, node.merge, interpolation)
            slots[node.name] = len(slots)
            steps.append((key, merge_key, tuple(slots[i.source] for i in node.inputs),
                          slots[node.name]))
        self._steps: Tuple[Tuple[str, Optional[str], Tuple[int, ...], int], ...] = tuple(steps)
        self._num_slots = len(slots)
        self._output_slot = slots[self.plan.output]
        self.num_classes = num_classes
        self.head = None
        if num_classes is not None:
            features = self.plan.output_shape.numel
            if features * int(num_classes) >= _PROBE_FROM:
                _check_weights(lambda: (head or default_head)(features, int(num_classes)),
                               f"the head ({features:,} inputs, {num_classes} outputs)")
            self.head = (head or default_head)(features, int(num_classes))

    @property
    def output_shape(self) -> Shape:
        """Shape of the output layer's tensor (before the head)."""
        return self.plan.output_shape

    @property
    def steps(self) -> Tuple[Tuple[str, Optional[str], Tuple[int, ...], int], ...]:
        """The forward pass, one ``(key, merge_key, sources, slot)`` per layer, in
        the order of ``plan.nodes``.

        Tensors live in numbered slots; slot 0 holds the network's input. Each
        step reads the slots in ``sources`` (combined by ``merges[merge_key]``
        when ``merge_key`` is not ``None``, else the one source as it is), runs
        ``layers[key]`` and writes the result to ``slot``. Read-only.
        """
        return self._steps

    def layer(self, name: str) -> nn.Module:
        """The compiled module of the descriptor's layer ``name``."""
        return self.layers[self._step_of(name)[0]]

    def merge(self, name: str) -> Optional[nn.Module]:
        """The :class:`InputMerge` in front of layer ``name`` (``None`` where its one
        input passes as it is)."""
        merge_key = self._step_of(name)[1]
        return None if merge_key is None else self.merges[merge_key]

    def _step_of(self, name: str):
        for step, node in zip(self._steps, self.plan.nodes):
            if node.name == str(name):
                return step
        raise CompilationError(f"no compiled layer {name!r} (pruned, or not in the "
                               f"descriptor); compiled: "
                               f"{', '.join(n.name for n in self.plan.nodes[:20])}"
                               f"{', ...' if len(self.plan.nodes) > 20 else ''}")

    @property
    def output_slot(self) -> int:
        """The slot (see :attr:`steps`) holding the output layer's tensor."""
        return self._output_slot

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: List[Optional[torch.Tensor]] = [None] * self._num_slots
        outs[0] = x
        layers, merges = self.layers, self.merges
        for key, merge_key, sources, slot in self._steps:
            if merge_key is None:
                h = outs[sources[0]]
            else:
                h = merges[merge_key]([outs[s] for s in sources])
            outs[slot] = layers[key](h)
        out = outs[self._output_slot]
        if self.head is None:
            return out
        return self.head(torch.flatten(out, 1))

    def summary(self) -> str:
        """A table of layers: input shape → output shape and parameter count."""
        rows = [("layer", "type", "input", "output", "params")]
        for (key, merge_key, _, _), node in zip(self._steps, self.plan.nodes):
            count = sum(p.numel() for p in self.layers[key].parameters())
            if merge_key is not None:
                count += sum(p.numel() for p in self.merges[merge_key].parameters())
            layer = node.layer if isinstance(node.layer, str) else node.layer.__name__
            sources = ", ".join(str(i.shape) for i in node.inputs)
            rows.append((node.name, layer, sources, str(node.out_shape), f"{count:,}"))
        if self.head is not None:
            rows.append(("(head)", type(self.head).__name__, str(self.plan.output_shape.numel),
                         str(self.num_classes),
                         f"{sum(p.numel() for p in self.head.parameters()):,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        total = sum(p.numel() for p in self.parameters())
        pruned = f"; pruned: {', '.join(self.plan.pruned)}" if self.plan.pruned else ""
        return "\n".join(lines + [f"total parameters: {total:,}{pruned}"])
