"""Concurrent regularized evolution with candidates trained in parallel (thesis §6.3.2).

Each candidate, a NAS-Bench-201 cell compiled into a network, is trained by
LocalEvaluator on a share of Fashion-MNIST; ``--workers`` candidates train at
once, in a local process pool (``--executor process``, default) or on a Ray
cluster (``--executor ray [--ray-address auto]``). ``--synchronous`` breeds
cycles of W children from one population (thesis Figure 6.2); by default a
new child is bred as soon as any result returns. Every evaluation lands in
``<out>/run.sqlite``; ``--resume`` continues a stopped run.

One machine:  python examples/distributed_evolution.py --workers 2
A Ray cluster: ray start --head (then ray start --address <head>:6379 on the others);
               python examples/distributed_evolution.py --executor ray --ray-address auto --workers 8
Data-parallel evaluation of each candidate across ranks, launched with torchrun:
               torchrun --standalone --nproc-per-node 2 examples/distributed_evolution.py --environment

Run: python examples/distributed_evolution.py [--budget 20] [--population 6] [--sample 3]
     [--workers 2] [--epochs 1] [--percentage 0.05] [--out runs/distributed_evolution]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from nord.execution.runs import SearchSettings, run_search


def settings_from(args) -> SearchSettings:
    return SearchSettings(
        space="nasbench201", strategy="evolution", budget=args.budget,
        population=args.population, sample=args.sample, seed=args.seed,
        executor=args.executor, workers=args.workers, ray_address=args.ray_address,
        synchronous=args.synchronous, objective="training",
        objective_options={"dataset": args.dataset, "epochs": args.epochs,
                           "data_percentage": args.percentage, "seed": args.seed})


def search_with_environment(args):
    """Under torchrun: the master searches, every rank trains each candidate (listing 3.4)."""
    from nord.design.spaces import get_space
    from nord.design.strategies.evolution import RegularizedEvolution
    from nord.execution.objectives import EnvironmentObjective
    from nord.execution.run_loop import SearchRun
    from nord.execution.store import RunStore
    from nord.neural_nets.distributed.environment import Environment

    with Environment() as e:  # workers serve inside __enter__ and never run this block
        objective = EnvironmentObjective(e, args.dataset, args.epochs, args.percentage)
        strategy = RegularizedEvolution(get_space("nasbench201"), args.population, args.sample,
                                        rng=args.seed)
        store = RunStore(Path(args.out) / "run.sqlite")
        summary = SearchRun(strategy, objective, store, args.budget).run()
        store.close()
        return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", choices=["process", "ray", "serial"], default="process")
    parser.add_argument("--ray-address", default=None)
    parser.add_argument("--synchronous", action="store_true")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--percentage", type=float, default=0.05)
    parser.add_argument("--out", default="runs/distributed_evolution")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--environment", action="store_true",
                        help="under torchrun: evaluate each candidate data-parallel on all ranks")
    args = parser.parse_args(argv)
    if args.executor == "serial":
        args.workers = 1

    if not args.resume and not args.environment:
        shutil.rmtree(Path(args.out), ignore_errors=True)
    if args.environment:
        summary = search_with_environment(args)  # resumes if the store already exists
    else:
        summary = run_search(settings_from(args), args.out, resume=args.resume,
                             explicit={"budget": args.budget} if args.resume else None)
    print(summary.line())
    if summary.best is not None:
        print(f"best cell: {summary.best.architecture} "
              f"(validation accuracy {summary.best.fitness:.4f})")
    return summary


if __name__ == "__main__":
    main()
