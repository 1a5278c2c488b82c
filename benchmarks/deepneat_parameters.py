"""Trainable parameters of seeded DeepNEAT CIFAR-10 networks, beside chapter 5's.

Chapter 5 (§5.2.1) generated 140 distinct random architectures: "an average
architecture has 70,000 trainable parameters, but all of them are in
[9,099 - 148,140]". This script compiles, for each generation scheme, 140
seeded networks for CIFAR-10 (3x32x32, 10 classes, from the dataset
configuration) with ``NeuralNet`` and prints the mean, minimum, median and
maximum of their trainable parameters and how many lie in the thesis's range:

* chapter 5: ``diverse_sample`` of the default space (Table 5.2), each drawn
  from the two-node genome, invalid and repeated architectures discarded;
* chapter 4: ``evolve_lineage`` of ``DeepNEATSpace.chapter4()`` (Table 4.1),
  one network evolved for 20 generations, 140 / 20 = 7 seeded lineages (the
  thesis gives no parameter counts for chapter 4);
* before: chapter 5's scheme with the dense head on the flattened, unpooled
  output (``head_pool=0, head_units=64``), disabled genes re-enabled and no
  size limit, as DeepNEAT was before issue 14.

Run: python benchmarks/deepneat_parameters.py [--n 140] [--seed 0] [--generations 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nord.configurations import Configs
from nord.design.spaces.deepneat import DeepNEATSpace, diverse_sample, evolve_lineage
from nord.neural_nets import NeuralNet

THESIS = {"mean": 70_000, "min": 9_099, "max": 148_140}


def compiled_parameters(space: DeepNEATSpace, genomes, config) -> np.ndarray:
    counts = []
    for genome in genomes:
        net = NeuralNet(space.to_descriptor(genome), config.num_outputs, config.input_shape,
                        config.channels)
        counts.append(sum(p.numel() for p in net.parameters() if p.requires_grad))
    return np.array(counts)


def row(name: str, counts: np.ndarray, blocks, seconds: float) -> str:
    inside = np.mean((counts >= THESIS["min"]) & (counts <= THESIS["max"]))
    return (f"{name:34s} {len(counts):4d} {counts.mean():10,.0f} {counts.min():9,d} "
            f"{np.median(counts):10,.0f} {counts.max():11,d} {100 * inside:9.0f}% "
            f"{np.mean(blocks):7.2f} {seconds:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--n", type=int, default=140, help="networks per scheme")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=20, help="of each chapter-4 lineage")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    config = Configs()["cifar10"]
    shape = (config.channels, *config.input_shape)
    print(f"DeepNEAT on {config.name}: {shape[0]}x{shape[1]}x{shape[2]}, "
          f"{config.num_outputs} classes, seed {args.seed}")
    print(f"{'scheme':34s} {'nets':>4s} {'mean':>10s} {'min':>9s} {'median':>10s} {'max':>11s} "
          f"{'in range':>10s} {'blocks':>7s} {'s':>6s}")
    print(f"{'thesis, chapter 5 (§5.2.1)':34s} {140:4d} {THESIS['mean']:10,d} "
          f"{THESIS['min']:9,d} {'-':>10s} {THESIS['max']:11,d} {100:9d}%")

    schemes = []
    five = DeepNEATSpace()
    schemes.append(("chapter 5: diverse_sample", five,
                    lambda rng: diverse_sample(five, rng, args.n)))
    four = DeepNEATSpace.chapter4()
    lineages = -(-args.n // args.generations)
    schemes.append((f"chapter 4: {lineages} x evolve_lineage({args.generations})", four,
                    lambda rng: [g for _ in range(lineages)
                                 for g in evolve_lineage(four, rng, args.generations)][:args.n]))
    before = DeepNEATSpace(head_pool=0, head_units=64, reenable_connections=True,
                           max_parameters=None)
    schemes.append(("before: unpooled head, no limit", before,
                    lambda rng: diverse_sample(before, rng, args.n)))
    for name, space, generate in schemes:
        start = time.perf_counter()
        genomes = generate(np.random.default_rng(args.seed))
        counts = compiled_parameters(space, genomes, config)
        blocks = [len(g.active_nodes()) - 2 for g in genomes]
        print(row(name, counts, blocks, time.perf_counter() - start))
    print(f"defaults: head_pool {five.head_pool}, head_units {five.head_units}, "
          f"max_parameters {five.max_parameters:,}, sample_mutations {five.sample_mutations}, "
          f"reenable_connections {five.reenable_connections}")


if __name__ == "__main__":
    main()
