"""Pure helpers for search curves (no I/O, no plotting)."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

__all__ = ["best_so_far", "ecdf", "incumbent_indices"]


def best_so_far(values: Sequence[float]) -> np.ndarray:
    """Running maximum: ``best_so_far([1, 3, 2]) -> [1, 3, 3]``."""
    values = np.asarray(values, dtype=float)
    return np.maximum.accumulate(values) if values.size else values


def incumbent_indices(values: Sequence[float]) -> np.ndarray:
    """For each step, the index of the best value so far (earliest on ties)."""
    best, where, out = -np.inf, -1, []
    for i, v in enumerate(values):
        if v > best:
            best, where = v, i
        out.append(where)
    return np.asarray(out, dtype=int)


def ecdf(values: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Empirical CDF: sorted values and the share of values ≤ each one."""
    x = np.sort(np.asarray(values, dtype=float))
    return x, np.arange(1, x.size + 1) / max(1, x.size)
