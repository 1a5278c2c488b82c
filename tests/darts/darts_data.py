"""Synthetic search data shared by the DARTS tests and their rank processes."""

import torch

from nord.darts.search import SearchData

TINY = dict(channels=2, cells=2, steps=1, multiplier=1, batch_size=8)


def synthetic(n=32, seed=0):
    """``n`` 8x8 images per half; the class is whether the image is bright on average."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    return SearchData(x[:n], y[:n], x[n:], y[n:], num_classes=2, channels=1)
