"""NORD's search strategies beside the peers users would pick, on benchmark tables.

Protocol (issue 15, after the NAS-Bench-201 comparisons of the NAS literature):

* NAS-Bench-201: the search sees the 12-epoch validation accuracy
  (``cifar10_valid_valid_12ep``); reported is the CIFAR-10 test accuracy after
  200 epochs (``cifar10_test_200ep``) of the best-signal architecture queried
  so far, at 50/100/150/300 queries; optimum 94.37.
* NAS-Bench-101, inside the shipped 30k-cell table: signal and report the
  108-epoch validation accuracy, 150 queries; the RL agent (listings
  3.8-3.9) takes its row, with the share of its queries that repeated an
  earlier cell.

Every strategy runs through NORD's own objectives and spaces (the settings a
``nord search`` builds), ask/tell in process; a query is one ``ask``.
Peers: Optuna's TPE sampler (``pip install 'nord[bench]'``; skipped with a
note when missing) and random search, beside NORD's regularized evolution,
local search and predictor-guided evolution. One run per seed at the largest
budget; a smaller budget reads the same run's prefix (no method here looks at
its budget). Seeds are spread over ``--workers`` processes. Printed: mean ±
std over seeds, seconds per run, and the predictor's milliseconds per query.

Run: python benchmarks/search_vs_peers.py [--seeds 100] [--workers 2]
     [--spaces nasbench201,nasbench101] [--budgets 50,100,150,300]
     [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

NB201_SIGNAL, NB201_REPORT = "cifar10_valid_valid_12ep", "cifar10_test_200ep"
NB201_OPTIMUM = 94.37
#: strategy settings used for every space (the CLI's evolution defaults differ:
#: population 10, sample 3; these are the comparison's tuned values for both)
EVOLUTION = {"population_size": 20, "sample_size": 5}
METHODS = {
    "nasbench201": ["random", "evolution", "local-search", "optuna-tpe", "guided-evolution"],
    "nasbench101": ["random", "evolution", "local-search", "rl", "guided-evolution"],
}


def build(space_name: str, table_root):
    """The objective and space a ``nord search`` on ``space_name`` builds."""
    from nord.execution.runs import SearchSettings
    table = None
    if table_root:
        table = str(Path(table_root) / ("nasbench201/nb201_tables.csv"
                                        if space_name == "nasbench201"
                                        else "nasbench101/nb101_30k_subset.csv.gz"))
    if space_name == "nasbench201":
        settings = SearchSettings(space="nasbench201", fitness=NB201_SIGNAL,
                                  report=(NB201_REPORT,), table=table)
    else:
        settings = SearchSettings(space="nasbench101", table=table)
    objective = settings.build_objective()
    objective.prepare()
    return objective, settings.build_space(objective)


class Scorer:
    """Queries the table through the objective; keeps the best-signal report."""

    def __init__(self, objective, space, space_name: str) -> None:
        self.objective, self.space, self.space_name = objective, space, space_name
        self.best_signal, self.best_report = -np.inf, np.nan
        self.trace, self.keys = [], []

    def __call__(self, architecture) -> float:
        descriptor = self.space.to_descriptor(architecture)
        outcome = self.objective.evaluate(descriptor)
        self.keys.append(self.objective.key(descriptor))
        report = (outcome.metrics[NB201_REPORT] if self.space_name == "nasbench201"
                  else outcome.fitness)
        if outcome.fitness > self.best_signal:
            self.best_signal, self.best_report = outcome.fitness, report
        self.trace.append(self.best_report)
        return outcome.fitness


def run_nord(strategy: str, space_name: str, seed: int, budget: int, table_root) -> dict:
    from nord.design.strategies import make_strategy
    objective, space = build(space_name, table_root)
    options = dict(EVOLUTION) if strategy in ("evolution", "guided-evolution") else {}
    search = make_strategy(strategy, space, rng=seed, **options)
    score = Scorer(objective, space, space_name)
    start = time.perf_counter()
    for _ in range(budget):
        candidate = search.ask()
        search.tell(candidate.id, score(candidate.architecture))
    return {"trace": score.trace, "seconds": time.perf_counter() - start,
            "predictor_seconds": float(getattr(search, "predictor_seconds", 0.0)),
            "repeats": len(score.keys) - len(set(score.keys))}


def run_optuna(space_name: str, seed: int, budget: int, table_root) -> dict:
    import optuna
    from nord.neural_nets.benchmarks.nasbench201 import ops_to_arch
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective, space = build(space_name, table_root)
    score = Scorer(objective, space, space_name)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    start = time.perf_counter()
    study.optimize(lambda trial: score(ops_to_arch(
        [trial.suggest_categorical(f"edge{i}", list(space.ops)) for i in range(6)])),
        n_trials=budget)
    return {"trace": score.trace, "seconds": time.perf_counter() - start,
            "predictor_seconds": 0.0, "repeats": len(score.keys) - len(set(score.keys))}


def one_run(job):
    method, space_name, seed, budget, table_root = job
    if method == "optuna-tpe":
        return job, run_optuna(space_name, seed, budget, table_root)
    return job, run_nord(method, space_name, seed, budget, table_root)


def optuna_available() -> bool:
    try:
        import optuna
    except ImportError:
        return False
    return bool(optuna.__version__)


def compare(spaces, seeds: int, budgets, workers: int, table_root, methods=None) -> dict:
    """``{space: {method: {"runs": [...], ...}}}`` for every space and method."""
    jobs = []
    for space_name in spaces:
        top = max(budgets[space_name])
        for method in (methods or METHODS[space_name]):
            if method == "optuna-tpe" and not optuna_available():
                print("note: Optuna is not installed (pip install 'nord[bench]'); its row "
                      "is skipped")
                continue
            jobs += [(method, space_name, seed, top, table_root) for seed in range(seeds)]
    results: dict = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for (method, space_name, seed, _, _), run in pool.map(one_run, jobs):
            results.setdefault(space_name, {}).setdefault(method, []).append(run)
    return results


def summarise(results: dict, budgets) -> dict:
    table = {}
    for space_name, by_method in results.items():
        for method, runs in by_method.items():
            top = len(runs[0]["trace"])
            row = {}
            for budget in budgets[space_name]:
                values = np.array([run["trace"][budget - 1] for run in runs])
                row[budget] = (float(values.mean()), float(values.std()))
            table.setdefault(space_name, {})[method] = {
                "at": row, "seeds": len(runs),
                "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
                "predictor_ms_per_query": 1000 * float(np.mean(
                    [r["predictor_seconds"] for r in runs])) / top,
                "repeats": float(np.mean([r["repeats"] for r in runs])) / top}
    return table


def print_table(table: dict, budgets) -> None:
    for space_name, rows in table.items():
        scale = 1.0 if space_name == "nasbench201" else 100.0
        what = ("CIFAR-10 test (200 ep) of the best 12-epoch-validation cell; optimum "
                f"{NB201_OPTIMUM}" if space_name == "nasbench201"
                else "108-epoch validation accuracy (%) of the best cell")
        seeds = next(iter(rows.values()))["seeds"]
        print(f"\n{space_name}: {what}; mean ± std over {seeds} seeds")
        header = "".join(f"{b:>16}" for b in budgets[space_name])
        print(f"{'method':<18}{header}{'s/run':>8}{'pred ms/q':>11}{'repeats':>9}")
        at = 150 if 150 in budgets[space_name] else max(budgets[space_name])
        best = max(rows, key=lambda m: rows[m]["at"][at][0])
        for method, row in rows.items():
            cells = "".join(f"{m * scale:>9.2f} ± {s * scale:.2f}" for m, s in row["at"].values())
            mark = "  <- best" if method == best else ""
            print(f"{method:<18}{cells}{row['seconds_per_run']:>8.2f}"
                  f"{row['predictor_ms_per_query']:>11.2f}{100 * row['repeats']:>8.1f}%{mark}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--spaces", default="nasbench201,nasbench101")
    parser.add_argument("--budgets", default="50,100,150,300",
                        help="NAS-Bench-201 budgets (NAS-Bench-101: 150)")
    parser.add_argument("--methods", default=None, help="comma-separated subset of methods")
    parser.add_argument("--table-root", default=os.environ.get("NORD_DATA")
                        or str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--out", default=None, help="write the summary as JSON here")
    args = parser.parse_args(argv)
    spaces = [s for s in args.spaces.split(",") if s]
    budgets = {"nasbench201": sorted(int(b) for b in args.budgets.split(",")),
               "nasbench101": [150]}
    methods = args.methods.split(",") if args.methods else None
    start = time.perf_counter()
    results = compare(spaces, args.seeds, budgets, args.workers, args.table_root, methods)
    table = summarise(results, budgets)
    print_table(table, budgets)
    print(f"\n{time.perf_counter() - start:.0f} s in all, {args.workers} worker processes")
    if args.out:
        Path(args.out).write_text(json.dumps(table, indent=1))
    return table


if __name__ == "__main__":
    main()
