"""Cost of compiling descriptors: training-step time and compile time.

Prints, in one run:
  * the training-step time of a compiled network divided by that of the
    hand-written equivalent nn.Module (target <= 1.05; 1.00 is the limit),
    for a sequential CNN and for a branching one with a multi-input node;
  * the time to compile a 20-node descriptor into an nn.Module (target < 50 ms).

Run: python benchmarks/compile_overhead.py [--steps 60] [--batch 64] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from nord.neural_nets import NeuralDescriptor, NeuralNet


# --------------------------------------------------------------------- networks
def sequential_pair():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 32, "kernel_size": 3, "padding": 1})
    d.add_layer_sequential(nn.BatchNorm2d, {})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    d.add_layer_sequential(nn.Conv2d, {"out_channels": 64, "kernel_size": 3, "padding": 1})
    d.add_layer_sequential(nn.BatchNorm2d, {})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    hand = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 10))
    return NeuralNet(d, 10, (28, 28), 1), hand


class HandBranching(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.left = nn.Conv2d(32, 32, 3, padding=1)
        self.right = nn.Conv2d(32, 64, 3, padding=1)
        self.project = nn.Conv2d(64, 32, 1, bias=False)
        self.merge = nn.Conv2d(32, 64, 3, padding=1)
        self.head = nn.Linear(64 * 14 * 14, 10)

    def forward(self, x):
        s = self.stem(x)
        left = self.left(self.pool(s))
        right = F.interpolate(self.right(s), size=(14, 14), mode="bilinear")
        merged = self.merge(left + self.project(right))
        return self.head(torch.flatten(merged, 1))


def branching_pair():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 32, "kernel_size": 3, "padding": 1}, "stem")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2}, "pool")
    d.add_layer(nn.Conv2d, {"out_channels": 32, "kernel_size": 3, "padding": 1}, "left")
    d.add_layer(nn.Conv2d, {"out_channels": 64, "kernel_size": 3, "padding": 1}, "right")
    d.add_layer(nn.Conv2d, {"out_channels": 64, "kernel_size": 3, "padding": 1}, "merge")
    for a, b in [("stem", "pool"), ("pool", "left"), ("stem", "right"),
                 ("left", "merge"), ("right", "merge")]:
        d.connect_layers(a, b)
    return NeuralNet(d, 10, (28, 28), 1), HandBranching()


def twenty_node_descriptor() -> NeuralDescriptor:
    """A 20-node cell-like graph: a chain with skip connections every 3 layers."""
    d = NeuralDescriptor()
    names = [d.add_layer(nn.Conv2d, {"out_channels": 16, "kernel_size": 3, "padding": 1})]
    for i in range(1, 20):
        layer = [(nn.Conv2d, {"out_channels": 16 + 8 * (i % 3), "kernel_size": 3, "padding": 1}),
                 (nn.BatchNorm2d, {}), (nn.ReLU, {}), ("maxpool3x3", {})][i % 4]
        names.append(d.add_layer_sequential(*layer))
        if i >= 3 and i % 3 == 0:
            d.connect_layers(names[i - 3], names[i])
    return d


# --------------------------------------------------------------------- timing
def step_time(model: nn.Module, x, y, steps: int) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(name: str, compiled: nn.Module, hand: nn.Module, batch: int, steps: int, rounds: int):
    torch.manual_seed(0)
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    assert sum(p.numel() for p in compiled.parameters()) == sum(p.numel() for p in hand.parameters())
    ratios = []
    for _ in range(rounds):  # interleave to cancel drift in machine load
        ratios.append(step_time(compiled, x, y, steps) / step_time(hand, x, y, steps))
    ratio = statistics.median(ratios)
    verdict = "ok" if ratio <= 1.05 else "ABOVE TARGET"
    print(f"{name:<34} compiled/hand-written step time = {ratio:.3f}  "
          f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})  [{verdict}]")
    return ratio


def compile_time(repeats: int = 30) -> float:
    d = twenty_node_descriptor()
    NeuralNet(d, 10, (28, 28), 1)  # warm caches and imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        NeuralNet(d, 10, (28, 28), 1)
        times.append(time.perf_counter() - start)
    ms = statistics.median(times) * 1000
    print(f"{'compile 20-node descriptor':<34} {ms:.1f} ms (median of {repeats})  "
          f"[{'ok' if ms < 50 else 'ABOVE TARGET'}]")
    return ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    results = {
        "sequential": compare("sequential CNN (Fashion-MNIST)", *sequential_pair(),
                              args.batch, args.steps, args.rounds),
        "branching": compare("branching CNN, multi-input node", *branching_pair(),
                             args.batch, args.steps, args.rounds),
        "compile_ms": compile_time(),
    }
    return results


if __name__ == "__main__":
    main()
