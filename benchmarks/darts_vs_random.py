"""A DARTS search's genotype against random genotypes of the same size, trained alike.

For each seed: a first-order DARTS search of ``--epochs`` epochs on a share of
Fashion-MNIST (``nord darts search`` through the run loop and store), then its
genotype and a random genotype (two distinct random inputs and random
operations per node, :func:`~nord.darts.genotype.random_genotype`) compiled
into the same final network (``--channels``, ``--cells``) and trained the same
way (SGD momentum 0.9, cosine, ``--train-epochs`` on ``--train-share`` of the
training set, flips and erasing), scored on the test set. Printed: each
seed's two test accuracies and the mean difference.

Run: python benchmarks/darts_vs_random.py [--seeds 3] [--workers 2]
(defaults: 4 search epochs at C=4 with the architecture learning rate 3e-3, ten
times the thesis's, so that a few epochs move the weights apart; 3 training epochs)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np


def train_genotype(genotype, args, seed: int) -> float:
    import torch

    from nord.darts.final_network import genotype_descriptor
    from nord.neural_nets import LocalEvaluator
    torch.set_num_threads(1)
    evaluator = LocalEvaluator("sgd", {"lr": 0.025, "momentum": 0.9, "weight_decay": 3e-4},
                               batch_size=96, lr_schedule="cosine", seed=seed, split="test",
                               augment=True, channels_last=True,
                               data_options={"validation_fraction": 0.0})
    descriptor = genotype_descriptor(genotype, args.channels, args.cells)
    result = evaluator.descriptor_evaluate(descriptor, args.train_epochs, "fashion-mnist",
                                           args.train_share)
    return float(result.metrics["accuracy"])


def one_seed(seed: int, args) -> dict:
    import torch

    from nord.darts.genotype import Genotype, random_genotype
    from nord.darts.study import DartsSearchStudy
    from nord.studies.base import run_study
    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        study = DartsSearchStudy(share=args.share, channels=args.search_channels,
                                 cells=args.search_cells, epochs=args.epochs, seed=seed,
                                 arch_lr=args.arch_lr, warmup_epochs=args.warmup_epochs)
        outcome = run_study(study, Path(folder) / "search")
        searched = Genotype.from_json(outcome.results["genotype"])
    search_seconds = time.perf_counter() - start
    rand = random_genotype(np.random.default_rng(1000 + seed))
    return {"seed": seed, "search_seconds": search_seconds,
            "search_valid_accuracy": outcome.results["best_valid_accuracy"],
            "genotype": searched.describe(), "random": rand.describe(),
            "searched_accuracy": train_genotype(searched, args, seed),
            "random_accuracy": train_genotype(rand, args, seed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--share", type=float, default=0.05, help="search share")
    parser.add_argument("--epochs", type=int, default=4, help="search epochs")
    parser.add_argument("--search-channels", type=int, default=4)
    parser.add_argument("--search-cells", type=int, default=3)
    parser.add_argument("--arch-lr", type=float, default=3e-3,
                        help="architecture weights' Adam learning rate (thesis 3e-4: too slow "
                        "to move the weights apart in a few epochs)")
    parser.add_argument("--warmup-epochs", type=int, default=0,
                        help="search epochs training the weights only")
    parser.add_argument("--channels", type=int, default=8, help="final network C")
    parser.add_argument("--cells", type=int, default=5, help="final network cells")
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument("--train-share", type=float, default=0.1)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"DARTS {args.epochs} epochs (C={args.search_channels}, {args.search_cells} cells, "
          f"{args.share:.0%} share, architecture lr {args.arch_lr:g}, {args.warmup_epochs} "
          f"warm-up) -> final "
          f"C={args.channels}, {args.cells} cells, {args.train_epochs} epochs on "
          f"{args.train_share:.0%}; test accuracy", flush=True)
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(one_seed, seed, args) for seed in range(args.seeds)]
        for future in as_completed(futures):  # each seed as it finishes (a timeout keeps them)
            r = future.result()
            rows.append(r)
            print(f"seed {r['seed']}: searched {100 * r['searched_accuracy']:.2f} %  random "
                  f"{100 * r['random_accuracy']:.2f} %  (search {r['search_seconds']:.0f} s)")
            print(f"    searched: {r['genotype']}\n    random:   {r['random']}", flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps({"settings": vars(args), "rows": rows},
                                                     indent=1))
    rows.sort(key=lambda r: r["seed"])
    diff = [r["searched_accuracy"] - r["random_accuracy"] for r in rows]
    print(f"mean searched - random: {100 * np.mean(diff):+.2f} points; searched ahead in "
          f"{sum(d > 0 for d in diff)} of {len(rows)} seeds; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
