"""Training throughput of LocalEvaluator against a minimal hand-written loop.

Both train the same compiled small CNN (same initial weights) with Adam,
batch 64, on the same in-memory Fashion-MNIST tensors; the ratio isolates the
evaluator's own overhead (batching, bookkeeping, NaN checks). Target >= 0.95.

Run: python benchmarks/training_throughput.py [--percentage 0.2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from nord.neural_nets import LocalEvaluator, NeuralDescriptor


def small_cnn() -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 16, "kernel_size": 3, "padding": 1})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    d.add_layer_sequential(nn.Conv2d, {"out_channels": 32, "kernel_size": 3, "padding": 1})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    return d


def hand_written_loop(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                      seed: int) -> float:
    """Samples per second of the plainest correct training loop."""
    optimizer = torch.optim.Adam(net.parameters())
    generator = torch.Generator().manual_seed(seed)
    net.train()
    start = time.perf_counter()
    order = torch.randperm(len(y), generator=generator)
    for first in range(0, len(order), batch_size):
        index = order[first:first + batch_size]
        optimizer.zero_grad()
        F.cross_entropy(net(x[index]), y[index]).backward()
        optimizer.step()
    return len(y) / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--percentage", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)

    evaluator = LocalEvaluator("adam", {}, batch_size=args.batch, seed=0, device="cpu")
    splits = evaluator.load_data("fashion-mnist", args.percentage)
    x, y = splits.train.x, splits.train.y
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{len(y):,} training images, batch {args.batch}")
    ratios = []
    for round_ in range(args.rounds):
        torch.manual_seed(round_)
        net = evaluator.build_network(small_cnn(), "fashion-mnist")
        initial = {k: v.clone() for k, v in net.state_dict().items()}
        result = evaluator.net_evaluate(net, 1, "fashion-mnist", args.percentage)
        nord_rate = len(y) / result.train_seconds
        net.load_state_dict(initial)
        hand_rate = hand_written_loop(net, x, y, args.batch, seed=0)
        ratios.append(nord_rate / hand_rate)
        print(f"round {round_ + 1}: LocalEvaluator {nord_rate:,.0f} samples/s, "
              f"hand-written {hand_rate:,.0f} samples/s, ratio {ratios[-1]:.3f}")
    ratio = statistics.median(ratios)
    print(f"LocalEvaluator / hand-written training throughput = {ratio:.3f} "
          f"[{'ok' if ratio >= 0.95 else 'BELOW TARGET'}] (target >= 0.95)")
    return ratio


if __name__ == "__main__":
    main()
