"""Benchmark evaluators: NAS-Bench-101 and NAS-Bench-201 (NATS topology) lookups.

Both are loaded on first use (they read no table until constructed).
"""

from typing import TYPE_CHECKING

from nord import lazy_exports

__all__ = ["NASBench_101Evaluator", "NATSBench_Evaluator"]

__getattr__, __dir__ = lazy_exports(__name__, {
    ".nasbench101": ["NASBench_101Evaluator"],
    ".nasbench201": ["NATSBench_Evaluator"],
})

if TYPE_CHECKING:
    from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
    from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator
