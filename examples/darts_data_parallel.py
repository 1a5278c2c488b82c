"""Chapter 8: serial against data-parallel DARTS, then their genotypes trained.

Runs the same first-order DARTS search on 1 rank and on ``--ranks`` ranks
(gloo processes on this machine, Algorithm 1 by default: weights averaged
once per epoch; ``--algorithm gradients`` for Algorithm 2), each a run folder
of its own (``<out>/ranks-<N>``: one stored result and checkpoint per epoch,
``--resume`` after a kill), compares them as table 8.2 does (best accuracies,
time, speed-up) with the graph edit distance between their cells, and trains
each genotype's final network (``nord darts train``'s settings) for a test
accuracy. Everything goes into ``<out>``.

CPU defaults take a few minutes. The thesis's settings (table 8.1) are a GPU
job:

    python examples/darts_data_parallel.py --thesis --ranks 2

Run: python examples/darts_data_parallel.py [--ranks 2] [--algorithm weights]
     [--epochs 2] [--share 0.02] [--channels 4] [--cells 3] [--steps 2]
     [--train-epochs 1] [--train-share 0.05] [--seed 0] [--out runs/darts_parallel]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from nord.darts.analysis import cell_distance
from nord.darts.final_network import genotype_descriptor
from nord.darts.genotype import Genotype
from nord.darts.report import analyse_groups
from nord.darts.settings import THESIS_SEARCH
from nord.darts.study import DartsSearchStudy
from nord.execution.final_training import FinalTrainingSettings, train_final
from nord.studies.base import run_study


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--algorithm", choices=["weights", "gradients"], default="weights")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--share", type=float, default=0.02)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--train-share", type=float, default=0.05)
    parser.add_argument("--train-channels", type=int, default=8)
    parser.add_argument("--train-cells", type=int, default=5)
    parser.add_argument("--thesis", action="store_true",
                        help="table 8.1: search 16 channels, 8 cells, 50 epochs on the whole "
                        "training set; train 36 channels, 20 cells, 100 epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the searches in --out")
    parser.add_argument("--out", default="runs/darts_parallel")
    args = parser.parse_args(argv)
    if args.thesis:
        args.epochs, args.share = THESIS_SEARCH["epochs"], THESIS_SEARCH["share"]
        args.channels, args.cells = THESIS_SEARCH["channels"], THESIS_SEARCH["cells"]
        args.steps, args.batch_size = 4, THESIS_SEARCH["batch_size"]
        args.train_epochs, args.train_share = 100, 1.0
        args.train_channels, args.train_cells = 36, 20
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    searches = {}
    for ranks in (1, args.ranks):
        folder = out / f"ranks-{ranks}"
        study = DartsSearchStudy(share=args.share, channels=args.channels, cells=args.cells,
                                 steps=args.steps, multiplier=args.steps,
                                 batch_size=args.batch_size, epochs=args.epochs,
                                 seed=args.seed, ranks=ranks, algorithm=args.algorithm)
        outcome = run_study(study, folder, resume=args.resume and folder.exists())
        print(f"{ranks} rank(s): {outcome.text}")
        searches[ranks] = (folder, Genotype.from_json(outcome.results["genotype"]))
    report = analyse_groups({f"{r} rank(s)": [folder] for r, (folder, _) in searches.items()},
                            out / "analysis")
    print((out / "analysis" / "table_8_2.md").read_text())
    (_, serial), (_, parallel) = searches[1], searches[args.ranks]
    distance = {"normal": cell_distance(serial, parallel),
                "reduce": cell_distance(serial, parallel, reduction=True)}
    print(f"graph edit distance between the two genotypes: normal {distance['normal']:.0f}, "
          f"reduction {distance['reduce']:.0f}")
    trained = {}
    for ranks, (folder, genotype) in searches.items():
        settings = FinalTrainingSettings(
            epochs=args.train_epochs, optimizer="sgd",
            optimizer_params={"lr": 0.025, "momentum": 0.9, "weight_decay": 3e-4},
            batch_size=96, data_percentage=args.train_share, seed=args.seed,
            lr_schedule="cosine")
        result = train_final(genotype_descriptor(genotype, args.train_channels,
                                                 args.train_cells), settings, folder / "final")
        trained[ranks] = result.test_metrics["accuracy"]
        print(f"{ranks} rank(s): genotype trained {args.train_epochs} epoch(s) -> test "
              f"accuracy {100 * trained[ranks]:.2f} % ({result.parameters:,} parameters)")
    summary = {"table_8_2": report["table_8_2"], "distance": distance,
               "test_accuracy": {str(k): v for k, v in trained.items()},
               "settings": vars(args)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
