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
    demo.set_defaults(run=_demo)

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
    describe.set_defaults(run=_describe)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except NordError as error:
        print(f"nord {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
