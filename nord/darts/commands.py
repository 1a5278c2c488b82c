"""``nord darts search``: the command line of chapter 8."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Callable

from nord.darts.settings import THESIS_SEARCH, DartsSettings

__all__ = ["add_darts_commands"]

_HELP = {
    "dataset": "registered image dataset",
    "share": "share of the training set the search uses, halved into weight and "
             "architecture data (thesis 1.0)",
    "channels": "initial channels C (thesis 16)",
    "cells": "cells (thesis 8; reductions at 1/3 and 2/3)",
    "steps": "intermediate nodes per cell",
    "multiplier": "nodes concatenated into a cell's output",
    "epochs": "search epochs (thesis 50)",
    "batch_size": "batch size (thesis 64)",
    "lr": "weights' SGD learning rate, annealed (cosine) to --lr-min",
    "lr_min": "final learning rate",
    "momentum": "SGD momentum",
    "weight_decay": "SGD weight decay",
    "arch_lr": "architecture weights' Adam learning rate",
    "arch_weight_decay": "Adam weight decay",
    "grad_clip": "gradient norm clip of the weights (0: none)",
    "warmup_epochs": "first epochs training the weights only, the architecture weights "
                     "still (against the collapse onto pooling; thesis 0)",
    "seed": "random seed (weights, data share, batch order, augmentation)",
}


def add_darts_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    darts = command("darts", help="DARTS (chapter 8): a supernet search, resumable, its "
                    "genotype and curves in the run folder",
                    description="First-order DARTS: one run-store result and checkpoint per "
                    "epoch (--resume continues a killed search), then genotype.json, "
                    "search_curves.csv/.png and darts_search.md.")
    kinds = darts.add_subparsers(dest="darts", required=True, metavar="ACTION")
    search = kinds.add_parser("search", help="search a cell pair on a share of a dataset",
                              formatter_class=darts.formatter_class)
    defaults = DartsSettings()
    for f in fields(DartsSettings):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            continue
        kind = {"int": int, "float": float, "str": str}.get(str(f.type), str)
        search.add_argument(flag, type=kind, default=None,
                            help=f"{_HELP.get(f.name, f.name)} (default: "
                            f"{getattr(defaults, f.name)})")
    search.add_argument("--no-augment", action="store_true",
                        help="no random flips / random erasing")
    search.add_argument("--preset", choices=["thesis"], default=None,
                        help="table 8.1's search settings (16 channels, 8 cells, 50 epochs, "
                        "the whole training set: a GPU's job)")
    search.add_argument("--ranks", type=int, default=None,
                        help="data-parallel ranks on this machine (gloo processes, one core "
                        "each; default 1: the serial search)")
    search.add_argument("--algorithm", choices=["weights", "gradients"], default=None,
                        help="with --ranks > 1: average the weights once per epoch (Algorithm "
                        "1, default) or the gradients every step (Algorithm 2)")
    search.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    search.add_argument("--out", default="runs/darts", help="run folder")
    search.add_argument("--resume", action="store_true",
                        help="continue the search in --out (its stored settings)")
    search.add_argument("--quiet", action="store_true", help="no progress bar")
    search.set_defaults(handler=_search)

    train = kinds.add_parser("train", help="train a genotype's final network (table 8.1: "
                             "36 channels, 20 cells, SGD momentum, batch 96, 100 epochs)",
                             formatter_class=darts.formatter_class)
    train.add_argument("source", help="a nord darts search folder (its genotype.json) or a "
                       "genotype JSON file")
    train.add_argument("--channels", type=int, default=16, help="initial channels C (thesis 36)")
    train.add_argument("--cells", type=int, default=8, help="cells (thesis 20)")
    train.add_argument("--epochs", type=int, default=1, help="training epochs (thesis 100)")
    train.add_argument("--batch-size", type=int, default=96, help="batch size (thesis 96)")
    train.add_argument("--lr", type=float, default=0.025, help="SGD learning rate, cosine "
                       "annealed")
    train.add_argument("--percentage", type=float, default=0.1,
                       help="share of the training set (thesis 1.0)")
    train.add_argument("--dataset", default="fashion-mnist", help="registered image dataset")
    train.add_argument("--no-augment", action="store_true",
                       help="no random flips / random erasing")
    train.add_argument("--preset", choices=["thesis"], default=None,
                       help="table 8.1's training settings (36 channels, 20 cells, 100 epochs, "
                       "the whole training set)")
    train.add_argument("--validation-fraction", type=float, default=0.1,
                       help="share of the training set held out and scored every epoch "
                       "(curves.csv/.png, Figures 8.6/8.7; table 8.1: 0.1; 0: none)")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    train.add_argument("--out", default=None, help="folder for final.json, curves and model/ "
                       "(default: <search folder>/final, or runs/darts-final)")
    train.set_defaults(handler=_train)

    analyse = kinds.add_parser("analyse", help="tables 8.2-8.3 and Figures 8.1-8.4, 8.6-8.7 "
                               "from groups of searches (e.g. 1 and 2 ranks, several seeds "
                               "each; their final trainings when trained)",
                               formatter_class=darts.formatter_class)
    analyse.add_argument("--group", action="append", required=True, metavar="NAME=DIR,DIR",
                         help="a setup and its search folders (repeat for each setup; the "
                         "first is the speed-up's baseline)")
    analyse.add_argument("--out", default="runs/darts-analysis", help="folder for the tables "
                         "and figures")
    analyse.add_argument("--ged-timeout", type=float, default=10.0,
                         help="seconds per graph edit distance (past it: an upper bound)")
    analyse.add_argument("--ks-from", type=int, default=10,
                         help="first final-training epoch table 8.3 compares (thesis 10)")
    analyse.set_defaults(handler=_analyse)


def _search(args) -> int:
    import contextlib

    from nord.darts.study import DartsSearchStudy
    from nord.execution.progress import ProgressBar
    from nord.studies.base import load_study_settings, run_study

    given = {f.name: getattr(args, f.name) for f in fields(DartsSettings)
             if f.name != "augment" and getattr(args, f.name, None) is not None}
    if args.no_augment:
        given["augment"] = False
    for name in ("ranks", "algorithm"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    if args.resume:
        settings = {**load_study_settings(args.out, DartsSearchStudy.name), **given}
    else:
        settings = {**(THESIS_SEARCH if args.preset == "thesis" else {}), **given}
    study = DartsSearchStudy(**settings, device=args.device)
    with contextlib.ExitStack() as stack:
        callbacks = [] if args.quiet else [stack.enter_context(
            ProgressBar(len(study.trials()), "DARTS epochs"))]
        outcome = run_study(study, args.out, resume=args.resume, callbacks=callbacks)
    print(outcome.text)
    print(f"\n{args.out}: {outcome.summary.line()}")
    print("written: " + ", ".join(str(p) for p in outcome.files))
    return 0


#: table 8.1's final training
THESIS_TRAINING = {"channels": 36, "cells": 20, "epochs": 100, "percentage": 1.0}


def read_genotype(source):
    """The genotype in a search folder's ``genotype.json`` or in a genotype file."""
    from nord.darts.genotype import Genotype
    from nord.errors import RunNotFoundError
    path = Path(source)
    if path.is_dir():
        path = path / "genotype.json"
    if not path.is_file():
        raise RunNotFoundError(f"{path} is missing: give a nord darts search folder (once "
                               f"the search has finished) or a genotype JSON file")
    return Genotype.from_json(path.read_text(encoding="utf-8"))


def _train(args) -> int:
    import logging

    from nord.darts.final_network import genotype_descriptor
    from nord.execution.final_training import FinalTrainingSettings, train_final

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chosen = {"channels": args.channels, "cells": args.cells, "epochs": args.epochs,
              "percentage": args.percentage}
    if args.preset == "thesis":
        chosen.update(THESIS_TRAINING)
    genotype = read_genotype(args.source)
    descriptor = genotype_descriptor(genotype, chosen["channels"], chosen["cells"])
    settings = FinalTrainingSettings(
        dataset=args.dataset, epochs=chosen["epochs"], optimizer="sgd",
        optimizer_params={"lr": args.lr, "momentum": 0.9, "weight_decay": 3e-4},
        batch_size=args.batch_size, augment=not args.no_augment,
        data_percentage=chosen["percentage"], seed=args.seed, device=args.device,
        lr_schedule="cosine", validation_fraction=args.validation_fraction,
        channels_last=True)
    source = Path(args.source)
    out = Path(args.out) if args.out else (source / "final" if source.is_dir()
                                           else Path("runs/darts-final"))
    print(f"training {genotype.describe()}\n  C={chosen['channels']}, {chosen['cells']} cells, "
          f"{chosen['epochs']} epochs; results go to {out}", flush=True)
    result = train_final(descriptor, settings, out)
    print(result.line())
    return 0


def _analyse(args) -> int:
    from nord.darts.report import analyse_groups
    from nord.errors import SettingsError
    groups = {}
    for text in args.group:
        name, sep, folders = text.partition("=")
        if not sep or not name.strip() or not folders.strip():
            raise SettingsError(f"--group takes NAME=DIR[,DIR...], got {text!r}")
        groups[name.strip()] = [f for f in folders.split(",") if f]
    result = analyse_groups(groups, args.out, args.ged_timeout, args.ks_from)
    print((Path(args.out) / "table_8_2.md").read_text())
    print((Path(args.out) / "table_8_3.md").read_text())
    print("written: " + ", ".join(str(p) for p in result["files"]))
    return 0
