"""Thesis Figure 3.1: search-algorithm run time and accuracy, evolution against RL.

Both strategies search NAS-Bench-101 for the same number of evaluations.
The run store times each strategy's own work (``ask`` + ``tell``; table
lookups and bookkeeping excluded), so the left panel compares what the
search logic itself costs (thesis: evolution 0.8 s, RL 34.1 s over a whole
run) and the right panel the best validation accuracy found so far.

Run: python examples/figure_3_1_evolution_vs_rl.py [--budget 500] [--seed 0]
     [--out runs/figure_3_1]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from nord.analysis.curves import best_so_far
from nord.execution.runs import SearchSettings, run_search
from nord.execution.store import RunStore


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/figure_3_1")
    args = parser.parse_args(argv)

    out, results = Path(args.out), {}
    for strategy, label in (("evolution", "regularized evolution"), ("rl", "RL agent (DQN)")):
        folder = out / strategy
        shutil.rmtree(folder, ignore_errors=True)
        run_search(SearchSettings(space="nasbench101", strategy=strategy, budget=args.budget,
                                  seed=args.seed), folder)
        with RunStore(folder / "run.sqlite", create=False) as store:
            records = store.finished()
        logic = np.cumsum([(r.ask_seconds or 0) + (r.tell_seconds or 0) for r in records])
        accuracy = np.array([r.fitness for r in records])
        results[label] = (logic, accuracy)
        print(f"{label}: search logic {logic[-1]:.2f} s over {len(records)} evaluations "
              f"({1000 * logic[-1] / len(records):.2f} ms each), best validation accuracy "
              f"{accuracy.max():.4f}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for label, (logic, accuracy) in results.items():
        steps = np.arange(1, accuracy.size + 1)
        left.plot(steps, logic, label=label)
        right.plot(steps, best_so_far(accuracy), label=label)
    left.set_xlabel("evaluations")
    left.set_ylabel("search-logic time (s, cumulative)")
    right.set_xlabel("evaluations")
    right.set_ylabel("best validation accuracy so far")
    for ax in (left, right):
        ax.legend()
    fig.suptitle("Evolution against reinforcement learning on NAS-Bench-101 (thesis Figure 3.1)")
    fig.tight_layout()
    fig.savefig(out / "figure_3_1.png", dpi=120)
    print(f"figure written to {out / 'figure_3_1.png'}")
    return {label: (float(logic[-1]), float(acc.max())) for label, (logic, acc) in results.items()}


if __name__ == "__main__":
    main()
