"""A genotype as a :class:`~nord.neural_nets.NeuralDescriptor`: the final DARTS network.

:func:`genotype_descriptor` writes the network of a genotype (table 8.1's final
training: 36 channels, 20 cells; small values for a CPU) as an ordinary
descriptor, so it compiles with :class:`~nord.neural_nets.NeuralNet`, trains
with :class:`~nord.neural_nets.LocalEvaluator`, exports and draws like every
other architecture:

* ``stem`` (3×3 convolution to ``stem_multiplier * C`` channels) and
  ``stem_bn``;
* per cell ``k`` (``c<k>_...``): ``pre0``/``pre1`` bring the two previous
  cells' outputs to ``C`` channels (``darts_preprocess``: a 1×1 ReLU-conv-BN,
  or a factorized reduction after a reduction cell); each genotype edge is
  one op layer ``n<i>_<m>`` (stride 2 on a reduction cell's input edges),
  node ``n<i>`` (``identity``) sums its two edges, and ``out`` (``concat``)
  concatenates the genotype's output nodes. Reduction cells (at 1/3 and 2/3 of
  the depth) double ``C``;
* ``pool``: global average pooling; the compiler's head is the classifier.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch.nn as nn

from nord.darts.genotype import Genotype
from nord.darts.supernet import reduction_layers
from nord.errors import GenotypeError, SettingsError

__all__ = ["genotype_descriptor", "compile_genotype"]


def _positive(name: str, value, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SettingsError(f"{name} must be a whole number >= {least}, got {value!r}")
    return value


def genotype_descriptor(genotype: Genotype, channels: int = 36, cells: int = 20,
                        stem_multiplier: int = 3):
    """The final network of ``genotype`` (see the module docstring)."""
    from nord.neural_nets import NeuralDescriptor
    if not isinstance(genotype, Genotype):
        raise GenotypeError(f"genotype_descriptor needs a Genotype, got "
                            f"{type(genotype).__name__}; read files with Genotype.from_json")
    _positive("channels", channels, 2)
    _positive("cells", cells)
    _positive("stem_multiplier", stem_multiplier)
    if channels % 2:
        raise SettingsError(f"channels must be even (a factorized reduction halves and "
                            f"concatenates), got {channels}")
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": stem_multiplier * channels, "kernel_size": 3,
                            "padding": 1, "bias": False}, "stem")
    d.add_layer_sequential(nn.BatchNorm2d, {}, "stem_bn")
    prev_prev = prev = "stem_bn"
    reductions = reduction_layers(cells)
    c = channels
    reduction_prev = False
    for k in range(cells):
        reduction = k in reductions
        if reduction:
            c *= 2
        name = f"c{k}"
        d.add_layer("darts_preprocess", {"out_channels": c, "reduce": reduction_prev},
                    f"{name}_pre0")
        d.connect_layers(prev_prev, f"{name}_pre0")
        d.add_layer("darts_preprocess", {"out_channels": c}, f"{name}_pre1")
        d.connect_layers(prev, f"{name}_pre1")
        nodes = [f"{name}_pre0", f"{name}_pre1"]
        edges = genotype.cell(reduction)
        for i in range(genotype.steps):
            node = f"{name}_n{i}"
            d.add_layer("identity", {}, node)
            for m in range(2):
                op, j = edges[2 * i + m]
                params = {"stride": 2} if reduction and j < 2 else {}
                edge = f"{name}_n{i}_{m}"
                d.add_layer(op, params, edge)
                d.connect_layers(nodes[j], edge)
                d.connect_layers(edge, node)
            nodes.append(node)
        d.add_layer("concat", {}, f"{name}_out")
        for j in genotype.concat(reduction):
            d.connect_layers(nodes[j], f"{name}_out")
        prev_prev, prev = prev, f"{name}_out"
        reduction_prev = reduction
    d.add_layer(nn.AdaptiveAvgPool2d, {"output_size": 1}, "pool")
    d.connect_layers(prev, "pool")
    d.last_layer = "pool"
    return d


def compile_genotype(genotype: Genotype, num_classes: int = 10,
                     input_shape: Union[int, Sequence[int]] = (28, 28), input_channels: int = 1,
                     channels: int = 36, cells: int = 20, stem_multiplier: int = 3,
                     head: Optional[object] = None):
    """``NeuralNet`` of :func:`genotype_descriptor` (Fashion-MNIST-sized by default)."""
    from nord.neural_nets import NeuralNet
    descriptor = genotype_descriptor(genotype, channels, cells, stem_multiplier)
    return NeuralNet(descriptor, num_classes, input_shape, input_channels, head=head)
