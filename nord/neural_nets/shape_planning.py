"""Pure shape planning: what every layer of a compiled descriptor receives.

:func:`plan_network` walks the active part of a descriptor in topological
order and decides, from static shape rules alone (no forward pass, no data),
each layer's input shape, the parameters inferred from the graph
(``in_channels``, ``in_features``, ``num_features``) and how the inputs of a
multi-input layer are reconciled. Three policies exist (thesis §3.2.1):

``minimum_viable_size`` (default)
    inputs are interpolated to the smallest height/width among them, but never
    below what the layer's kernel needs; inputs with more channels than the
    smallest are projected by a 1×1 convolution; the inputs are summed.
``maximum_viable_size``
    inputs are interpolated up to the largest height/width and concatenated
    along the channel dimension.
``fixed_channels``
    *dimension keeping*: every layer with a channel parameter (``out_channels``)
    gets the same ``channels``; inputs are then reconciled as in
    ``minimum_viable_size``.
``sum_to_widest`` (NORD's, for graph networks)
    as ``minimum_viable_size``, but inputs with fewer channels than the widest
    are projected up to it before the sum: in a chapter-7 ranker a skip from
    the narrow one-hot input must not squeeze a wide GraphSAGE layer.

A layer whose single input is smaller than its kernel needs is interpolated
up to that size too, so every valid descriptor compiles.

No planned tensor may hold more than :data:`MAX_TENSOR_ELEMENTS` values per
sample (:class:`~nord.errors.NetworkTooLargeError` otherwise), so an absurd
input shape is refused before anything is allocated.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from nord.errors import CompilationError, NetworkTooLargeError, ShapeError
from nord.neural_nets.graph import active_nodes, predecessors, topological_order
from nord.neural_nets.layers import LayerRegistry, default_registry
from nord.neural_nets.tensor_shape import Shape

__all__ = ["POLICIES", "DATA", "InputPlan", "NodePlan", "NetworkPlan", "plan_network", "data_shape",
           "MAX_TENSOR_ELEMENTS", "check_size"]

POLICIES = ("minimum_viable_size", "maximum_viable_size", "fixed_channels", "sum_to_widest")
DATA = "<data>"  # the source name of the network's input tensor
#: most values one planned tensor (or one layer's weights) may hold per sample: 8 GiB
#: of float32, past which allocation fails or exhausts memory
MAX_TENSOR_ELEMENTS = 2 ** 31


@dataclass(frozen=True)
class InputPlan:
    """How one incoming tensor is adapted before it reaches a layer."""

    source: str                      # a layer name, or DATA
    shape: Shape                     # what the source produces
    flatten: bool = False            # flatten first (inputs of different ranks)
    resize_to: Optional[Tuple[int, ...]] = None  # interpolate to this extent
    project_to: Optional[int] = None  # 1×1 conv (or linear) to this many channels


@dataclass(frozen=True)
class NodePlan:
    """One layer of the compiled network."""

    name: str
    layer: Any                       # the descriptor's layer type
    params: Dict[str, Any]           # completed constructor parameters
    inputs: Tuple[InputPlan, ...]
    merge: str                       # 'sum' or 'concat' (used with several inputs)
    in_shape: Shape
    out_shape: Shape

    @property
    def needs_merge(self) -> bool:
        """True when the inputs need more than passing one tensor through."""
        return len(self.inputs) > 1 or any(
            i.flatten or i.resize_to is not None or i.project_to is not None
            for i in self.inputs)


@dataclass(frozen=True)
class NetworkPlan:
    """The whole compiled network, in execution order."""

    data_shape: Shape
    nodes: Tuple[NodePlan, ...]
    output: str
    output_shape: Shape
    pruned: Tuple[str, ...]          # inactive layers left out
    policy: str


def data_shape(input_shape: Union[int, Sequence[int]], input_channels: int) -> Shape:
    """The :class:`Shape` of one sample: ``input_shape`` is ``(H, W)``, ``(L,)`` or ``L``."""
    spatial = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    if len(spatial) > 2 or any(int(v) < 1 for v in spatial):
        raise CompilationError(f"input_shape must be (height, width), (length,) or () "
                               f"with positive sizes, got {input_shape!r}")
    if int(input_channels) < 1:
        raise CompilationError(f"input_channels must be positive, got {input_channels!r}")
    shape = Shape(int(input_channels), tuple(int(v) for v in spatial))
    check_size(shape.numel, f"one input sample ({shape}: input_shape {input_shape!r}, "
                            f"{input_channels} channel(s))", "use a smaller input_shape "
                            "(resize the data)")
    return shape


def check_size(values: int, what: str, fix: str) -> None:
    """Raise :class:`NetworkTooLargeError` if ``values`` exceeds :data:`MAX_TENSOR_ELEMENTS`."""
    if values > MAX_TENSOR_ELEMENTS:
        raise NetworkTooLargeError(
            f"{what} would hold {values:,} values ({values * 4 / 2 ** 30:,.0f} GiB "
            f"as float32), more than the {MAX_TENSOR_ELEMENTS:,} NORD allocates; {fix}")


def plan_network(descriptor, input_shape: Union[int, Sequence[int]], input_channels: int,
                 *, policy: str = "minimum_viable_size", channels: Optional[int] = None,
                 registry: Optional[LayerRegistry] = None) -> NetworkPlan:
    """Plan the network a descriptor compiles to (validates it first)."""
    if policy not in POLICIES:
        raise CompilationError(f"unknown size policy {policy!r}; choose one of {POLICIES}")
    if policy == "fixed_channels" and (channels is None or int(channels) < 1):
        raise CompilationError("the fixed_channels policy needs channels=C (a positive "
                               "channel count every layer keeps)")
    registry = registry or default_registry()
    descriptor.validate(registry)
    data = data_shape(input_shape, input_channels)

    active = active_nodes(descriptor)
    order = topological_order(descriptor, active)
    keep = set(active)
    sources = {name: [s for s in preds if s in keep]
               for name, preds in predecessors(descriptor).items() if name in keep}
    sources[descriptor.first_layer] = [DATA]

    shapes: Dict[str, Shape] = {DATA: data}
    nodes: List[NodePlan] = []
    for name in order:
        node = _plan_node(name, descriptor.layers[name], sources[name], shapes,
                          policy, channels, registry)
        shapes[name] = node.out_shape
        nodes.append(node)
    pruned = tuple(n for n in descriptor.layers if n not in keep)
    return NetworkPlan(data, tuple(nodes), descriptor.last_layer,
                       shapes[descriptor.last_layer], pruned, policy)


def _plan_node(name: str, spec, source_names: List[str], shapes: Dict[str, Shape],
               policy: str, channels: Optional[int], registry: LayerRegistry) -> NodePlan:
    kind = registry.lookup(spec.layer, name)
    params = dict(spec.params)
    if policy == "fixed_channels" and kind.channel_param:
        params[kind.channel_param] = int(channels)
    try:
        inputs, in_shape, merge = _reconcile(
            [(s, shapes[s]) for s in source_names], kind, params, policy)
        kind.check_rank(name, in_shape)
        params = kind.complete_params(params, in_shape)
        out_shape = kind.output_shape(params, in_shape)
    except ShapeError as error:
        if f"{name!r}" in str(error):
            raise
        raise ShapeError(f"layer {name!r}: {error}") from error
    except KeyError as error:
        missing = error.args[0] if error.args else "?"
        close = difflib.get_close_matches(str(missing), [str(k) for k in spec.params], n=1)
        hint = f" (is {close[0]!r} a misspelling of it?)" if close else ""
        raise CompilationError(
            f"layer {name!r} ({kind.name}) needs the parameter {missing!r}, which its "
            f"parameters {spec.params} lack{hint}") from error
    except (TypeError, ValueError, ArithmeticError) as error:
        raise CompilationError(
            f"layer {name!r} ({kind.name}) has unusable parameters {spec.params}: "
            f"{type(error).__name__}: {error}") from error
    if any(v < 1 for v in out_shape.spatial) or out_shape.channels < 1:
        raise ShapeError(f"layer {name!r} ({kind.name}) turns input {in_shape} into an "
                         f"empty output {out_shape}; use a smaller kernel or stride, "
                         f"or more padding")
    fix = "use a smaller input_shape, fewer channels, or downsample earlier"
    check_size(in_shape.numel, f"the input of layer {name!r} ({in_shape}) per sample", fix)
    check_size(out_shape.numel, f"the output of layer {name!r} ({out_shape}) per sample", fix)
    for plan in inputs:
        if plan.project_to is not None:  # a 1x1 convolution, or a linear layer if flattened
            width = plan.shape.numel if plan.flatten else plan.shape.channels
            check_size(width * plan.project_to, f"the weights projecting {plan.source!r} "
                       f"into layer {name!r}", fix)
    return NodePlan(name, spec.layer, params, inputs, merge, in_shape, out_shape)


def _reconcile(incoming: List[Tuple[str, Shape]], kind, params: Dict[str, Any],
               policy: str) -> Tuple[Tuple[InputPlan, ...], Shape, str]:
    """Input plans, the shape the layer receives, and the merge mode."""
    ranks = {shape.rank for _, shape in incoming}
    flatten = len(ranks) > 1
    shapes = [shape.flattened() if flatten else shape for _, shape in incoming]
    rank = shapes[0].rank
    need = kind.min_spatial(params, rank) if rank else ()
    merge = kind.merge or ("concat" if policy == "maximum_viable_size" else "sum")

    if len(shapes) == 1:
        spatial = tuple(max(n, m) for n, m in zip(shapes[0].spatial, need))
        target = Shape(shapes[0].channels, spatial)
        resize = spatial if spatial != shapes[0].spatial else None
        plan = InputPlan(incoming[0][0], incoming[0][1], flatten, resize, None)
        return (plan,), target, merge

    pick = max if merge == "concat" else min
    spatial = tuple(max(pick(s.spatial[d] for s in shapes), need[d]) for d in range(rank))
    if merge == "concat":
        target = Shape(sum(s.channels for s in shapes), spatial)
    elif policy == "sum_to_widest":
        target = Shape(max(s.channels for s in shapes), spatial)
    else:
        target = Shape(min(s.channels for s in shapes), spatial)
    plans = []
    for (source, original), shape in zip(incoming, shapes):
        resize = spatial if shape.spatial != spatial else None
        project = (target.channels if merge == "sum" and shape.channels != target.channels
                   else None)
        plans.append(InputPlan(source, original, flatten, resize, project))
    return tuple(plans), target, merge
