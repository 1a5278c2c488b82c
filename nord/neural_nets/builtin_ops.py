"""The op strings NORD registers itself, as plain names (no torch needed).

:mod:`nord.neural_nets.layers` registers these ops with their torch builders;
this list lets :meth:`NeuralDescriptor.validate
<nord.neural_nets.neural_descriptor.NeuralDescriptor.validate>` check a
descriptor made only of them without importing torch. A test keeps the two
in step.
"""

__all__ = ["BUILTIN_OPS"]

#: roles (``input``/``output``, NAS-Bench-201's ``IN``/``OUT``), identities,
#: NAS-Bench-201's ``none``, and the NAS-Bench-101 and NAS-Bench-201 operations
BUILTIN_OPS = frozenset({
    "input", "output", "IN", "OUT", "identity", "skip_connect", "none",
    "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3",
    "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3",
})
