"""``nord study NAME ...``: the command line of the studies.

Each study has a function adding its flags and one turning the typed flags
into settings; the flags every study shares (``--out``, ``--resume``,
``--executor``, ``--workers``, ``--quiet``) are added here once. A flag not
typed is ``None``, so ``--resume`` keeps the stored value and a typed value
that differs from it is an error that names both.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Dict

__all__ = ["add_study_commands", "run_study_command"]


def _dims_points(text: str):
    dims, sep, points = text.partition("=")
    if not sep or not dims.isdigit() or not points.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not DIMS=POINTS (e.g. 4=32)")
    return int(dims), int(points)


def _montecarlo_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=["table-5.4", "table-4.3"], default=None,
                        help="table 5.4 (2-4-D, tau 0.85/0.75/0.65, 100 repeats) or table 4.3 "
                        "(3-D, tau 0.95/0.85/0.75, 1000 repeats) (default: table-5.4)")
    parser.add_argument("--dims", type=int, nargs="+", default=None,
                        help="mesh dimensions (default: the preset's)")
    parser.add_argument("--taus", type=float, nargs="+", default=None,
                        help="Kendall taus of the noisy spaces (default: the preset's)")
    parser.add_argument("--generations", type=int, nargs="+", default=None,
                        help="GA generations per row (default: 10 100 1000)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="GA runs per cell (default: the preset's)")
    parser.add_argument("--points", type=_dims_points, nargs="+", default=None,
                        metavar="DIMS=POINTS", help="mesh points per axis (default: 2=100 "
                        "3=100 4=32)")
    parser.add_argument("--engine", choices=["auto", "pygmo", "builtin"], default=None,
                        help="pygmo's sga, or the vectorised built-in GA (default: auto, "
                        "pygmo when installed)")
    parser.add_argument("--encoding", choices=["flat", "mesh"], default=None,
                        help="one gene (the flat mesh index, the thesis's) or one per axis "
                        "(default: flat)")
    parser.add_argument("--noise-on", choices=["rank", "value"], default=None,
                        help="add the noise to the values' ranks or to the values "
                        "(default: rank)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")


def _montecarlo_settings(args) -> Dict[str, Any]:
    from nord.studies.montecarlo import PRESETS
    typed: Dict[str, Any] = {}
    if args.preset is not None:
        typed.update({k: list(v) if isinstance(v, tuple) else v
                      for k, v in PRESETS[args.preset].items()})
    typed.update(_typed(args, ("dims", "taus", "generations", "repeats", "engine", "encoding",
                               "noise_on", "seed")))
    if args.points is not None:
        typed["points"] = {str(d): n for d, n in args.points}
    return typed


def _nasbench101_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=None,
                        help="architectures drawn with replacement (default: 100000)")
    parser.add_argument("--resamples", type=int, default=None,
                        help="bootstrap resamples (default: 800)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    parser.add_argument("--table", default=None, help="NAS-Bench-101 table (default: found "
                        "through $NORD_DATA; nasbench_full.tfrecord adds the 108PTG baseline)")
    parser.add_argument("--distinct-runs", action="store_true", default=None,
                        help="the 108PTG never draws the FTG's own run (the thesis's may)")


def _ranking_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--architectures", type=int, default=None,
                        help="DeepNEAT architectures (default 12; thesis 140, chapter 4: 20)")
    parser.add_argument("--optimizers", nargs="+", default=None,
                        help="optimizer names (default: the seven of chapter 4)")
    parser.add_argument("--epochs", dest="budgets", type=int, nargs="+", default=None,
                        help="epoch budgets; the largest is the fully-trained group (default "
                        "1 2 5; thesis 1 5 10 20 50)")
    parser.add_argument("--dataset", default=None,
                        help="fashion-mnist or cifar10 (default fashion-mnist)")
    parser.add_argument("--percentage", type=float, default=None,
                        help="share of the training set (default 0.01)")
    parser.add_argument("--scheme", choices=["chapter5", "chapter4"], default=None,
                        help="random diverse architectures, or one evolving lineage "
                        "(default chapter5)")
    parser.add_argument("--split", choices=["test", "validation"], default=None,
                        help="the split accuracies are measured on (default validation; the "
                        "thesis's: test)")
    parser.add_argument("--validation-fraction", type=float, default=None,
                        help="share of the training set held out as validation split "
                        "(default 0.02)")
    parser.add_argument("--youngest", type=int, default=None,
                        help="k of the youngest-k subset (chapter 4; default min(10, N/2))")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64")
    parser.add_argument("--resamples", type=int, default=None,
                        help="bootstrap resamples (default 800)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--space-option", dest="space_options", action="append",
                        type=_key_value, default=None, metavar="KEY=VALUE",
                        help="a DeepNEAT space option (repeatable), e.g. filters=[8,16]")
    parser.add_argument("--independent-budgets", action="store_true", default=None,
                        help="train each budget on its own, from its own seed, as the thesis "
                        "did (default: read the budgets off one training)")


RANKING_SETTINGS = ("architectures", "optimizers", "budgets", "dataset", "percentage",
                    "scheme", "split", "validation_fraction", "youngest", "batch_size",
                    "resamples", "seed", "independent_budgets")


def _fidelity_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default=None, help="search space (default deepneat)")
    parser.add_argument("--dataset", default=None, help="dataset (default fashion-mnist)")
    parser.add_argument("--architectures", type=int, default=None,
                        help="architectures sampled (default 12)")
    parser.add_argument("--epochs", type=int, nargs="+", default=None,
                        help="epoch budgets (default 1 2 4)")
    parser.add_argument("--shares", type=float, nargs="+", default=None,
                        help="shares of the training set (default 0.01 0.02)")
    parser.add_argument("--optimizer", default=None, help="optimizer (default adam)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64")
    parser.add_argument("--split", choices=["validation", "test"], default=None,
                        help="where accuracies are measured (default validation)")
    parser.add_argument("--validation-fraction", type=float, default=None,
                        help="share of the training set held out as validation split "
                        "(default 0.02)")
    parser.add_argument("--target", type=float, default=None,
                        help="the tau a budget must reach (default 0.75)")
    parser.add_argument("--resamples", type=int, default=None,
                        help="bootstrap resamples (default 800)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--space-option", dest="space_options", action="append",
                        type=_key_value, default=None, metavar="KEY=VALUE",
                        help="a constructor option of the space (repeatable)")


FIDELITY_SETTINGS = ("space", "dataset", "architectures", "epochs", "shares", "optimizer",
                     "batch_size", "split", "validation_fraction", "target", "resamples",
                     "seed")


def _fmnist_architectures_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=["thesis"], default=None,
                        help="§7.3.4's settings: 980 architectures, 32 channels, 108 epochs on "
                        "the whole training set, test accuracy (other flags override them)")
    parser.add_argument("--architectures", type=int, default=None,
                        help="distinct architectures (default 12; thesis 980)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default 1; thesis 108)")
    parser.add_argument("--percentage", type=float, default=None,
                        help="share of the training set (default 0.02; thesis 1)")
    parser.add_argument("--channels", type=int, default=None,
                        help="filters of 3x3 convolutions, half for 1x1 (default 8; thesis 32)")
    parser.add_argument("--pool", choices=["2x2", "3x3"], default=None,
                        help="maxpool3x3 nodes as 2x2 stride-2 pooling (the thesis's) or "
                        "NAS-Bench-101's 3x3 stride 1 (default 2x2)")
    parser.add_argument("--max-nodes", type=int, default=None,
                        help="nodes per architecture, input and output included (default 8)")
    parser.add_argument("--optimizer", default=None, help="optimizer (default adamw)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64")
    parser.add_argument("--split", choices=["validation", "test"], default=None,
                        help="where accuracies are measured (default validation; thesis test)")
    parser.add_argument("--validation-fraction", type=float, default=None,
                        help="share of the training set held out as validation split "
                        "(default 0.02)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")


FMNIST_ARCHITECTURES_SETTINGS = ("architectures", "epochs", "percentage", "channels", "pool",
                                 "max_nodes", "optimizer", "batch_size", "split",
                                 "validation_fraction", "seed")


def _fmnist_architectures_settings(args) -> Dict[str, Any]:
    from nord.studies.fmnist_architectures import THESIS_SETTINGS
    typed: Dict[str, Any] = dict(THESIS_SETTINGS) if args.preset == "thesis" else {}
    typed.update(_typed(args, FMNIST_ARCHITECTURES_SETTINGS))
    return typed


def _predictors_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=["table-7.4"], default=None,
                        help="§7.4.3's settings: 450/1050 cells, F=300, 2 EGraph epochs, 200 "
                        "ReNAS epochs, seeds 0-4 (other flags override them)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="egraph, egraph-regression, renas-32, renas-1024, search-best "
                        "(default: egraph renas-32 renas-1024, and search-best with --search)")
    parser.add_argument("--search", default=None, metavar="FOLDER",
                        help="a nord search --space gcn run: its best genome is trained too, "
                        "and table 7.3 and Figures 7.3-7.8 are drawn from it")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="training seeds, one trial per model and seed (default 0; "
                        "thesis 5 seeds)")
    parser.add_argument("--train", type=int, default=None,
                        help="training architectures (default 100; thesis 450)")
    parser.add_argument("--test", type=int, default=None,
                        help="test architectures (default 200; thesis 1050)")
    parser.add_argument("--epsilon", type=float, default=None,
                        help="margin of the EQUAL class (default 0.003)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="EGraph training epochs (default 1; thesis 2, or 5)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="EGraph batch size (default 32)")
    parser.add_argument("--filters", type=int, default=None,
                        help="EGraph's standard width F (default 32; thesis 300)")
    parser.add_argument("--regression-epochs", type=int, default=None,
                        help="EGraph-Regression epochs (default 20)")
    parser.add_argument("--renas-epochs", type=int, default=None,
                        help="ReNAS epochs (default 20; thesis 200)")
    parser.add_argument("--dataset", default=None,
                        help="nasbench101 or a run folder of evaluated architectures "
                        "(default nasbench101)")
    parser.add_argument("--data-seed", type=int, default=None,
                        help="seed of the sampled cells and their split (default 0)")
    parser.add_argument("--table", default=None, help="NAS-Bench-101 table (default: found "
                        "through $NORD_DATA)")
    parser.add_argument("--top", type=int, default=None,
                        help="genomes listed in table 7.3 (default 10)")


PREDICTORS_SETTINGS = ("models", "search", "seeds", "train", "test", "epsilon", "epochs",
                       "batch_size", "filters", "regression_epochs", "renas_epochs", "dataset",
                       "data_seed", "table", "top")


def _predictors_settings(args) -> Dict[str, Any]:
    from nord.studies.predictors import THESIS_SETTINGS
    typed: Dict[str, Any] = dict(THESIS_SETTINGS) if args.preset == "table-7.4" else {}
    typed.update(_typed(args, PREDICTORS_SETTINGS))
    return typed


def _with_space_options(names):
    """Typed flags -> settings, with ``--space-option KEY=VALUE`` gathered in a dict."""
    def settings(args) -> Dict[str, Any]:
        typed = _typed(args, names)
        if args.space_options is not None:
            typed["space_options"] = dict(args.space_options)
        return typed
    return settings


def _key_value(text: str):
    from nord.cli import key_value_argument  # the one KEY=VALUE parser of the CLI
    return key_value_argument(text)


def _typed(args, names) -> Dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


#: study name -> (add its flags, typed flags -> settings)
STUDY_FLAGS: Dict[str, tuple] = {
    "montecarlo": (_montecarlo_flags, _montecarlo_settings),
    "fidelity": (_fidelity_flags, _with_space_options(FIDELITY_SETTINGS)),
    "ranking": (_ranking_flags, _with_space_options(RANKING_SETTINGS)),
    "fmnist-architectures": (_fmnist_architectures_flags, _fmnist_architectures_settings),
    "predictors": (_predictors_flags, _predictors_settings),
    "nasbench101-epochs": (_nasbench101_flags,
                           lambda args: _typed(args, ("samples", "resamples", "seed", "table",
                                                      "distinct_runs"))),
}


def add_study_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """``nord study`` and one sub-command per registered study with flags."""
    from nord.studies import STUDIES
    study = command("study", help="the studies of chapters 4-5 and 7, run and resumable like a "
                    "search; tables and figures go into the run folder",
                    description="Run a study: a fixed list of trials, each committed to "
                    "<out>/run.sqlite as it finishes (--resume continues a killed one), "
                    "then its tables and figures.")
    kinds = study.add_subparsers(dest="study", required=True, metavar="STUDY")
    for name in STUDIES.names():
        if name not in STUDY_FLAGS:
            continue
        add_flags, _ = STUDY_FLAGS[name]
        parser = kinds.add_parser(name, help=STUDIES.summary(name),
                                  formatter_class=study.formatter_class,
                                  description=STUDIES.summary(name))
        add_flags(parser)
        shared = parser.add_argument_group("where and how it runs")
        shared.add_argument("--out", default=f"runs/study-{name}", help="run folder")
        shared.add_argument("--resume", action="store_true",
                            help="continue the study in --out (its stored settings)")
        shared.add_argument("--executor", default="serial",
                            help="serial, process or ray (as nord search)")
        shared.add_argument("--workers", type=int, default=1, help="trials run at once")
        shared.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.set_defaults(handler=run_study_command)


def run_study_command(args) -> int:
    import contextlib
    import logging

    from nord.execution.progress import ProgressBar
    from nord.studies import STUDIES
    from nord.studies.base import load_study_settings, run_study

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    study_class = STUDIES[args.study]
    typed = STUDY_FLAGS[args.study][1](args)
    if args.resume:
        stored = load_study_settings(args.out, args.study)
        study = study_class.from_settings({**stored, **typed})
    else:
        study = study_class.from_settings(typed)
    executor = args.executor
    if args.workers > 1 and executor == "serial":
        executor = "process"  # --workers N alone means a local pool, as for nord search
    with contextlib.ExitStack() as stack:
        callbacks = [] if args.quiet else [stack.enter_context(
            ProgressBar(len(study.trials()), f"{args.study} trials"))]
        outcome = run_study(study, args.out, resume=args.resume, executor=executor,
                            workers=args.workers, callbacks=callbacks)
    print(outcome.text)
    print(f"\n{args.out}: {outcome.summary.line()}")
    print("written: " + ", ".join(str(p) for p in outcome.files))
    return 0
