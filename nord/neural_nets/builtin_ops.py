"""The op strings NORD registers itself, as plain names (no torch needed).

:mod:`nord.neural_nets.layers` registers these ops with their torch builders;
this list lets :meth:`NeuralDescriptor.validate
<nord.neural_nets.neural_descriptor.NeuralDescriptor.validate>` check a
descriptor made only of them without importing torch. A test keeps the two
in step.
"""

__all__ = ["BUILTIN_OPS"]

#: roles (``input``/``output``, NAS-Bench-201's ``IN``/``OUT``), identities,
#: NAS-Bench-201's ``none``, the NAS-Bench-101 and NAS-Bench-201 operations and
#: the GraphSAGE layers and global poolings of chapter 7
BUILTIN_OPS = frozenset({
    "input", "output", "IN", "OUT", "identity", "skip_connect", "none",
    "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3",
    "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3",
    # chapter 8's DARTS operations (nord.neural_nets.darts_ops)
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3",
    "darts_preprocess", "concat",
    # chapter 7's graph layers (nord.neural_nets.graph_layers)
    "SAGE_LSTM.H", "SAGE_POOL.H", "SAGE_LSTM.N", "SAGE_POOL.N", "SAGE_LSTM.D", "SAGE_POOL.D",
    "global_max_pool", "global_mean_pool", "sort_pool", "ranking_head",
})
