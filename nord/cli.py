"""The ``nord`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from nord.errors import NordError

__all__ = ["main"]


def _demo(args) -> int:
    from nord.demo import DemoConfig, run_demo
    run_demo(DemoConfig(share=args.share, epochs=args.epochs, seed=args.seed,
                        out=args.out, data_root=args.data_root))
    return 0


def _describe(args) -> int:
    from nord.neural_nets import NeuralDescriptor, NeuralNet
    descriptor = NeuralDescriptor.from_json(open(args.descriptor).read())
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
                    "synchronous")


def _search(args) -> int:
    import logging
    from dataclasses import fields

    from nord.execution.runs import SearchSettings, run_search

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("nord.execution.run_loop").setLevel(
        logging.ERROR if args.quiet else logging.WARNING)
    explicit = {k: getattr(args, k) for k in _SEARCH_SETTINGS if getattr(args, k) is not None}
    if explicit.get("workers", 1) > 1 and "executor" not in explicit and not args.resume:
        explicit["executor"] = "process"  # --workers N alone means a local pool
    space_options = {}
    if args.held_only is not None:
        space_options["held_only"] = args.held_only
    if args.mutation is not None:
        space_options["mutation"] = args.mutation
    if space_options:
        explicit["space_options"] = space_options
    defaults = {f.name: f.default for f in fields(SearchSettings)
                if f.name in _SEARCH_SETTINGS}
    settings = None if args.resume else SearchSettings(**{
        **defaults, **explicit,
        "report": tuple(explicit.get("report", ())),
        "space_options": space_options})

    callbacks, bar = [], None
    if not args.quiet:
        from tqdm import tqdm
        bar = tqdm(total=explicit.get("budget", settings.budget if settings else None),
                   unit="eval", dynamic_ncols=True)

        def progress(event) -> None:
            bar.total = event.budget
            bar.n = event.done
            bar.set_postfix(best=f"{event.best_fitness:.4g}", refresh=False)
            bar.update(0)

        callbacks.append(progress)
    try:
        summary = run_search(settings, args.out, resume=args.resume, callbacks=callbacks,
                             explicit=explicit)
    finally:
        if bar is not None:
            bar.close()
    print(f"{args.out}: {summary.line()}")
    if summary.best is not None:
        metrics = ", ".join(f"{k}={v}" for k, v in summary.best.metrics.items())
        print(f"best: #{summary.best.id} {metrics}")
    return 0


def _report(args) -> int:
    from nord.analysis.report import write_report
    path = write_report(args.run)
    print(f"report written to {path} (with best_so_far.png, fitness_ecdf.png)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nord", description="NORD: parallel and "
                                     "distributed Neural Architecture Search")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train thesis listing 3.1's network on "
                               "Fashion-MNIST (the README's main job)")
    demo.add_argument("--share", type=float, default=0.1, help="share of the training set (default 0.1)")
    demo.add_argument("--epochs", type=int, default=1)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST IDX files")
    demo.set_defaults(handler=_demo)

    describe = commands.add_parser("describe", help="validate and compile a descriptor "
                                   "JSON file; print its layers, shapes and hash")
    describe.add_argument("descriptor", help="descriptor JSON (NeuralDescriptor.to_json())")
    describe.add_argument("--input-shape", type=int, nargs="+", default=[28, 28])
    describe.add_argument("--channels", type=int, default=1, help="input channels")
    describe.add_argument("--num-classes", type=int, default=10)
    describe.add_argument("--policy", default="minimum_viable_size",
                          choices=["minimum_viable_size", "maximum_viable_size", "fixed_channels"])
    describe.add_argument("--fixed-channels", type=int, default=None,
                          help="C for the fixed_channels policy")
    describe.add_argument("--png", help="draw the graph to this PNG")
    describe.add_argument("--dot", help="write Graphviz DOT text to this file")
    describe.set_defaults(handler=_describe)

    search = commands.add_parser(
        "search", help="search a space with a strategy; every evaluation goes to "
        "<out>/run.sqlite; --resume continues a stopped or killed run",
        description="Run a search. Settings left out take their defaults (or, with "
        "--resume, the stored run's).")
    search.add_argument("--space", choices=["nasbench201", "nasbench101"],
                        help="search space (default nasbench201)")
    search.add_argument("--strategy", choices=["evolution", "random", "rl"],
                        help="search strategy (default evolution; rl needs nasbench101)")
    search.add_argument("--budget", type=int, help="evaluations in all (default 150)")
    search.add_argument("--population", type=int, help="evolution: population size P (default 10)")
    search.add_argument("--sample", type=int, help="evolution: sample size S (default 3)")
    search.add_argument("--seed", type=int, help="random seed (default 0)")
    search.add_argument("--fitness", help="nasbench201: a table column (default "
                        "cifar10_valid_valid_200ep); nasbench101: <accuracy>@<epochs> "
                        "(default validation_accuracy@108)")
    search.add_argument("--report", action="append", metavar="COLUMN",
                        help="nasbench201: another column to record (default cifar10_test_200ep)")
    search.add_argument("--table", help="benchmark table file or folder (default: found via $NORD_DATA)")
    search.add_argument("--held-only", dest="held_only", action="store_true", default=None,
                        help="nasbench101: stay inside the loaded table's cells (default: "
                        "when the table is a subset, like the shipped 30k cells)")
    search.add_argument("--anywhere", dest="held_only", action="store_false",
                        help="nasbench101: propose any cell (those the table lacks score 0)")
    search.add_argument("--mutation", choices=["listing_3_6", "nasbench"],
                        help="nasbench101 mutation rules (default listing_3_6, or nasbench "
                        "when staying inside a subset)")
    search.add_argument("--no-cache", dest="cache", action="store_false", default=None,
                        help="evaluate isomorphic architectures again instead of reusing results")
    search.add_argument("--executor", choices=["serial", "process", "ray"],
                        help="where evaluations run (default serial; process: a local pool; "
                        "ray: a Ray cluster, pip install 'nord[ray]')")
    search.add_argument("--workers", type=int,
                        help="evaluations in flight at once (default 1)")
    search.add_argument("--ray-address", help="existing Ray cluster, e.g. auto or head:6379 "
                        "(default: start a local Ray instance)")
    search.add_argument("--gpus", type=float, help="ray: GPUs per evaluation (default 0)")
    search.add_argument("--synchronous", action="store_true", default=None,
                        help="evolution with several workers: cycles of W children bred from "
                        "the same population (default: asynchronous, a child per result)")
    search.add_argument("--out", required=True, help="run folder (holds run.sqlite)")
    search.add_argument("--resume", action="store_true", help="continue the run in --out")
    search.add_argument("--quiet", action="store_true", help="no progress bar or warnings")
    search.set_defaults(handler=_search)

    report = commands.add_parser("report", help="plots and a Markdown summary of a run")
    report.add_argument("run", help="run folder (the --out of nord search)")
    report.set_defaults(handler=_report)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except NordError as error:
        print(f"nord {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
