"""Strategy-state saving cost: bytes written and time per evaluation, early against late.

The RL agent (double DQN, NAS-Bench-101) fills its replay memory as a run goes
on; saving its whole state at every step made each evaluation dearer as the run
grew (issue 12: 8 ms at the start, 120 ms at evaluation 6,000). The run loop now
logs each step and checkpoints every ``checkpoint_every`` steps, with large
arrays stored as content-addressed chunks. This script runs the same search
twice in one process, with checkpoints every 100 steps (the default) and at every
step (the baseline, close to saving everything each time), and prints for each:
the SQLite log bytes and the state bytes written per evaluation around
evaluation 100 and around the end, their ratio (1.0 = flat), and ms per
evaluation.

Run: python benchmarks/state_saving_cost.py [--budget 2050] [--window 100]
Needs the NAS-Bench-101 table ($NORD_DATA, or ../shared/data beside the checkout).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from nord.execution.run_loop import SearchRun
from nord.execution.runs import SearchSettings
from nord.execution.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def measure(budget: int, window: int, checkpoint_every: int, folder: Path) -> dict:
    settings = SearchSettings(space="nasbench101", strategy="rl", budget=budget, seed=0)
    objective = settings.build_objective()
    objective.prepare()
    strategy = settings.build_strategy(settings.build_space(objective))
    path = folder / f"every-{checkpoint_every}.sqlite"
    store = RunStore(path)
    store.db.execute("PRAGMA wal_autocheckpoint=0")  # every write stays in the log file
    wal = Path(str(path) + "-wal")
    samples = {}

    def sample(event):
        samples[event.done] = (wal.stat().st_size, store.state_bytes_written,
                               time.perf_counter())

    run = SearchRun(strategy, objective, store, budget, cache=False, callbacks=[sample])
    run.checkpoint_every = checkpoint_every
    run.run()
    store.close()

    def around(mark):
        (w0, s0, t0), (w1, s1, t1) = samples[mark - window // 2], samples[mark + window // 2]
        return (w1 - w0) / window, (s1 - s0) / window, 1000 * (t1 - t0) / window

    late = budget - window // 2 - 1
    return {"early": around(window), "late": around(late), "late_mark": late}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--budget", type=int, default=2050)
    parser.add_argument("--window", type=int, default=100,
                        help="evaluations averaged around each mark")
    args = parser.parse_args()
    os.environ.setdefault("NORD_DATA", str(ROOT.parent / "shared" / "data"))
    with tempfile.TemporaryDirectory() as folder:
        for every, label in ((100, "checkpoint every 100 steps (default)"),
                             (1, "checkpoint every step (baseline)")):
            result = measure(args.budget, args.window, every, Path(folder))
            (w0, s0, t0), (w1, s1, t1) = result["early"], result["late"]
            print(f"{label}:")
            print(f"  SQLite log KiB/eval   at {args.window}: {w0 / 1024:8.1f}   "
                  f"at {result['late_mark']}: {w1 / 1024:8.1f}   ratio {w1 / w0:.2f}")
            print(f"  state KiB/eval        at {args.window}: {s0 / 1024:8.2f}   "
                  f"at {result['late_mark']}: {s1 / 1024:8.2f}   ratio {s1 / s0:.2f}")
            print(f"  ms/eval               at {args.window}: {t0:8.2f}   "
                  f"at {result['late_mark']}: {t1:8.2f}   ratio {t1 / t0:.2f}")


if __name__ == "__main__":
    main()
