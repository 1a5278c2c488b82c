"""``nord demo``: the README's main job on its embedded default.

Until the search strategies land this is a smaller real job: thesis listing
3.1's network (Figure 3.3) is described, validated, compiled for
Fashion-MNIST and trained with :class:`~nord.neural_nets.LocalEvaluator` on a
share of the real training set, then scored on the real test set. The
descriptor (JSON), its graph (PNG, DOT) and a summary are written to ``--out``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn

from nord.errors import EvaluationError
from nord.neural_nets import LocalEvaluator, NeuralDescriptor

__all__ = ["DemoConfig", "listing_3_1_descriptor", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    share: float = 0.1        # share of the 54,000 training images (6,000 are validation)
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


def run_demo(config: DemoConfig = DemoConfig(), echo=print) -> dict:
    """Train listing 3.1's network on Fashion-MNIST; return the results."""
    start = time.perf_counter()
    evaluator = LocalEvaluator("adam", {"lr": config.lr}, batch_size=config.batch_size,
                               seed=config.seed, split="test",
                               data_options={"root": config.data_root})
    descriptor = listing_3_1_descriptor().validate()
    net = evaluator.build_network(descriptor, "fashion-mnist")
    echo(f"Listing 3.1's network compiled for Fashion-MNIST (1x28x28, 10 classes):\n"
         f"{net.summary()}\n")
    train_images = len(evaluator.load_data("fashion-mnist", config.share).train)
    result = evaluator.descriptor_evaluate(descriptor, config.epochs, "fashion-mnist",
                                           data_percentage=config.share)
    if result.failed:
        raise EvaluationError(f"training listing 3.1's network failed: {result.error}")
    for epoch, loss in enumerate(result.train_losses, start=1):
        echo(f"epoch {epoch}/{config.epochs}: mean training loss {loss:.4f} "
             f"on {train_images:,} images")
    accuracy = result.metrics["accuracy"]
    seconds = time.perf_counter() - start

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "descriptor.json").write_text(descriptor.to_json(indent=2))
    (out / "descriptor.dot").write_text(descriptor.to_dot())
    descriptor.plot(out / "descriptor.png")
    summary = {"test_accuracy": accuracy, "test_loss": result.loss, "train_images": train_images,
              "epochs": config.epochs, "parameters": result.parameters,
              "canonical_hash": descriptor.canonical_hash(), "seconds": round(seconds, 2),
              "seed": config.seed}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    echo(f"test accuracy {accuracy:.4f} on the 10,000 Fashion-MNIST test images "
         f"({seconds:.1f} s); descriptor, graph and summary written to {out}/")
    return summary
