"""Process-pool speed-up: 8 small CNN candidates trained with 2 workers against 1.

Each candidate is a small CNN trained one epoch on a share of Fashion-MNIST by
LocalEvaluator (the ``training`` objective), as in a real search. Both pools
are started and warmed (data loaded, torch imported) before the clock starts;
then all 8 are submitted at once and the wall time until the last result is
measured. A worker uses its share of the cores (1 worker: all; 2 workers: half
each). Target speed-up >= 1.7 (thesis: 1.82 with 2 GPUs).

Then, in the same run, the data-parallel half (``benchmarks/data_parallel_speedup.py``):
the epoch time of one network trained on 2 ranks against 1, in both modes
(``--skip-data-parallel`` to leave it out).

Run: python benchmarks/parallel_speedup.py [--candidates 8] [--percentage 0.1] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch.nn as nn

from nord.execution.objectives import TrainingObjective
from nord.execution.process_pool import ProcessPoolExecutor, threads_per_worker
from nord.execution.tasks import Task
from nord.neural_nets import NeuralDescriptor


def candidate(rng: np.random.Generator) -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": int(rng.choice([8, 16])), "kernel_size": 3, "padding": 1})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    d.add_layer_sequential(nn.Conv2d, {"out_channels": int(rng.choice([16, 32])), "kernel_size": 3,
                                       "padding": 1})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    return d


def wall_time(workers: int, descriptors, objective, threads=None) -> float:
    with ProcessPoolExecutor(objective, workers=workers, threads=threads) as pool:
        for i in range(workers):  # warm-up: start every worker, load the data
            pool.submit(Task(-1 - i, descriptors[0]))
        while pool.in_flight:
            pool.collect()
        start = time.perf_counter()
        for i, d in enumerate(descriptors):
            pool.submit(Task(i, d))
        results = []
        while pool.in_flight:
            results += pool.collect()
        elapsed = time.perf_counter() - start
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--percentage", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-data-parallel", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    descriptors = [candidate(rng) for _ in range(args.candidates)]
    objective = TrainingObjective("fashion-mnist", epochs=1, data_percentage=args.percentage)
    share = threads_per_worker(args.workers)
    single = wall_time(1, descriptors, objective, threads=share)
    one = wall_time(1, descriptors, objective)
    many = wall_time(args.workers, descriptors, objective)
    print(f"{args.candidates} candidates, 1 epoch on {args.percentage:.0%} of Fashion-MNIST:")
    print(f"  1 worker with {share} thread(s) (one worker's share, like one GPU): {single:.1f} s")
    print(f"  1 worker with {threads_per_worker(1)} threads (every core): {one:.1f} s")
    print(f"  {args.workers} workers with {share} thread(s) each: {many:.1f} s")
    print(f"speed-up of {args.workers} workers over one worker of the same size: "
          f"{single / many:.2f} (target >= 1.7); over one worker using every core: "
          f"{one / many:.2f}")
    if not args.skip_data_parallel:
        import subprocess
        import sys
        script = Path(__file__).with_name("data_parallel_speedup.py")
        print("\ndata-parallel training of one network (benchmarks/data_parallel_speedup.py):",
              flush=True)
        subprocess.run([sys.executable, str(script)], check=True)
    return single / many, one / many


if __name__ == "__main__":
    main()
