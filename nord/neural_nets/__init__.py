"""Descriptors, networks and evaluators (the thesis's ``nord.neural_nets``).

Every name here is loaded on first use, so a script that only builds and
writes descriptors (``from nord.neural_nets import NeuralDescriptor``) does not
import torch; ``NeuralNet`` and the evaluators bring it in when used.
"""

from typing import TYPE_CHECKING

from nord import lazy_exports

__all__ = ["NeuralDescriptor", "LayerSpec", "NeuralNet", "LocalEvaluator", "EvaluationResult",
           "NASBench_101Evaluator", "NATSBench_Evaluator", "DistributedEvaluator",
           "list_layers", "register_layer", "register_op"]

__getattr__, __dir__ = lazy_exports(__name__, {
    ".neural_descriptor": ["LayerSpec", "NeuralDescriptor"],
    ".neural_builder": ["NeuralNet"],
    ".layers": ["list_layers", "register_layer", "register_op"],
    ".evaluators": ["EvaluationResult", "LocalEvaluator"],
    ".benchmarks.nasbench101": ["NASBench_101Evaluator"],
    ".benchmarks.nasbench201": ["NATSBench_Evaluator"],
    ".distributed.data_parallel": ["DistributedEvaluator"],
})

if TYPE_CHECKING:
    from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
    from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator
    from nord.neural_nets.distributed.data_parallel import DistributedEvaluator
    from nord.neural_nets.evaluators import EvaluationResult, LocalEvaluator
    from nord.neural_nets.layers import list_layers, register_layer, register_op
    from nord.neural_nets.neural_builder import NeuralNet
    from nord.neural_nets.neural_descriptor import LayerSpec, NeuralDescriptor
