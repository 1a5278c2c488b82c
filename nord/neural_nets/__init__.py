"""Descriptors, networks and evaluators (the thesis's ``nord.neural_nets``)."""

from nord.neural_nets.neural_descriptor import LayerSpec, NeuralDescriptor
from nord.neural_nets.neural_builder import NeuralNet
from nord.neural_nets.layers import list_layers, register_layer, register_op
from nord.neural_nets.evaluators import EvaluationResult, LocalEvaluator

__all__ = ["NeuralDescriptor", "LayerSpec", "NeuralNet", "LocalEvaluator", "EvaluationResult",
           "list_layers", "register_layer", "register_op"]
