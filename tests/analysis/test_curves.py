"""Pure curve helpers, exact values."""

import numpy as np

from nord.analysis.curves import best_so_far, ecdf, incumbent_indices


def test_best_so_far_is_the_running_maximum():
    assert best_so_far([1, 3, 2, 5, 4]).tolist() == [1, 3, 3, 5, 5]
    assert best_so_far([]).size == 0


def test_incumbent_keeps_the_earliest_of_ties():
    assert incumbent_indices([2, 1, 2, 3, 3]).tolist() == [0, 0, 0, 3, 3]


def test_ecdf_steps_through_the_sorted_values():
    x, y = ecdf([3.0, 1.0, 2.0, 2.0])
    assert x.tolist() == [1.0, 2.0, 2.0, 3.0]
    assert np.allclose(y, [0.25, 0.5, 0.75, 1.0])
