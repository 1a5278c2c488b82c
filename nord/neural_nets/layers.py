"""The layer registry: every layer type a descriptor may name, and its rules.

A descriptor node's layer is either a ``torch.nn.Module`` subclass or an op
string. The registry tells the compiler, for each of them, how to build the
module for a given input shape, what shape comes out (a pure rule, no forward
pass), the smallest spatial input the layer can take, and which parameter
receives the inferred input size (``in_channels``, ``num_features``, ...).

Custom layers register through :func:`register_layer` (classes) or
:func:`register_op` (op strings)::

    @register_layer(output_shape=same_shape)
    class WeightScaling(nn.Module): ...

Unknown op strings are answered with close matches. A ``nn.Module`` subclass
that is not registered still compiles: its output shape is found with meta
tensors (no real data, no computation), and its parameters are used as given.
A descriptor *file* may name only registered classes, ``torch.nn`` classes and
NORD's own, so register a class of your own before reading files that use it.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from nord.errors import InvalidArgumentError, SettingsError, ShapeError, UnknownOpError
from nord.neural_nets.darts_ops import (FactorizedReduce, Zero, check_stride, register_darts_ops,
                                        strided_shape)
from nord.neural_nets.graph_layers import register_graph_ops
from nord.neural_nets.tensor_shape import Shape

__all__ = [
    "LayerKind",
    "LayerRegistry",
    "default_registry",
    "register_layer",
    "register_op",
    "list_layers",
    "same_shape",
    "WeightScaling",
    "Zero",
    "ConvBnRelu",
    "ReluConvBn",
]

ShapeRule = Callable[[Dict[str, Any], Shape], Shape]
MinSpatialRule = Callable[[Dict[str, Any], int], Tuple[int, ...]]
Builder = Callable[[Dict[str, Any], Shape], nn.Module]


@dataclass(frozen=True)
class LayerKind:
    """What the compiler needs to know about one layer type.

    * ``build(params, in_shape)`` → the module (params already completed);
    * ``output_shape(params, in_shape)`` → :class:`Shape` (pure);
    * ``min_spatial(params, rank)`` → smallest input extent per dimension;
    * ``input_param``: the parameter set to the inferred input size;
    * ``channel_param``: the parameter the *fixed channels* policy overrides;
    * ``ranks``: accepted spatial ranks (``None``: any);
    * ``merge``: how the layer combines several inputs whatever the size policy
      (``'concat'`` or ``'sum'``; ``None``: the policy decides).
    """

    key: Union[str, type]
    build: Builder
    output_shape: ShapeRule
    min_spatial: MinSpatialRule = lambda params, rank: (1,) * rank
    input_param: Optional[str] = None
    channel_param: Optional[str] = None
    ranks: Optional[FrozenSet[int]] = None
    description: str = ""
    merge: Optional[str] = None

    @property
    def name(self) -> str:
        return self.key if isinstance(self.key, str) else self.key.__name__

    def complete_params(self, params: Dict[str, Any], in_shape: Shape) -> Dict[str, Any]:
        """``params`` with the inferred input size filled in (and never in-place)."""
        completed = dict(params)
        if self.input_param is not None:
            completed[self.input_param] = in_shape.channels
        if completed.get("inplace"):
            # An in-place layer would overwrite a tensor other layers still read.
            completed["inplace"] = False
        return completed

    def check_rank(self, layer_name: str, in_shape: Shape) -> None:
        if self.ranks is not None and in_shape.rank not in self.ranks:
            wanted = " or ".join(_RANK_WORDS[r] for r in sorted(self.ranks))
            raise ShapeError(
                f"layer {layer_name!r} ({self.name}) takes {wanted} input, but "
                f"receives {_RANK_WORDS[in_shape.rank]} input of shape {in_shape}; "
                f"use the {_rank_hint(self.name, in_shape.rank)} variant or "
                f"reshape before it")


_RANK_WORDS = {0: "flat (features)", 1: "1-D (channels x length)", 2: "2-D (channels x height x width)"}


def _rank_hint(name: str, rank: int) -> str:
    for suffix in ("1d", "2d"):
        if name.endswith(suffix):
            return name[:-2] + ("1d" if rank <= 1 else "2d")
    return "matching"


# ---------------------------------------------------------------------- registry
class LayerRegistry:
    """Maps layer classes and op strings to :class:`LayerKind` rules."""

    def __init__(self) -> None:
        self._kinds: Dict[Union[str, type], LayerKind] = {}

    def add(self, kind: LayerKind, *, replace: bool = False) -> LayerKind:
        if kind.key in self._kinds and not replace:
            raise SettingsError(f"layer {kind.name!r} is already registered; pass "
                                f"replace=True to override it")
        self._kinds[kind.key] = kind
        return kind

    def copy(self) -> "LayerRegistry":
        new = LayerRegistry()
        new._kinds = dict(self._kinds)
        return new

    def __contains__(self, layer: Any) -> bool:
        return layer in self._kinds

    def ops(self) -> List[str]:
        """Registered op strings, sorted."""
        return sorted(k for k in self._kinds if isinstance(k, str))

    def classes(self) -> List[type]:
        """Registered layer classes, sorted by name."""
        return sorted((k for k in self._kinds if isinstance(k, type)), key=lambda c: c.__name__)

    def names(self, pattern: str = "*") -> List[str]:
        """Names of everything registered (op strings, class names) matching a glob
        (case-insensitive: `'*conv*'` finds `Conv2d` and `nor_conv_3x3`)."""
        names = self.ops() + [c.__name__ for c in self.classes()]
        return sorted(n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower()))

    def why_unknown(self, layer: Any) -> Optional[str]:
        """``None`` if ``layer`` compiles, else a message saying why not."""
        if layer in self._kinds:
            return None
        if isinstance(layer, type) and issubclass(layer, nn.Module):
            return None  # unregistered modules compile through meta-tensor shapes
        if isinstance(layer, str):
            matches = difflib.get_close_matches(layer, self.ops(), n=3, cutoff=0.5)
            hint = (f"did you mean {', '.join(repr(m) for m in matches)}?" if matches
                    else f"known ops: {', '.join(self.ops())}")
            return (f"unknown op {layer!r}; {hint} Register new ops with "
                    f"nord.neural_nets.layers.register_op()")
        return (f"layer type {layer!r} is neither a torch.nn.Module subclass nor "
                f"an op string; pass e.g. torch.nn.Conv2d or 'conv3x3-bn-relu'")

    def lookup(self, layer: Any, layer_name: str = "?") -> LayerKind:
        """The rules for ``layer``; raises :class:`UnknownOpError` if it has none."""
        kind = self._kinds.get(layer) if _hashable(layer) else None
        if kind is not None:
            return kind
        problem = self.why_unknown(layer)
        if problem:
            raise UnknownOpError(f"layer {layer_name!r}: {problem}", layers=[layer_name])
        return _meta_kind(layer)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


_DEFAULT = LayerRegistry()


def default_registry() -> LayerRegistry:
    """The registry the compiler uses when none is passed."""
    return _DEFAULT


def list_layers(pattern: str = "*") -> List[str]:
    """Names of all registered layers and ops matching a glob, e.g. ``'*conv*'``."""
    return _DEFAULT.names(pattern)


def register_op(name: str, factory: Callable[..., nn.Module], *,
                output_shape: Optional[ShapeRule] = None,
                min_spatial: Optional[MinSpatialRule] = None,
                ranks: Optional[Sequence[int]] = None,
                channel_param: Optional[str] = "out_channels",
                description: str = "",
                merge: Optional[str] = None,
                registry: Optional[LayerRegistry] = None,
                replace: bool = False) -> LayerKind:
    """Register an op string.

    ``factory(in_shape, **params)`` returns the module. ``output_shape``
    defaults to: ``params['out_channels']`` channels if given, else the input's,
    spatial extent unchanged. ``merge`` (``'concat'`` or ``'sum'``) fixes how
    the op combines several inputs, whatever the network's size policy.
    """
    if merge not in (None, "concat", "sum"):
        raise InvalidArgumentError(f"merge must be 'concat', 'sum' or None, got {merge!r}")

    def build(params, in_shape):
        return factory(in_shape, **params)

    kind = LayerKind(
        key=name, build=build,
        output_shape=output_shape or _channels_param_shape,
        min_spatial=min_spatial or (lambda params, rank: (1,) * rank),
        channel_param=channel_param,
        ranks=frozenset(ranks) if ranks is not None else None,
        description=description or (factory.__doc__ or "").strip().split("\n")[0],
        merge=merge)
    return (registry or _DEFAULT).add(kind, replace=replace)


def register_layer(cls: Optional[type] = None, *, output_shape: Optional[ShapeRule] = None,
                   input_param: Optional[str] = None,
                   channel_param: Optional[str] = None,
                   min_spatial: Optional[MinSpatialRule] = None,
                   ranks: Optional[Sequence[int]] = None,
                   registry: Optional[LayerRegistry] = None,
                   replace: bool = False):
    """Register a ``nn.Module`` subclass; usable as a decorator.

    ``output_shape(params, in_shape)`` is the pure shape rule (:func:`same_shape`
    for element-wise layers); left out, shapes are found with meta tensors as
    for an unregistered class. ``input_param`` names the constructor argument
    that receives the inferred input channel count. Registering a class also
    lets descriptor files name it (files may name only registered layers,
    ``torch.nn`` classes and NORD's own).
    """
    def register(layer_cls: type) -> type:
        if not (isinstance(layer_cls, type) and issubclass(layer_cls, nn.Module)):
            raise InvalidArgumentError(f"register_layer expects a torch.nn.Module subclass, "
                                       f"got {layer_cls!r}")
        kind = LayerKind(
            key=layer_cls, build=lambda params, in_shape: layer_cls(**params),
            output_shape=output_shape or _meta_kind(layer_cls).output_shape,
            min_spatial=min_spatial or (lambda params, rank: (1,) * rank),
            input_param=input_param, channel_param=channel_param,
            ranks=frozenset(ranks) if ranks is not None else None,
            description=(layer_cls.__doc__ or "").strip().split("\n")[0])
        (registry or _DEFAULT).add(kind, replace=replace)
        return layer_cls

    return register(cls) if cls is not None else register


# ---------------------------------------------------------------------- shape rules
def same_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    """Shape rule of element-wise layers: output shape = input shape."""
    return in_shape


def _channels_param_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    return in_shape.with_channels(int(params.get("out_channels", in_shape.channels)))


def _per_dim(value: Any, rank: int, what: str) -> Tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        if len(value) != rank:
            raise ShapeError(f"{what}={value!r} has {len(value)} entries for a "
                             f"{rank}-D layer; give {rank} entries or one integer")
        return tuple(int(v) for v in value)
    return (int(value),) * rank


def _window(params: Dict[str, Any], rank: int, *, dilation: bool = True):
    kernel = _per_dim(params["kernel_size"], rank, "kernel_size")
    stride = params.get("stride")
    stride = _per_dim(1 if stride is None else stride, rank, "stride")
    dil = _per_dim(params.get("dilation", 1), rank, "dilation") if dilation else (1,) * rank
    padding = params.get("padding", 0)
    for what, values in (("kernel_size", kernel), ("stride", stride), ("dilation", dil)):
        if any(v < 1 for v in values):
            raise SettingsError(f"{what}={values} must be at least 1")
    effective = tuple(d * (k - 1) + 1 for d, k in zip(dil, kernel))
    if padding == "same":
        pad = tuple((e - 1) // 2 for e in effective)
    elif padding == "valid":
        pad = (0,) * rank
    else:
        pad = _per_dim(padding, rank, "padding")
        if any(p < 0 for p in pad):
            raise SettingsError(f"padding={padding!r} must not be negative")
    return kernel, stride, dil, pad, effective, padding


def _conv_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    kernel, stride, dil, pad, effective, padding = _window(params, in_shape.rank)
    if padding == "same":
        return Shape(int(params["out_channels"]), in_shape.spatial)
    spatial = tuple((n + 2 * p - e) // s + 1
                    for n, p, e, s in zip(in_shape.spatial, pad, effective, stride))
    return Shape(int(params["out_channels"]), spatial)


def _window_min_spatial(params: Dict[str, Any], rank: int) -> Tuple[int, ...]:
    kernel, stride, dil, pad, effective, padding = _window(params, rank)
    if padding == "same":
        return (1,) * rank
    return tuple(max(1, e - 2 * p) for e, p in zip(effective, pad))


def _pool_params(params: Dict[str, Any]) -> Dict[str, Any]:
    with_default = dict(params)
    if with_default.get("stride") is None:
        with_default["stride"] = with_default["kernel_size"]
    return with_default


def _pool_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    params = _pool_params(params)
    kernel, stride, dil, pad, effective, _ = _window(params, in_shape.rank)
    for k, p in zip(kernel, pad):  # torch checks the kernel, not the dilated window
        if p > k // 2:
            raise ShapeError(f"pooling padding {pad} must be at most half the kernel {kernel}")
    spatial = []
    for n, p, e, s in zip(in_shape.spatial, pad, effective, stride):
        span = n + 2 * p - e
        out = (-(-span // s) if params.get("ceil_mode") else span // s) + 1
        if params.get("ceil_mode") and (out - 1) * s >= n + p:
            out -= 1  # the last window must start inside the input or left padding
        spatial.append(out)
    return in_shape.with_spatial(tuple(spatial))


def _pool_min_spatial(params: Dict[str, Any], rank: int) -> Tuple[int, ...]:
    params = _pool_params(params)
    dil = _window(params, rank)[2]
    # An input narrower than the dilation lets a dilated max-pool window fall
    # entirely on padding, which yields -inf; at least `dilation` wide, it cannot.
    return tuple(max(m, d) for m, d in zip(_window_min_spatial(params, rank), dil))


def _adaptive_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    size = params["output_size"]
    size = size if isinstance(size, (tuple, list)) else (size,) * in_shape.rank
    if len(size) != in_shape.rank:
        raise ShapeError(f"output_size={params['output_size']!r} has {len(size)} entries "
                         f"for {in_shape.rank}-D input; give {in_shape.rank} or one integer")
    return in_shape.with_spatial(tuple(n if s is None else int(s)
                                       for s, n in zip(size, in_shape.spatial)))


def _linear_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    return Shape(int(params["out_features"]), ())


def _flatten_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    if params.get("start_dim", 1) != 1 or params.get("end_dim", -1) != -1:
        raise ShapeError("nn.Flatten in a descriptor must keep the batch dimension "
                         "(start_dim=1, end_dim=-1)")
    return in_shape.flattened()


def _meta_kind(cls: type) -> LayerKind:
    """Rules for an unregistered module class: shapes from meta tensors."""
    def output_shape(params, in_shape):
        try:
            with torch.device("meta"):
                module = cls(**params)
                out = module(torch.empty(2, in_shape.channels, *in_shape.spatial))
        except Exception as error:  # report, never hide, what the layer said
            raise ShapeError(f"{cls.__name__}({params}) cannot take input of shape "
                             f"{in_shape}: {error}") from error
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            raise ShapeError(f"{cls.__name__} must return a tensor with a batch and "
                             f"a channel dimension; register it with register_layer()")
        return Shape(int(out.shape[1]), tuple(int(v) for v in out.shape[2:]))

    return LayerKind(key=cls, build=lambda params, in_shape: cls(**params),
                     output_shape=output_shape,
                     description="unregistered module (meta-tensor shapes)")


# ---------------------------------------------------------------------- torch layers
def _register_torch_layers(registry: LayerRegistry) -> None:
    def add(cls, output_shape, *, input_param=None, channel_param=None,
            min_spatial=None, ranks=None):
        registry.add(LayerKind(
            key=cls, build=lambda params, in_shape, cls=cls: cls(**params),
            output_shape=output_shape,
            min_spatial=min_spatial or (lambda params, rank: (1,) * rank),
            input_param=input_param, channel_param=channel_param,
            ranks=frozenset(ranks) if ranks is not None else None,
            description=f"torch.nn.{cls.__name__}"))

    for cls, rank in ((nn.Conv1d, 1), (nn.Conv2d, 2)):
        add(cls, _conv_shape, input_param="in_channels", channel_param="out_channels",
            min_spatial=_window_min_spatial, ranks=[rank])
    for cls, rank in ((nn.MaxPool1d, 1), (nn.MaxPool2d, 2), (nn.AvgPool1d, 1), (nn.AvgPool2d, 2)):
        add(cls, _pool_shape, min_spatial=_pool_min_spatial, ranks=[rank])
    for cls, rank in ((nn.AdaptiveAvgPool1d, 1), (nn.AdaptiveAvgPool2d, 2),
                      (nn.AdaptiveMaxPool1d, 1), (nn.AdaptiveMaxPool2d, 2)):
        add(cls, _adaptive_shape, ranks=[rank])
    add(nn.BatchNorm1d, same_shape, input_param="num_features", ranks=[0, 1])
    add(nn.BatchNorm2d, same_shape, input_param="num_features", ranks=[2])
    add(nn.Dropout1d, same_shape, ranks=[1])
    add(nn.Dropout2d, same_shape, ranks=[2])
    add(nn.Linear, _linear_shape, input_param="in_features", ranks=[0])
    add(nn.Flatten, _flatten_shape)
    for cls in (nn.Identity, nn.Dropout, nn.AlphaDropout, nn.ReLU, nn.ReLU6, nn.LeakyReLU,
                nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh,
                nn.Hardswish, nn.Hardtanh, nn.Softplus, nn.PReLU):
        add(cls, same_shape)


# ---------------------------------------------------------------------- custom layers
@register_layer(output_shape=same_shape)
class WeightScaling(nn.Module):
    """Multiplies its input by a fixed factor ``scale`` (DeepNEAT's weight scaling S)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def _conv_cls(rank: int):
    return {0: None, 1: nn.Conv1d, 2: nn.Conv2d}[rank]


def _bn_cls(rank: int):
    return nn.BatchNorm2d if rank == 2 else nn.BatchNorm1d


class ConvBnRelu(nn.Sequential):
    """Convolution (same padding, no bias) → BatchNorm → ReLU (NAS-Bench-101 order)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, rank: int = 2):
        conv, bn = _conv_cls(rank), _bn_cls(rank)
        super().__init__(conv(in_channels, out_channels, kernel_size,
                              padding=kernel_size // 2, bias=False),
                         bn(out_channels), nn.ReLU())


class ReluConvBn(nn.Sequential):
    """ReLU → convolution (same padding, no bias) → BatchNorm (NAS-Bench-201 order)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, rank: int = 2):
        conv, bn = _conv_cls(rank), _bn_cls(rank)
        super().__init__(nn.ReLU(), conv(in_channels, out_channels, kernel_size,
                                         padding=kernel_size // 2, bias=False),
                         bn(out_channels))


def _out_channels(in_shape: Shape, params: Dict[str, Any]) -> int:
    return int(params.get("out_channels", in_shape.channels))


def _conv_op(order: type, kernel: int):
    def factory(in_shape: Shape, **params) -> nn.Module:
        return order(in_shape.channels, _out_channels(in_shape, params), kernel, in_shape.rank)
    factory.__doc__ = f"{order.__doc__.split('(')[0].strip()} with a {kernel}-wide kernel"
    return factory


def _pool_op(pool: str):
    def factory(in_shape: Shape, **params) -> nn.Module:
        rank, stride = in_shape.rank, check_stride(params)
        if pool == "max":
            layer = (nn.MaxPool2d if rank == 2 else nn.MaxPool1d)(3, stride=stride, padding=1)
        else:
            layer = (nn.AvgPool2d if rank == 2 else nn.AvgPool1d)(
                3, stride=stride, padding=1, count_include_pad=False)
        out = _out_channels(in_shape, params)
        if out == in_shape.channels:
            return layer
        # Channel change as NAS-Bench-201 does it: 1x1 ReLU-conv-BN, then pool.
        return nn.Sequential(ReluConvBn(in_shape.channels, out, 1, rank), layer)
    factory.__doc__ = f"3-wide {pool} pooling, stride 1 (same size) or 2"
    return factory


def _identity_op(in_shape: Shape, **params) -> nn.Module:
    """Identity (passes its input through); stride 2: a factorized reduction."""
    out = _out_channels(in_shape, params)
    if check_stride(params) == 2:
        if in_shape.rank != 2:
            raise ShapeError(f"a strided identity (factorized reduction) takes 2-D input, "
                             f"got {in_shape}")
        return FactorizedReduce(in_shape.channels, out)
    if out != in_shape.channels and in_shape.rank == 0:
        # flat features: the 1x1 ReLU-conv-BN projection becomes ReLU-linear-BN
        return nn.Sequential(nn.ReLU(), nn.Linear(in_shape.channels, out, bias=False),
                             nn.BatchNorm1d(out))
    if out != in_shape.channels:
        return ReluConvBn(in_shape.channels, out, 1, in_shape.rank)
    return nn.Identity()


def _zero_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    return strided_shape({**params, "out_channels": in_shape.channels}, in_shape)


def _zero_op(in_shape: Shape, **params) -> nn.Module:
    """Zeros shaped like the input (NAS-Bench-201 ``none``; strided: the reduced size)."""
    return Zero(check_stride(params))


def _register_ops(registry: LayerRegistry) -> None:
    spatial = [1, 2]
    for name in ("input", "output", "IN", "OUT"):
        register_op(name, _identity_op, channel_param=None, registry=registry)
    for name in ("identity", "skip_connect"):
        register_op(name, _identity_op, output_shape=strided_shape, registry=registry)
    register_op("none", _zero_op, channel_param=None, output_shape=_zero_shape,
                registry=registry)
    # NAS-Bench-101 operations.
    register_op("conv3x3-bn-relu", _conv_op(ConvBnRelu, 3), ranks=spatial, registry=registry)
    register_op("conv1x1-bn-relu", _conv_op(ConvBnRelu, 1), ranks=spatial, registry=registry)
    register_op("maxpool3x3", _pool_op("max"), ranks=spatial, output_shape=strided_shape,
                registry=registry)
    # NAS-Bench-201 operations.
    register_op("nor_conv_3x3", _conv_op(ReluConvBn, 3), ranks=spatial, registry=registry)
    register_op("nor_conv_1x1", _conv_op(ReluConvBn, 1), ranks=spatial, registry=registry)
    register_op("avg_pool_3x3", _pool_op("avg"), ranks=spatial, output_shape=strided_shape,
                registry=registry)
    # DARTS operations (chapter 8) and its cell preprocessing.
    register_darts_ops(registry, register_op)
    # Chapter 7's GraphSAGE layers and global poolings.
    register_graph_ops(registry, register_op)


_register_torch_layers(_DEFAULT)
_register_ops(_DEFAULT)
