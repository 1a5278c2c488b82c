"""LocalEvaluator on the real Fashion-MNIST (Debian's dataset-fashion-mnist)."""

import pytest
import torch
import torch.nn as nn

from nord.neural_nets import LocalEvaluator, NeuralDescriptor
from tests.fashion_mnist_data import needs_fashion_mnist

pytestmark = needs_fashion_mnist


def cnn():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 8, "kernel_size": 3, "padding": 1})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    d.add_layer_sequential(nn.Conv2d, {"out_channels": 16, "kernel_size": 3})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    return d


def test_one_epoch_on_a_small_share_is_far_above_chance_and_reproducible():
    evaluator = LocalEvaluator("adam", {}, seed=11)
    first = evaluator.descriptor_evaluate(cnn(), epochs=1, dataset="fashion-mnist",
                                          data_percentage=0.05)
    again = LocalEvaluator("adam", {}, seed=11).descriptor_evaluate(
        cnn(), epochs=1, dataset="fashion-mnist", data_percentage=0.05)
    assert first.split == "validation" and not first.failed
    assert first.metrics["accuracy"] > 0.6  # chance: 0.1 (0.67 measured)
    assert (first.loss, first.metrics, first.train_losses) == (
        again.loss, again.metrics, again.train_losses)


def test_augmented_training_and_test_split():
    evaluator = LocalEvaluator("adamax", {}, seed=2, augment=True, split="test")
    result = evaluator.descriptor_evaluate(cnn(), epochs=1, dataset="fashion-mnist",
                                           data_percentage=0.05)
    assert result.split == "test" and result.metrics["accuracy"] > 0.6
    splits = evaluator.load_data("fashion-mnist", 0.05)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (2700, 6000, 10000)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu_training_closely():
    # Same seed, same batches and augmentation on both devices (the generator
    # stays on the CPU); only floating-point order differs.
    results = {device: LocalEvaluator("adam", {}, seed=5, device=device, augment=True)
               .descriptor_evaluate(cnn(), epochs=2, data_percentage=0.1)
               for device in ("cpu", "cuda")}
    cpu, gpu = results["cpu"], results["cuda"]
    assert not gpu.failed and len(gpu.train_losses) == 2
    assert gpu.train_losses == pytest.approx(cpu.train_losses, rel=0.02)
    assert gpu.metrics["accuracy"] == pytest.approx(cpu.metrics["accuracy"], abs=0.02)
