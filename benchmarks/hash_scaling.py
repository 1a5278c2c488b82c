"""canonical_hash time against layer count: near-linear, not quadratic.

Chains and random sparse DAGs (each layer fed by one or two earlier ones) of
500 to 8,000 layers are hashed with ``NeuralDescriptor.canonical_hash``; the
best of 3 is printed with the time per layer and the ratio to the size before
(2.0 per doubling is linear, 4.0 quadratic). Up to
``EXACT_WL_MAX_VERTICES`` (512) active layers the exact Weisfeiler-Lehman hash
runs (the values stores hold); above it the near-linear refinement hash. The
issue-12 baseline: 4,000 layers took 26-46 s.

Run: python benchmarks/hash_scaling.py [--sizes 500 1000 2000 4000 8000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nord.neural_nets import NeuralDescriptor


def chain(n: int) -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    for i in range(n):
        d.add_layer_sequential("identity", {}, f"{i}_Layer")
    d.add_layer_sequential("output", {}, "out")
    return d


def sparse_dag(n: int, seed: int = 0) -> NeuralDescriptor:
    rng = np.random.default_rng(seed)
    d = NeuralDescriptor()
    names = [d.add_layer("input", {}, "in")]
    for i in range(n):
        name = d.add_layer("identity" if i % 3 else "maxpool3x3", {}, f"{i}_Layer")
        d.connect_layers(names[-1], name)
        if len(names) > 2 and rng.random() < 0.5:
            d.connect_layers(names[int(rng.integers(0, len(names) - 1))], name)
        names.append(name)
    d.connect_layers(names[-1], d.add_layer("output", {}, "out"))
    return d


def best_of(descriptor, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        descriptor.canonical_hash()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000, 8000])
    args = parser.parse_args()
    for kind, make in (("chain", chain), ("sparse DAG", sparse_dag)):
        previous = None
        for n in args.sizes:
            seconds = best_of(make(n))
            ratio = "" if previous is None else f"   x{seconds / previous:.2f} vs the size before"
            print(f"{kind:10s} {n:6d} layers: {seconds:8.4f} s "
                  f"({1e6 * seconds / n:6.1f} us/layer){ratio}")
            previous = seconds


if __name__ == "__main__":
    main()
