"""The ``nord`` command."""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
from typing import List, Optional

from nord.errors import NordError, UsageError

__all__ = ["main", "build_parser", "key_value_argument", "EXIT_USAGE", "EXIT_FAILURE"]


def _demo(args) -> int:
    import logging

    from nord.demo import DemoConfig, run_demo
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("nord.execution.run_loop").setLevel(logging.ERROR)
    run_demo(DemoConfig(budget=args.budget, population=args.population, sample=args.sample,
                        channels=args.channels, percentage=args.percentage,
                        epochs=args.epochs, workers=args.workers, threads=args.threads,
                        seed=args.seed,
                        fitness_split=args.fitness_split, baseline=not args.no_baseline,
                        out=args.out, data_root=args.data_root),
             progress=not args.quiet)
    return 0


def _describe(args) -> int:
    from nord.neural_nets import NeuralDescriptor, NeuralNet
    descriptor = NeuralDescriptor.from_file(args.descriptor)
    descriptor.validate()
    shape = tuple(args.input_shape)
    net = NeuralNet(descriptor, args.num_classes, shape if len(shape) > 1 else shape[0],
                    args.channels, policy=args.policy, channels=args.fixed_channels)
    print(net.summary())
    print(f"canonical hash: {descriptor.canonical_hash()}")
    if args.png:
        descriptor.plot(args.png)
        print(f"graph drawn to {args.png}")
    if args.dot:
        with open(args.dot, "w") as handle:
            handle.write(descriptor.to_dot())
        print(f"DOT written to {args.dot}")
    return 0


#: ``nord search`` options that are settings of the run (None: not typed)
_SEARCH_SETTINGS = ("space", "strategy", "budget", "population", "sample", "seed", "fitness",
                    "report", "cache", "table", "executor", "workers", "ray_address", "gpus",
                    "synchronous", "cycle_size", "threads")


def _search(args) -> int:
    import logging
    from dataclasses import fields

    from nord.execution.progress import ProgressBar
    from nord.execution.runs import SearchSettings, run_search

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("nord.execution.run_loop").setLevel(
        logging.ERROR if args.quiet else logging.WARNING)
    if args.fidelity_from is not None:
        _apply_fidelity(args)
    elif args.fidelity_target is not None:
        from nord.errors import SettingsError
        raise SettingsError("--fidelity-target re-decides a fidelity study's recommendation; "
                            "give the study with --fidelity-from too")
    explicit = {k: getattr(args, k) for k in _SEARCH_SETTINGS if getattr(args, k) is not None}
    if explicit.get("workers", 1) > 1 and "executor" not in explicit and not args.resume:
        explicit["executor"] = "process"  # --workers N alone means a local pool
    space_options = {}
    if args.held_only is not None:
        space_options["held_only"] = args.held_only
    if args.mutation is not None:
        space_options["mutation"] = args.mutation
    if args.channels is not None:
        space_options["channels"] = args.channels
    space_options.update(dict(args.space_option or ()))
    if space_options:
        explicit["space_options"] = space_options
    strategy_options = dict(args.strategy_option or ())
    if strategy_options:
        explicit["strategy_options"] = strategy_options
    objective_options = {key: value for key, value in (
        ("dataset", args.dataset), ("epochs", args.epochs),
        ("data_percentage", args.percentage), ("optimizer", args.optimizer),
        ("split", args.fitness_split), ("batch_size", args.batch_size)) if value is not None}
    objective_options.update(dict(args.objective_option or ()))
    if args.log_curves:
        if not args.log:
            raise UsageError("--log-curves sends each evaluation's training curve to a "
                             "logger: add --log tensorboard or --log mlflow")
        objective_options["curves"] = True
    if objective_options:
        explicit["objective_options"] = objective_options
    defaults = {f.name: f.default for f in fields(SearchSettings)
                if f.name in _SEARCH_SETTINGS}
    settings = None if args.resume else SearchSettings(**{
        **defaults, **explicit,
        "report": tuple(explicit.get("report", ())),
        "space_options": space_options, "strategy_options": strategy_options,
        "objective_options": objective_options})

    with contextlib.ExitStack() as stack:
        callbacks = [] if args.quiet else [stack.enter_context(ProgressBar(
            explicit.get("budget", settings.budget if settings else None)))]
        if args.log:  # a missing package fails here, before the run store is made
            from nord.execution.loggers import make_logger
            callbacks += [stack.enter_context(make_logger(
                name, args.out, settings.to_dict() if settings else None))
                for name in dict.fromkeys(args.log)]
        summary = run_search(settings, args.out, resume=args.resume, callbacks=callbacks,
                             explicit=explicit)
    print(f"{args.out}: {summary.line()}")
    best = summary.best
    if best is not None and best.status in ("ok", "cached"):
        metrics = ", ".join(f"{k}={v}" for k, v in best.metrics.items())
        print(f"best: #{best.id} {metrics}")
        print(f"      {_described(args.out, best.architecture)}")
    elif best is not None:
        print(f"no evaluation succeeded; see nord report {args.out} for the reasons")
    return 0


def _apply_fidelity(args) -> None:
    """Take the epochs and share (and, unless typed, the space, dataset and optimizer)
    from the fidelity study in ``--fidelity-from``."""
    from nord.errors import SettingsError
    from nord.studies.fidelity import load_recommendation
    if args.resume:
        raise SettingsError("--fidelity-from applies when a search starts; a resumed search "
                            "keeps the epochs and share it started with")
    chosen, study = load_recommendation(args.fidelity_from, args.fidelity_target)
    for flag, typed in (("--epochs", args.epochs), ("--percentage", args.percentage)):
        if typed is not None:
            raise SettingsError(f"{flag} and --fidelity-from both set the training budget; "
                                f"leave {flag} out (the study recommends {chosen.epochs} "
                                f"epochs on a share of {chosen.share:g})")
    for name in ("space", "dataset", "optimizer"):
        typed, studied = getattr(args, name), study.get(name)
        if typed is not None and typed != studied:
            raise SettingsError(f"--{name} {typed}: the fidelity study in "
                                f"{args.fidelity_from} measured --{name} {studied}; its "
                                f"recommendation holds for that one: leave --{name} out or "
                                f"run nord study fidelity with --{name} {typed}")
        setattr(args, name, studied)
    studied_options = dict(study.get("space_options") or {})
    if args.space_option is None:
        args.space_option = list(studied_options.items()) or None
    elif dict(args.space_option) != studied_options:
        raise SettingsError(f"--space-option {dict(args.space_option)}: the fidelity study "
                            f"measured the space with {studied_options}; leave --space-option "
                            f"out or study the space with these options")
    if args.batch_size is None:
        args.batch_size = study.get("batch_size")
    if args.fitness_split is None:
        args.fitness_split = study.get("split")
    args.epochs, args.percentage = chosen.epochs, chosen.share
    print(f"fidelity from {args.fidelity_from}: {chosen.line()}")


def _described(out, architecture) -> str:
    """The best architecture as its space describes it (the report's way)."""
    from nord.analysis.report import Report
    from nord.execution.store import RunStore
    with RunStore(f"{out}/run.sqlite", create=False) as store:
        return Report(store).describe_architecture(architecture)


def _report(args) -> int:
    if args.html is not None:
        return _html_report(args)
    if len(args.runs) > 1:
        raise UsageError(f"{len(args.runs)} run folders given: the Markdown report is of one "
                         f"run; add --html FILE for one page comparing them")
    args.run = args.runs[0]
    from nord.analysis.report import write_report
    from nord.studies.base import is_study, report_study
    if is_study(args.run):
        outcome = report_study(args.run)
        print(outcome.text)
        print("written: " + ", ".join(str(p) for p in outcome.files))
        return 0
    path = write_report(args.run)
    print(f"report written to {path} (with best_so_far.png, fitness_ecdf.png)")
    return 0


def _html_report(args) -> int:
    """``nord report RUN [RUN ...] --html [FILE]``: one self-contained page, read-only."""
    from pathlib import Path

    from nord.analysis.html_report import write_html_report
    out = args.html
    if out is True:
        if len(args.runs) > 1:
            raise UsageError("several run folders make one comparison page: say where it goes "
                             "with --html FILE (e.g. --html comparison.html)")
        out = Path(args.runs[0]) / "report.html"
    path = write_html_report(args.runs, out, drawn=args.drawn)
    size = path.stat().st_size
    print(f"HTML report written to {path} ({size / 1e6:.1f} MB, self-contained)")
    return 0


def _dashboard(args) -> int:
    from nord.analysis.dashboard import serve_dashboard
    return serve_dashboard(args.runs, host=args.host, port=args.port, drawn=args.drawn,
                           poll_seconds=args.poll, announce=print)


def _train_final(args) -> int:
    import logging

    from nord.execution.final_training import (FinalTrainingSettings, architecture_of,
                                               default_final_folder, train_final)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("nord.neural_nets.evaluators").setLevel(logging.INFO)
    settings = FinalTrainingSettings(dataset=args.dataset, epochs=args.epochs,
                                     optimizer=args.optimizer, batch_size=args.batch_size,
                                     augment=not args.no_augment,
                                     data_percentage=args.percentage, seed=args.seed,
                                     device=args.device, channels=args.channels,
                                     validation_fraction=args.validation_fraction,
                                     channels_last=args.channels_last)
    descriptor = architecture_of(args.source, channels=args.channels)
    out = args.out or default_final_folder(args.source, args.channels)
    print(f"training {args.source} for {args.epochs} epochs; results go to {out}", flush=True)
    result = train_final(descriptor, settings, out)
    print(result.line())
    return 0


def _export(args) -> int:
    import torch

    from nord.execution.final_training import architecture_of
    from nord.neural_nets import LocalEvaluator
    from nord.neural_nets.export import export_network
    descriptor = architecture_of(args.source, channels=args.channels)
    torch.manual_seed(args.seed)
    net = LocalEvaluator().build_network(descriptor, args.dataset)
    files = export_network(net.eval(), descriptor, args.out)
    program = (files.program.name if files.program is not None
               else f"no torch.export program ({files.program_note})")
    print(f"exported to {files.folder}: {files.descriptor.name}, {files.weights.name}, "
          f"{files.torchscript.name}, {program}, {files.source.name}, "
          f"{files.manifest.name} (weights freshly initialised; nord train-final exports a "
          f"trained network)")
    return 0


#: what ``nord search`` does when a flag is left out (SearchSettings' defaults;
#: a test keeps them equal, so the help never states a wrong default)
SEARCH_DEFAULTS = {"space": "nasbench201", "strategy": "evolution", "budget": 150,
                   "population": 10, "sample": 3, "seed": 0, "executor": "serial",
                   "workers": 1, "gpus": 0.0}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (none for flags whose default means "unset"),
    and keeps the line breaks of descriptions and epilogs."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if ("%(default)" in help_text or not action.option_strings or action.nargs == 0
                or action.default in (None, argparse.SUPPRESS)):
            return help_text
        return f"{help_text} (default: %(default)s)"


def _choices_epilog(title: str, registry) -> str:
    """``title``, then one line per registered name and its summary."""
    width = max(len(name) for name in registry.names())
    lines = [f"  {name:<{width}}  {registry.summary(name)}".rstrip()
             for name in registry.names()]
    return f"{title}:\n" + "\n".join(lines)


def key_value_argument(text: str):
    """``KEY=VALUE`` of --space-option / --strategy-option; VALUE is read as
    JSON when it parses (numbers, true/false, lists), else kept as text."""
    import json
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. mutation=nasbench)")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def build_parser() -> argparse.ArgumentParser:
    """The ``nord`` argument parser. Choices of spaces, strategies and executors
    come from their registries, so registered additions appear here."""
    import nord
    from nord.design.spaces import SPACES
    from nord.design.strategies import STRATEGIES
    from nord.execution.executors import EXECUTORS

    parser = argparse.ArgumentParser(prog="nord", formatter_class=_HelpFormatter,
                                     description="NORD: parallel and distributed Neural "
                                     "Architecture Search")
    parser.add_argument("--version", action="version", version=f"nord {nord.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, description: str = "", **options) -> argparse.ArgumentParser:
        return commands.add_parser(name, formatter_class=_HelpFormatter,
                                   description=textwrap.fill(description, 79) or None,
                                   **options)

    demo = command("demo", help="a scaled-down chapter-6 search on real Fashion-MNIST, "
                   "evolution against random search (the README's main job)",
                   description="A scaled-down thesis chapter 6 on real Fashion-MNIST: "
                   "regularized evolution, then random search with the same budget. The "
                   "thesis's settings are flags (P=100, S=25, 10 epochs).")
    demo.add_argument("--budget", type=int, default=30, help="evaluations per search")
    demo.add_argument("--population", type=int, default=10, help="P (thesis 100)")
    demo.add_argument("--sample", type=int, default=3, help="S (thesis 25)")
    demo.add_argument("--channels", type=int, default=16, help="C")
    demo.add_argument("--percentage", type=float, default=0.1,
                      help="share of the training set")
    demo.add_argument("--epochs", type=int, default=1, help="epochs per candidate (thesis 10)")
    demo.add_argument("--workers", type=int, default=2, help="candidates trained at once")
    demo.add_argument("--threads", type=int, default=1,
                      help="torch threads per candidate (1: the same search with any "
                      "--workers)")
    demo.add_argument("--fitness-split", choices=["validation", "test"], default="validation",
                      help="score candidates on a validation split or on the test set")
    demo.add_argument("--no-baseline", action="store_true", help="skip the random search")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST IDX "
                      "files (default: Debian's dataset-fashion-mnist, or $NORD_DATA)")
    demo.set_defaults(handler=_demo)

    describe = command("describe", help="validate and compile a descriptor JSON file; "
                       "print its layers, shapes and hash")
    describe.add_argument("descriptor", help="descriptor JSON (NeuralDescriptor.to_json())")
    describe.add_argument("--input-shape", type=int, nargs="+", default=[28, 28],
                          help="input height and width (one number for 1-d inputs)")
    describe.add_argument("--channels", type=int, default=1, help="input channels")
    describe.add_argument("--num-classes", type=int, default=10, help="outputs")
    describe.add_argument("--policy", default="minimum_viable_size",
                          choices=["minimum_viable_size", "maximum_viable_size", "fixed_channels",
                                   "sum_to_widest"],
                          help="how layers' channel counts are chosen")
    describe.add_argument("--fixed-channels", type=int, default=None,
                          help="C for the fixed_channels policy")
    describe.add_argument("--png", help="draw the graph to this PNG")
    describe.add_argument("--dot", help="write Graphviz DOT text to this file")
    describe.set_defaults(handler=_describe)

    _add_search(command, SPACES, STRATEGIES, EXECUTORS)

    final = command("train-final", help="train a found architecture as thesis §6.4.2 does "
                    "(wider, augmented, Adamax, 20 epochs), report test accuracy and export it")
    final.add_argument("source", help="a run folder (its best architecture), a descriptor "
                       "JSON file, a REMNet genome JSON file, or 'remnet' (the thesis's REMNet)")
    final.add_argument("--channels", type=int, help="widen to C channels (thesis: 128 or 256; "
                       "default: the width it was searched at)")
    final.add_argument("--epochs", type=int, default=20, help="training epochs")
    final.add_argument("--optimizer", default="adamax", help="optimizer name")
    final.add_argument("--batch-size", type=int, default=128, help="batch size")
    final.add_argument("--percentage", type=float, default=1.0,
                       help="share of the training set")
    final.add_argument("--dataset", default="fashion-mnist", help="registered dataset")
    final.add_argument("--no-augment", action="store_true",
                       help="no random horizontal flip / random erasing")
    final.add_argument("--validation-fraction", type=float, default=0.0,
                       help="hold out this share of the training set and score it every "
                       "epoch (curves.csv/.png); thesis §6.4.2: 0, chapter 8: 0.1")
    final.add_argument("--channels-last", action="store_true",
                       help="train in the channels-last memory format (faster convolutions "
                       "on most CPUs and tensor-core GPUs)")
    final.add_argument("--seed", type=int, default=0, help="random seed")
    final.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    final.add_argument("--out", default=None,
                       help="folder for final.json and model/ (default: <run>/final[-C<C>] "
                       "for a run folder, runs/final/<name>[-C<C>] otherwise)")
    final.set_defaults(handler=_train_final)

    export = command("export", help="write an architecture as descriptor JSON, state dict, "
                     "TorchScript, a torch.export program and Python source")
    export.add_argument("source", help="a run folder, a descriptor JSON file, or 'remnet'")
    export.add_argument("--out", required=True, help="folder to write the files to")
    export.add_argument("--dataset", default="fashion-mnist",
                        help="registered dataset (sets input shape and classes)")
    export.add_argument("--channels", type=int, help="widen to C channels")
    export.add_argument("--seed", type=int, default=0, help="seed of the fresh weights")
    export.set_defaults(handler=_export)

    report = command("report", help="plots and a Markdown summary of a run (a study's "
                     "tables and figures, for a nord study folder); --html: one "
                     "self-contained page of one or more runs")
    report.add_argument("runs", nargs="+", metavar="RUN",
                        help="run folder (the --out of nord search, nord study or nord darts "
                        "search); several with --html")
    report.add_argument("--html", nargs="?", const=True, default=None, metavar="FILE",
                        help="write one self-contained HTML page instead (settings, plots, a "
                        "sortable table, architectures, failures; several runs compared), to "
                        "FILE (default with one run: RUN/report.html); reads the stores only")
    report.add_argument("--drawn", type=int, default=5,
                        help="--html: architectures drawn per run (the fittest)")
    report.set_defaults(handler=_report)

    dashboard = command("dashboard", help="serve the HTML report of runs on a local web "
                        "page that refreshes while they run",
                        description="Serve the --html report of one or more runs and reload "
                        "it in the browser whenever a store gets new results. The stores are "
                        "opened read-only: it is safe beside a running search. Ctrl-C stops it.")
    dashboard.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s)")
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to listen on (0.0.0.0: every interface; the page "
                           "has no login)")
    dashboard.add_argument("--port", type=int, default=8050, help="port (0: any free one)")
    dashboard.add_argument("--drawn", type=int, default=5,
                           help="architectures drawn per run on the page (others on demand)")
    dashboard.add_argument("--poll", type=float, default=2.0,
                           help="seconds between the page's checks for new results")
    dashboard.set_defaults(handler=_dashboard)

    from nord.studies.commands import add_study_commands
    add_study_commands(command)
    from nord.darts.commands import add_darts_commands
    add_darts_commands(command)
    return parser


def _add_search(command, spaces, strategies, executors) -> None:
    """``nord search`` and its flags, in groups."""
    shown = SEARCH_DEFAULTS
    search = command(
        "search", help="search a space with a strategy; every evaluation goes to "
        "<out>/run.sqlite; --resume continues a stopped or killed run",
        description="Run a search. Settings left out take their defaults (or, with "
        "--resume, the stored run's). With several workers, asynchronous evolution (the "
        "default) is not reproducible: results arrive in a different order each time, and "
        "each child is bred from the population as it stands then, so two runs with the "
        "same seed differ. --synchronous --cycle-size N repeats exactly with any --workers "
        "(when training, at the same --threads).",
        epilog="\n\n".join([_choices_epilog("search spaces (--space)", spaces),
                            _choices_epilog("strategies (--strategy)", strategies),
                            _choices_epilog("executors (--executor)", executors)]))

    what = search.add_argument_group("what is searched, and how")
    what.add_argument("--space", choices=spaces.names(), metavar="SPACE",
                      help=f"search space, one of {', '.join(spaces.names())} (default: "
                      f"{shown['space']}); spaces without a benchmark table train every "
                      f"candidate (see the training options)")
    what.add_argument("--strategy", choices=strategies.names(), metavar="STRATEGY",
                      help=f"search strategy, one of {', '.join(strategies.names())} "
                      f"(default: {shown['strategy']})")
    what.add_argument("--budget", type=int,
                      help=f"evaluations in all (default: {shown['budget']})")
    what.add_argument("--seed", type=int, help=f"random seed (default: {shown['seed']})")
    what.add_argument("--population", type=int,
                      help=f"evolution: population size P (default: {shown['population']})")
    what.add_argument("--sample", type=int,
                      help=f"evolution: sample size S (default: {shown['sample']})")
    what.add_argument("--synchronous", action="store_true", default=None,
                      help="evolution with several workers: cycles of W children bred from "
                      "the same population (default: asynchronous, a child per result, "
                      "which depends on the order results arrive in, so it is not "
                      "reproducible); with --cycle-size the same seed gives the same search")
    what.add_argument("--cycle-size", type=int,
                      help="--synchronous: children per cycle (default: --workers); fix it "
                      "to get the same search with any number of workers")
    what.add_argument("--space-option", dest="space_option", action="append", default=None,
                      type=key_value_argument, metavar="KEY=VALUE",
                      help="another option of the space's constructor (repeatable; VALUE "
                      "is read as JSON when it parses)")
    what.add_argument("--strategy-option", dest="strategy_option", action="append",
                      default=None, type=key_value_argument, metavar="KEY=VALUE",
                      help="another option of the strategy's constructor (repeatable)")

    table = search.add_argument_group("benchmark tables (nasbench201, nasbench101)")
    table.add_argument("--fitness", help="nasbench201: a table column (default: "
                       "cifar10_valid_valid_200ep); nasbench101: <accuracy>@<epochs> "
                       "(default: validation_accuracy@108)")
    table.add_argument("--report", action="append", metavar="COLUMN",
                       help="nasbench201: another column to record (default: "
                       "cifar10_test_200ep)")
    table.add_argument("--table", help="benchmark table file or folder (default: found "
                       "via $NORD_DATA)")
    where = table.add_mutually_exclusive_group()
    where.add_argument("--held-only", dest="held_only", action="store_true", default=None,
                       help="nasbench101: stay inside the loaded table's cells (default: "
                       "when the table is a subset, like the shipped 30k cells)")
    where.add_argument("--anywhere", dest="held_only", action="store_false",
                       help="nasbench101: propose any cell (those the table lacks score 0)")
    table.add_argument("--mutation", choices=["listing_3_6", "nasbench"],
                       help="nasbench101 mutation rules (default: listing_3_6, or nasbench "
                       "when staying inside a subset)")
    table.add_argument("--no-cache", dest="cache", action="store_false", default=None,
                       help="evaluate isomorphic architectures again instead of reusing "
                       "results")

    training = search.add_argument_group("training (spaces that train their candidates)")
    training.add_argument("--channels", type=int, help="remnet: channel count C (default: 16)")
    training.add_argument("--dataset", help="dataset to train on (default: fashion-mnist; "
                          "gcn: the architectures its rankers learn, nasbench101 or a search's "
                          "run folder)")
    training.add_argument("--epochs", type=int, help="training epochs per candidate "
                          "(default: 1; thesis 10, gcn 2)")
    training.add_argument("--percentage", type=float, help="share of the training set "
                          "(default: 1.0)")
    training.add_argument("--optimizer", help="optimizer (default: adam)")
    training.add_argument("--batch-size", type=int, help="batch size (default: 64)")
    training.add_argument("--fitness-split", choices=["validation", "test"],
                          help="score on a validation split carved from the training set "
                          "(default) or on the test set (as the thesis did)")
    training.add_argument("--objective-option", dest="objective_option", action="append",
                          default=None, type=key_value_argument, metavar="KEY=VALUE",
                          help="another option of the objective (repeatable), e.g. for "
                          "--space gcn size=500 epsilon=0.003 (Table 7.2's values)")
    training.add_argument("--fidelity-from", metavar="STUDY",
                          help="train at the epochs and data share a nord study fidelity "
                          "folder recommends (its space, dataset and optimizer unless given)")
    training.add_argument("--fidelity-target", type=float,
                          help="with --fidelity-from: recommend for this tau instead of the "
                          "study's target")

    running = search.add_argument_group("where evaluations run")
    running.add_argument("--executor", choices=executors.names(), metavar="EXECUTOR",
                         help=f"one of {', '.join(executors.names())} (default: "
                         f"{shown['executor']}, or process with --workers above 1)")
    running.add_argument("--workers", type=int,
                         help=f"evaluations in flight at once (default: {shown['workers']}); "
                         f"above 1, asynchronous evolution does not repeat exactly (see "
                         f"--synchronous)")
    running.add_argument("--threads", type=int,
                         help="torch threads per evaluation (default: the cores shared "
                         "between workers); CPU training repeats exactly only at the same "
                         "thread count")
    running.add_argument("--ray-address", help="ray: an existing cluster, e.g. auto or "
                         "head:6379 (default: start a local Ray instance)")
    running.add_argument("--gpus", type=float,
                         help=f"ray: GPUs per evaluation (default: {shown['gpus']})")

    run = search.add_argument_group("the run folder")
    run.add_argument("--out", required=True, help="run folder (holds run.sqlite)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument("--quiet", action="store_true", help="no progress bar or warnings")
    run.add_argument("--log", action="append", choices=["tensorboard", "mlflow"],
                     help="also log every result (best fitness, fitness, cost, metrics) to "
                     "TensorBoard (<out>/tensorboard; pip install tensorboard) or MLflow "
                     "(<out>/mlflow.db; pip install mlflow); repeatable")
    run.add_argument("--log-curves", action="store_true",
                     help="with --log, spaces that train: also each evaluation's training "
                     "loss per epoch (kept in its metrics as train_losses)")
    search.set_defaults(handler=_search)


#: exit statuses: a usage error (the command line or its settings are wrong, as
#: for a mistyped flag, which argparse reports with 2) and a failure while running
EXIT_USAGE = 2
EXIT_FAILURE = 1


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``nord``; returns 0, 2 for a usage error (fix the command line), 1 for
    a failure while running (missing or damaged files, a failed evaluation)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"nord {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (NordError, OSError) as error:  # OSError: a path missing, not writable, ...
        print(f"nord {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        hint = ""
        if args.command == "search":
            hint = (f"; every finished evaluation is kept: continue with nord search "
                    f"--out {args.out} --resume")
        print(f"\nnord {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
