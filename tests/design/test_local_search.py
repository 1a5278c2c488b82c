"""Best-improvement local search: walks to a local optimum, never repeats, resumes exactly."""

import numpy as np
import pytest

from nord.design.spaces import get_space
from nord.design.strategies import make_strategy
from nord.design.strategies.local_search import LocalSearch, neighbourhood
from nord.errors import StrategySettingsError
from nord.neural_nets.benchmarks.nasbench201 import arch_to_ops

SPACE = get_space("nasbench201")


def fitness_of(cell: str) -> float:
    """A separable landscape with one optimum: conv3x3 on every edge scores 6."""
    return float(sum(op == "nor_conv_3x3" for op in arch_to_ops(cell)))


def drive(strategy, steps, in_flight=1):
    asked, out = [], []
    while len(asked) < steps:
        while len(out) < in_flight:
            candidate = strategy.ask()
            if candidate is None:
                break
            out.append(candidate)
            asked.append(candidate.architecture)
        first = out.pop(0)
        strategy.tell(first.id, fitness_of(first.architecture))
    return asked


def test_neighbours_of_a_nasbench201_cell():
    cell = SPACE.sample(np.random.default_rng(0))
    found = neighbourhood(SPACE, cell)
    assert len(found) == 24 == len(set(found))
    for other in found:
        assert sum(a != b for a, b in zip(arch_to_ops(cell), arch_to_ops(other))) == 1


@pytest.mark.parametrize("in_flight", [1, 5])
def test_climbs_to_the_optimum_without_repeats(in_flight):
    search = make_strategy("local-search", SPACE, rng=1)
    asked = drive(search, 200, in_flight)
    assert len(set(asked)) == len(asked)  # never proposed twice
    assert max(fitness_of(a) for a in asked) == 6.0
    # best improvement: from a start, each move gains at least one conv3x3
    assert search.restarts >= 1


def test_restarts_at_a_local_optimum():
    search = LocalSearch(SPACE, rng=0)
    asked = drive(search, 150)
    assert search.restarts >= 2  # the optimum has no better neighbour: a restart follows
    assert asked.count("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|"
                       "nor_conv_3x3~1|nor_conv_3x3~2|") == 1


def test_resumes_exactly_from_its_state():
    first = LocalSearch(SPACE, rng=3)
    drive(first, 37, in_flight=3)
    state = first.state_dict()
    second = LocalSearch(SPACE, rng=99)
    second.load_state_dict(state)
    pending = sorted(first.pending)
    for i in pending:  # both hear the same results of what was in flight
        fit = fitness_of(first.pending[i])
        first.tell(i, fit)
        second.tell(i, fit)
    assert drive(first, 40, 3) == drive(second, 40, 3)


def test_spaces_without_neighbours_use_distinct_mutations():
    space = get_space("nasbench101")
    search = LocalSearch(space, rng=0, neighbours=5)
    c = search.ask()
    search.tell(c.id, 0.5)
    assert 1 <= len(search.queue) <= 5
    with pytest.raises(StrategySettingsError):
        LocalSearch(SPACE, neighbours=0)
