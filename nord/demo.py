"""``nord demo``: the README's main job, a scaled-down chapter-6 search.

Regularized evolution searches the global space of thesis chapter 6 (the 12
layer choices of table 6.1 at C channels) on real Fashion-MNIST: each
candidate is trained for ``epochs`` on a share of the training set and scored
on a validation split carved from it, ``workers`` candidates at a time. The
same budget of random search (evolution with sample size 1, the thesis's
baseline) follows. The demo ends with the best architecture, its accuracy,
a report per search, and the plots of Figures 6.4 (best so far and empirical
CDFs, evolution against random) and 6.5 (all evaluated architectures
overlaid). Evolution runs in synchronous cycles of ``cycle_size`` children
and each candidate trains on ``threads`` torch threads, so the same seed
gives the same search with any number of workers.

Defaults: C=16, P=10, S=3, 30 evaluations per search, 1 epoch on 10 % of
the training images, 2 workers: a few minutes on a 2-core CPU. The thesis's
settings are flags: ``--population 100 --sample 25 --budget 500 --epochs 10
--percentage 1 --fitness-split test``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

from nord.data_curators import find_fashion_mnist
from nord.errors import SettingsError

__all__ = ["DemoConfig", "run_demo", "listing_3_1_descriptor"]


@dataclass(frozen=True)
class DemoConfig:
    budget: int = 30
    population: int = 10
    sample: int = 3
    channels: int = 16
    percentage: float = 0.1
    epochs: int = 1
    workers: int = 2
    threads: int = 1
    cycle_size: int = 2
    seed: int = 0
    fitness_split: str = "validation"
    baseline: bool = True
    out: str = "runs/demo"
    data_root: Optional[str] = None


def listing_3_1_descriptor():
    """The network of thesis listing 3.1 / Figure 3.3 (input sizes are inferred)."""
    import torch.nn as nn

    from nord.neural_nets import NeuralDescriptor
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"in_channels": 3, "out_channels": 5, "kernel_size": 3}, "conv")
    d.add_layer(nn.Conv2d, {"in_channels": 5, "out_channels": 10, "kernel_size": 5}, "conv2")
    d.add_layer(nn.Conv2d, {"in_channels": 5, "out_channels": 10, "kernel_size": 3}, "conv3")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2, "stride": 2}, "pool1")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2, "stride": 5}, "pool2")
    for src, dst in [("conv", "conv2"), ("conv2", "conv3"), ("conv3", "pool2"),
                     ("conv2", "pool1"), ("pool1", "pool2")]:
        d.connect_layers(src, dst)
    return d


def _settings(config: DemoConfig, sample: int):
    from nord.execution.runs import SearchSettings
    data_options = {"root": config.data_root} if config.data_root else {}
    return SearchSettings(
        space="remnet", strategy="evolution", budget=config.budget,
        population=config.population, sample=sample, seed=config.seed,
        executor="process" if config.workers > 1 else "serial", workers=config.workers,
        synchronous=True, cycle_size=config.cycle_size, threads=config.threads,
        space_options={"channels": config.channels}, objective="training",
        objective_options={"dataset": "fashion-mnist", "epochs": config.epochs,
                           "data_percentage": config.percentage, "seed": config.seed,
                           "split": config.fitness_split, "data_options": data_options})


def _choice_labels(channels: int):
    """Layer spec → its table 6.1 name (CONV_3.N, POOL_2.M, ...), input/output as such."""
    from nord.design.spaces.remnet import CHOICES, layer_spec
    names = {}
    for choice in CHOICES:
        layer, params = layer_spec(choice, channels)
        names[(layer, json.dumps(params, sort_keys=True))] = choice

    def label(spec) -> str:
        key = (spec.layer, json.dumps(spec.params, sort_keys=True))
        return names.get(key, spec.layer if isinstance(spec.layer, str) else spec.layer.__name__)
    return label


def run_demo(config: DemoConfig = DemoConfig(), echo: Callable[[str], None] = print,
             progress: bool = True) -> dict:
    """Run the demo; return its summary (also written to ``<out>/summary.json``)."""
    from nord.analysis.figures import plot_architecture_overlay, plot_search_comparison
    from nord.analysis.report import write_report
    from nord.design.spaces import get_space
    from nord.design.spaces.remnet import CHOICES
    from nord.execution.progress import ProgressBar
    from nord.execution.runs import run_search
    from nord.execution.store import RunStore

    from nord.data_curators.splits import check_percentage
    if config.workers < 1:
        raise SettingsError(f"--workers {config.workers}: the demo trains at least one "
                            f"candidate at a time; use --workers 1 or more")
    check_percentage(config.percentage)
    find_fashion_mnist(config.data_root)  # a clear error now rather than in every worker
    start = time.perf_counter()
    out = Path(config.out)
    searches = {"regularized evolution": config.sample}
    if config.baseline:
        searches["random search (N=1)"] = 1
    echo(f"Chapter-6 search on Fashion-MNIST: {config.budget} evaluations per search, "
         f"C={config.channels}, P={config.population}, {config.epochs} epoch(s) on "
         f"{config.percentage:.0%} of the training set, {config.workers} worker(s)")
    results: Dict[str, dict] = {}
    for name, sample in searches.items():
        folder = out / ("evolution" if sample == config.sample else "random")
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.ExitStack() as stack:
            callbacks = [stack.enter_context(ProgressBar(config.budget, name))] if progress else []
            summary = run_search(_settings(config, sample), folder, callbacks=callbacks)
        write_report(folder)
        with RunStore(folder / "run.sqlite", create=False) as store:
            records = store.finished()
        results[name] = {"folder": folder, "summary": summary, "records": records}
        echo(f"{name}: {summary.line()}")

    space = get_space("remnet", channels=config.channels)
    plot_search_comparison({n: [r.fitness for r in v["records"]] for n, v in results.items()},
                           out / "figure_6_4.png", ylabel=f"{config.fitness_split} accuracy",
                           title="Regularized evolution against random search (Figure 6.4)")
    evolution = results["regularized evolution"]
    cells = get_space("remnet", channels=config.channels, head=False)
    plot_architecture_overlay(
        [cells.to_descriptor(cells.decode(r.architecture)) for r in evolution["records"]],
        out / "figure_6_5.png", label_of=_choice_labels(config.channels),
        label_order=["input", *CHOICES, "output"],
        title="Architectures evaluated by evolution (Figure 6.5)")

    best = evolution["summary"].best
    if best is None or best.status not in ("ok", "cached"):
        failures = [r.error for r in evolution["records"] if r.error]
        from nord.errors import EvaluationError
        raise EvaluationError(
            f"no candidate of the evolution search trained successfully (see "
            f"{evolution['folder'] / 'summary.md'})"
            + (f"; the first failure: {failures[0].splitlines()[0]}" if failures else ""))
    seconds = time.perf_counter() - start
    summary = {
        "best_architecture": space.describe(space.decode(best.architecture)),
        "best_accuracy": best.fitness, "fitness_split": config.fitness_split,
        "best_parameters": best.metrics.get("parameters"),
        "searches": {n: {"best_accuracy": v["summary"].best.fitness,
                         "evaluations": v["summary"].evaluations,
                         "statuses": v["summary"].statuses,
                         "report": str(v["folder"] / "summary.md")}
                     for n, v in results.items()},
        "seconds": round(seconds, 1), "config": asdict(config)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    echo(f"best architecture: {summary['best_architecture']}")
    echo(f"its {config.fitness_split} accuracy: {best.fitness:.4f} "
         f"({summary['best_parameters']:,} parameters)")
    for name, v in results.items():
        echo(f"  {name}: best {v['summary'].best.fitness:.4f}, report {v['folder'] / 'summary.md'}")
    echo(f"figures: {out / 'figure_6_4.png'}, {out / 'figure_6_5.png'}; {seconds:.0f} s in all")
    echo(f"train it fully (§6.4.2: C=128, 20 epochs; a GPU job, hours on a CPU): "
         f"nord train-final {out / 'evolution'} --channels 128")
    return summary
