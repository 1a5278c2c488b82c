"""Benchmark-table lookups: load time and ``descriptor_evaluate`` calls per second.

Targets (one core): NAS-Bench-201 >= 20,000 calls/s, NAS-Bench-101 >= 10,000
calls/s, each table loaded in < 1 s. The baseline in the same run is a plain
dict lookup of a precomputed key, the floor any lookup API pays; the ratio
shows what converting a descriptor (graph → cell → key) costs on top.

Run: python benchmarks/benchmark_lookups.py [--calls 20000] [--table-root ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator


def rate(function, items, repeats: int = 3) -> float:
    """Best calls per second over ``repeats`` passes of ``function`` over ``items``."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            function(item)
        best = max(best, len(items) / (time.perf_counter() - start))
    return best


def scramble(descriptor, rng):
    """The same cell with its layers renamed and added in a random order."""
    from nord.neural_nets import NeuralDescriptor
    names = list(descriptor.layers)
    order = [names[i] for i in rng.permutation(len(names))]
    rename = {name: f"v{rng.integers(1 << 30)}_{i}" for i, name in enumerate(order)}
    d = NeuralDescriptor()
    for name in order:
        d.add_layer(descriptor.layers[name].layer, None, rename[name])
    for src, dst in descriptor.edges():
        d.connect_layers(rename[src], rename[dst])
    return d


def timed(make):
    start = time.perf_counter()
    value = make()
    return value, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--table-root", default=os.environ.get("NORD_DATA")
                        or str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = Path(args.table_root)
    rng = np.random.default_rng(0)
    results = {}

    nb201, load201 = timed(lambda: NATSBench_Evaluator(root / "nasbench201" / "nb201_tables.csv"))
    cells = [nb201.arch_str(int(i)) for i in rng.integers(len(nb201), size=args.calls)]
    descriptors = [nb201.to_descriptor(c, none_nodes=False) for c in cells]
    values = {c: nb201.evaluate_string(c, "validation_accuracy") for c in cells}
    lookup201 = rate(lambda d: nb201.descriptor_evaluate(d, ["validation_accuracy"]), descriptors)
    floor201 = rate(values.__getitem__, cells)
    results["nasbench201"] = (load201, lookup201)
    print(f"NAS-Bench-201: table loaded in {load201:.3f} s; descriptor_evaluate "
          f"{lookup201:,.0f} calls/s (target >= 20,000); dict-lookup floor {floor201:,.0f}/s, "
          f"ratio {lookup201 / floor201:.3f}")

    nb101, load101 = timed(lambda: NASBench_101Evaluator(root / "nasbench101" / "nb101_30k_subset.csv.gz"))
    held = nb101.sample(rng, n=min(args.calls, len(nb101)), replace=True)
    keys = {id(d): nb101.hash_of(d) for d in held}
    table = {k: 0.0 for k in keys.values()}
    lookup101 = rate(lambda d: nb101.descriptor_evaluate(d), held)
    floor101 = rate(lambda d: table[keys[id(d)]], held)
    results["nasbench101"] = (load101, lookup101)
    print(f"NAS-Bench-101: table loaded in {load101:.3f} s; descriptor_evaluate "
          f"{lookup101:,.0f} calls/s (target >= 10,000); dict-lookup floor {floor101:,.0f}/s, "
          f"ratio {lookup101 / floor101:.3f}")
    scrambled = [scramble(d, rng) for d in held[:5000]]

    def first_sight(d):
        nb101.clear_cache()  # as if this vertex order had never been seen
        return nb101.descriptor_evaluate(d)

    fresh = rate(first_sight, scrambled)
    results["nasbench101_first_sight"] = fresh
    print(f"NAS-Bench-101, layers added in a random order and never seen before (the "
          f"official hash computed every call): {fresh:,.0f} calls/s")
    return results


if __name__ == "__main__":
    main()
