"""Batched augmentation: exact results for fixed generators, bounds, speed."""

import dataclasses
import time

import pytest
import torch

from nord.data_curators.augmentation import (
    FASHION_MNIST_AUGMENTATION,
    Augmentation,
    random_erasing,
    random_horizontal_flip,
)


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def _images(n=8, c=2, h=5, w=7):
    return torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w) + 1


def test_flip_with_p_one_and_zero():
    images = _images()
    assert torch.equal(random_horizontal_flip(images, _generator(), p=1.0),
                       torch.flip(images, dims=[-1]))
    assert torch.equal(random_horizontal_flip(images, _generator(), p=0.0), images)


def test_flip_follows_the_generator_draws():
    images = _images(n=64)
    flipped = random_horizontal_flip(images, _generator(3), p=0.5)
    expected_mask = torch.rand(64, generator=_generator(3)) < 0.5
    for i in range(64):
        expected = images[i].flip(-1) if expected_mask[i] else images[i]
        assert torch.equal(flipped[i], expected)
    assert 0 < int(expected_mask.sum()) < 64


def test_flip_rejects_non_image_batches():
    with pytest.raises(ValueError, match=r"needs a batch of images \(N, C, H, W\), got "
                                         r"\(4, 3, 52\)"):
        random_horizontal_flip(torch.zeros(4, 3, 52), _generator())
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        random_horizontal_flip(_images(), _generator(), p=1.5)


def _erased_masks(images, out):
    return (out != images).any(dim=1)  # (N, H, W): pixels changed in any channel


def test_erasing_makes_one_rectangle_within_the_scale_bounds():
    images = torch.rand(256, 3, 28, 28, generator=_generator(9)) + 1  # never 0
    scale = (0.02, 0.33)
    out = random_erasing(images, _generator(1), p=1.0, scale=scale, value=0.0)
    masks = _erased_masks(images, out)
    area = 28 * 28
    for mask in masks:
        rows = mask.any(dim=1).nonzero().flatten()
        cols = mask.any(dim=0).nonzero().flatten()
        assert len(rows) > 0 and len(cols) > 0
        # The changed pixels fill their bounding box exactly: one rectangle.
        box = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert bool(box.all()) and int(mask.sum()) == box.numel()
        assert torch.equal(rows, torch.arange(rows[0], rows[-1] + 1))
        assert scale[0] * area <= box.numel() <= scale[1] * area
        assert box.shape[0] < 28 and box.shape[1] < 28
    assert bool((out[masks.unsqueeze(1).expand_as(out)] == 0).all())
    # Rectangles differ between samples.
    assert len({tuple(m.nonzero()[0].tolist()) + (int(m.sum()),) for m in masks}) > 100


def test_erasing_aspect_ratio_bounds_hold():
    images = torch.ones(128, 1, 32, 32)
    out = random_erasing(images, _generator(4), p=1.0, scale=(0.1, 0.2), ratio=(0.5, 2.0))
    for mask in _erased_masks(images, out):
        height = int(mask.any(dim=1).sum())
        width = int(mask.any(dim=0).sum())
        # Rounding each side to whole pixels can move the ratio a little.
        assert 0.5 * 0.7 <= height / width <= 2.0 / 0.7


def test_erasing_probability_zero_and_exact_fraction_of_samples():
    images = _images(n=100, c=1, h=10, w=10)
    assert torch.equal(random_erasing(images, _generator(), p=0.0), images)
    out = random_erasing(images, _generator(5), p=0.5)
    erased = _erased_masks(images, out).flatten(1).any(dim=1)
    expected = torch.rand(100, generator=_generator(5)) < 0.5
    assert torch.equal(erased, expected)


def test_erasing_values_per_channel_and_random():
    images = torch.full((16, 3, 12, 12), 7.0)
    out = random_erasing(images, _generator(2), p=1.0, value=(1.0, 2.0, 3.0))
    masks = _erased_masks(images, out)
    for channel, value in enumerate((1.0, 2.0, 3.0)):
        assert bool((out[:, channel][masks] == value).all())
    noisy = random_erasing(images, _generator(2), p=1.0, value="random")
    noise_masks = _erased_masks(images, noisy)
    assert torch.equal(noise_masks, masks)  # same generator: same rectangles
    assert noisy[:, 0][noise_masks].std() > 0.5
    with pytest.raises(ValueError, match="'random'"):
        random_erasing(images, _generator(), value="noise")
    with pytest.raises(ValueError, match=r"one number or 3 \(one per channel\)"):
        random_erasing(images, _generator(), value=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"scale must be \(min, max\)"):
        random_erasing(images, _generator(), scale=(0.5, 0.2))
    with pytest.raises(ValueError, match=r"ratio must be \(min, max\)"):
        random_erasing(images, _generator(), ratio=(0.0, 1.0))


def test_erasing_that_cannot_fit_leaves_images_unchanged():
    images = _images(n=10, c=1, h=3, w=3)
    # A third of a 3x3 image rounds to 2x2 = 4/9 > 0.34: no attempt fits.
    out = random_erasing(images, _generator(), p=1.0, scale=(0.3, 0.34), ratio=(1.0, 1.0))
    assert torch.equal(out, images)


def test_same_seed_same_output_and_different_seeds_differ():
    images = torch.rand(64, 1, 28, 28, generator=_generator(11))
    first = FASHION_MNIST_AUGMENTATION(images, _generator(42))
    second = FASHION_MNIST_AUGMENTATION(images, _generator(42))
    other = FASHION_MNIST_AUGMENTATION(images, _generator(43))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_inputs_are_never_modified_in_place():
    images = torch.rand(32, 1, 28, 28, generator=_generator(12))
    before = images.clone()
    random_horizontal_flip(images, _generator(), p=1.0)
    random_erasing(images, _generator(), p=1.0)
    identity = Augmentation(flip_p=0.0, erasing_p=0.0)(images, _generator())
    FASHION_MNIST_AUGMENTATION(images, _generator())
    assert torch.equal(images, before)
    assert torch.equal(identity, images) and identity.data_ptr() != images.data_ptr()


def test_augmentation_is_flip_then_erasing_with_one_generator():
    images = torch.rand(16, 1, 28, 28, generator=_generator(13))
    policy = Augmentation(flip_p=0.5, erasing_p=0.7, erasing_value=-1.0)
    generator = _generator(8)
    expected = random_erasing(random_horizontal_flip(images, generator, 0.5), generator,
                              0.7, value=-1.0)
    assert torch.equal(policy(images, _generator(8)), expected)
    assert FASHION_MNIST_AUGMENTATION == Augmentation(flip_p=0.5, erasing_p=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        FASHION_MNIST_AUGMENTATION.flip_p = 0.1
    with pytest.raises(ValueError, match="erasing_p must be a probability"):
        Augmentation(erasing_p=-0.1)


def test_a_fashion_mnist_sized_batch_is_fast():
    images = torch.rand(1024, 1, 28, 28, generator=_generator(14))
    FASHION_MNIST_AUGMENTATION(images, _generator())  # warm up
    best = float("inf")
    for seed in range(10):  # best of 10: the 2-core CI machine is often busy
        start = time.perf_counter()
        FASHION_MNIST_AUGMENTATION(images, _generator(seed))
        best = min(best, time.perf_counter() - start)
    assert best < 0.05, f"best of 10: {best:.3f} s for 1,024 images"


def test_numbers_are_drawn_on_the_generators_device_and_moved_to_the_images(monkeypatch):
    # A CUDA batch with a CPU generator must work (torch refuses to draw CUDA
    # numbers from a CPU generator), so every draw happens where the generator is.
    seen = []
    for name in ("rand", "randn"):
        original = getattr(torch, name)

        def recording(*args, _original=original, **kwargs):
            seen.append(torch.device(kwargs.get("device") or "cpu"))
            return _original(*args, **kwargs)
        monkeypatch.setattr(torch, name, recording)
    images = torch.zeros(4, 1, 6, 6, device="meta")
    out = random_erasing(random_horizontal_flip(images, _generator(), 1.0), _generator(),
                         1.0, value="random")
    assert out.device.type == "meta" and out.shape == images.shape
    assert seen and all(device == torch.device("cpu") for device in seen)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_batch_with_a_cpu_generator_matches_the_cpu_result():
    images = torch.rand(256, 1, 28, 28, generator=_generator(15))
    on_cpu = FASHION_MNIST_AUGMENTATION(images, _generator(3))
    on_gpu = FASHION_MNIST_AUGMENTATION(images.cuda(), _generator(3))
    assert on_gpu.is_cuda and torch.equal(on_gpu.cpu(), on_cpu)
    noisy = random_erasing(images.cuda(), _generator(4), 1.0, value="random")
    assert torch.equal(noisy.cpu(), random_erasing(images, _generator(4), 1.0, value="random"))
