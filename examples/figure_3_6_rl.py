"""Thesis Figure 3.6: validation accuracy over the episodes of the RL agent.

The double-DQN agent of listings 3.8 and 3.9 builds NAS-Bench-101 cells for
``--episodes`` episodes (thesis: 500); every cell it finishes is looked up and
plotted, with a moving average. The search stays inside the loaded table
(see ``nord.design.strategies.reinforcement``).

Run: python examples/figure_3_6_rl.py [--episodes 500] [--seed 0] [--out runs/figure_3_6]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from nord.execution.runs import SearchSettings, run_search
from nord.execution.store import RunStore


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/figure_3_6")
    args = parser.parse_args(argv)

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    summary = run_search(SearchSettings(space="nasbench101", strategy="rl",
                                        budget=args.episodes, seed=args.seed), out)
    print(summary.line())
    with RunStore(out / "run.sqlite", create=False) as store:
        accuracy = np.array([r.fitness for r in store.finished()])
    window = max(1, min(25, accuracy.size // 10))
    moving = np.convolve(accuracy, np.ones(window) / window, mode="valid")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(np.arange(1, accuracy.size + 1), accuracy, ".", alpha=0.4, label="episode")
    ax.plot(np.arange(window, accuracy.size + 1), moving, "-", label=f"mean of {window}")
    ax.set_xlabel("episode")
    ax.set_ylabel("validation accuracy (108 epochs)")
    ax.set_title("RL agent on NAS-Bench-101 (thesis Figure 3.6)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "figure_3_6.png", dpi=120)
    print(f"figure written to {out / 'figure_3_6.png'}")
    return accuracy


if __name__ == "__main__":
    main()
