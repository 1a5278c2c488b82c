"""``nord demo``: the README's main job on its embedded default.

Until the search strategies land this is a smaller real job: thesis listing
3.1's network (Figure 3.3) is described, validated, compiled for
Fashion-MNIST and trained on a share of the real training set, then scored on
the real test set. The descriptor (JSON), its graph (PNG, DOT) and a summary
are written to ``--out``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from nord.data_curators import load_fashion_mnist
from nord.neural_nets import NeuralDescriptor, NeuralNet

__all__ = ["DemoConfig", "listing_3_1_descriptor", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    share: float = 0.1        # share of the 60,000 training images
    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    out: str = "runs/demo"
    data_root: str = None


def listing_3_1_descriptor() -> NeuralDescriptor:
    """The network of thesis listing 3.1 / Figure 3.3 (input sizes are inferred)."""
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"in_channels": 3, "out_channels": 5, "kernel_size": 3}, "conv")
    d.add_layer(nn.Conv2d, {"in_channels": 5, "out_channels": 10, "kernel_size": 5}, "conv2")
    d.add_layer(nn.Conv2d, {"in_channels": 5, "out_channels": 10, "kernel_size": 3}, "conv3")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2, "stride": 2}, "pool1")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2, "stride": 5}, "pool2")
    for src, dst in [("conv", "conv2"), ("conv2", "conv3"), ("conv3", "pool2"),
                     ("conv2", "pool1"), ("pool1", "pool2")]:
        d.connect_layers(src, dst)
    return d


def _accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), batch):
            logits = net(images[start:start + batch])
            correct += (logits.argmax(1) == labels[start:start + batch]).sum().item()
    return correct / len(labels)


def run_demo(config: DemoConfig = DemoConfig(), echo=print) -> dict:
    """Train listing 3.1's network on Fashion-MNIST; return the results."""
    if not 0 < config.share <= 1:
        raise ValueError(f"share must be in (0, 1], got {config.share}")
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    train_x, train_y = load_fashion_mnist("train", config.data_root)
    test_x, test_y = load_fashion_mnist("test", config.data_root)
    keep = torch.randperm(len(train_y), generator=generator)[: int(len(train_y) * config.share)]
    train_x, train_y = train_x[keep], train_y[keep]

    descriptor = listing_3_1_descriptor().validate()
    net = NeuralNet(descriptor, 10, (28, 28), 1)
    echo(f"Listing 3.1's network compiled for Fashion-MNIST (1x28x28, 10 classes):\n{net.summary()}\n")
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    for epoch in range(config.epochs):
        net.train()
        order = torch.randperm(len(train_y), generator=generator)
        total = 0.0
        batches = range(0, len(order), config.batch_size)
        for i, first in enumerate(batches):
            index = order[first:first + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(train_x[index]), train_y[index])
            loss.backward()
            optimizer.step()
            total += loss.item()
        echo(f"epoch {epoch + 1}/{config.epochs}: mean training loss {total / len(batches):.4f} "
             f"on {len(train_y):,} images")
    accuracy = _accuracy(net, test_x, test_y)
    seconds = time.perf_counter() - start

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "descriptor.json").write_text(descriptor.to_json(indent=2))
    (out / "descriptor.dot").write_text(descriptor.to_dot())
    descriptor.plot(out / "descriptor.png")
    result = {"test_accuracy": accuracy, "train_images": len(train_y), "epochs": config.epochs,
              "parameters": sum(p.numel() for p in net.parameters()),
              "canonical_hash": descriptor.canonical_hash(), "seconds": round(seconds, 2),
              "seed": config.seed}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    echo(f"test accuracy {accuracy:.4f} on {len(test_y):,} Fashion-MNIST test images "
         f"({seconds:.1f} s); descriptor, graph and summary written to {out}/")
    return result
