"""Descriptors, networks and evaluators (the thesis's ``nord.neural_nets``)."""

from nord.neural_nets.neural_descriptor import LayerSpec, NeuralDescriptor
from nord.neural_nets.neural_builder import NeuralNet
from nord.neural_nets.layers import list_layers, register_layer, register_op

__all__ = ["NeuralDescriptor", "LayerSpec", "NeuralNet", "list_layers",
           "register_layer", "register_op"]
