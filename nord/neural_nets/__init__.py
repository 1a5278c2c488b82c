"""Descriptors, networks and evaluators (the thesis's ``nord.neural_nets``)."""

from nord.neural_nets.neural_descriptor import LayerSpec, NeuralDescriptor
from nord.neural_nets.neural_builder import NeuralNet
from nord.neural_nets.layers import list_layers, register_layer, register_op
from nord.neural_nets.evaluators import EvaluationResult, LocalEvaluator
from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator

__all__ = ["NeuralDescriptor", "LayerSpec", "NeuralNet", "LocalEvaluator", "EvaluationResult",
           "NASBench_101Evaluator", "NATSBench_Evaluator",
           "list_layers", "register_layer", "register_op"]
