"""Ask/tell strategies: exact behaviour against reference loops, state round trips."""

import numpy as np
import pytest

from nord.design.strategies.base import StrategyError
from nord.design.strategies.evolution import RegularizedEvolution
from nord.design.strategies.random_search import RandomSearch
from tests.toy_search import ToySpace


def fitness(x):
    return float(-(x - 70) ** 2)


def reference_listing_3_6(seed, budget, population_size, sample_size):
    """Listing 3.6's loop, written out, drawing from one generator in the same order."""
    rng = np.random.default_rng(seed)
    space = ToySpace()
    population, history = [], []
    for _ in range(population_size):
        x = space.sample(rng)
        population.append((x, fitness(x)))
        history.append(x)
    while len(history) < budget:
        sample = rng.choice(len(population), size=sample_size)
        fits = [population[i][1] for i in sample]
        parent = population[sample[int(np.argmax(fits))]][0]
        child = space.mutate(parent, rng)
        population.append((child, fitness(child)))
        population.pop(0)
        history.append(child)
    return history


def drive(strategy, budget):
    history = []
    for _ in range(budget):
        c = strategy.ask()
        history.append(c.architecture)
        strategy.tell(c.id, fitness(c.architecture))
    return history


@pytest.mark.parametrize("seed,population,sample", [(0, 10, 3), (1, 5, 5), (7, 20, 1)])
def test_evolution_matches_the_listing_loop_exactly(seed, population, sample):
    rea = RegularizedEvolution(ToySpace(), population, sample, rng=seed)
    assert drive(rea, 150) == reference_listing_3_6(seed, 150, population, sample)


def test_evolution_keeps_the_newest_members_and_finds_the_optimum():
    rea = RegularizedEvolution(ToySpace(), population_size=4, sample_size=2, rng=3)
    told, seen = [], []
    for _ in range(60):
        c = rea.ask()
        rea.tell(c.id, fitness(c.architecture))
        told.append(c.id)
        seen.append(c.architecture)
    assert [m.id for m in rea.population] == told[-4:]  # oldest removed, by age
    assert 70 in seen and abs(rea.best.architecture - 70) <= 3


def test_evolution_accepts_results_in_any_order():
    rea = RegularizedEvolution(ToySpace(), population_size=3, sample_size=2, rng=0)
    first = [rea.ask() for _ in range(5)]  # 3 random + 2 random (population still empty)
    assert rea.random_asked == 3
    for c in reversed(first):
        rea.tell(c.id, fitness(c.architecture))
    assert [m.id for m in rea.population] == [2, 1, 0]
    child = rea.ask()
    assert child.id == 5
    with pytest.raises(StrategyError, match="not awaiting"):
        rea.tell(4, 1.0)


def test_synchronous_cycles_wait_for_the_whole_cycle():
    rea = RegularizedEvolution(ToySpace(), population_size=2, sample_size=2, rng=0,
                               synchronous=True, cycle_size=2)
    initial = [rea.ask(), rea.ask()]
    assert rea.ask() is None  # no parents yet
    for c in initial:
        rea.tell(c.id, fitness(c.architecture))
    cycle = [rea.ask(), rea.ask()]
    assert all(c is not None for c in cycle) and rea.ask() is None
    rea.tell(cycle[0].id, 0.0)
    assert rea.ask() is None  # one of the cycle still out
    rea.tell(cycle[1].id, 0.0)
    assert rea.ask() is not None


def test_state_dict_resumes_the_same_sequence():
    a = RegularizedEvolution(ToySpace(), 5, 2, rng=11)
    drive(a, 17)
    pending = a.ask()
    state = a.state_dict()
    b = RegularizedEvolution(ToySpace(), 5, 2, rng=999)
    b.load_state_dict(state)
    assert b.pending == {pending.id: pending.architecture}
    for s in (a, b):
        s.tell(pending.id, fitness(pending.architecture))
    assert drive(a, 30) == drive(b, 30)


def test_random_search_is_reproducible_and_uniform():
    one, two = RandomSearch(ToySpace(), rng=5), RandomSearch(ToySpace(), rng=5)
    h1, h2 = drive(one, 2000), drive(two, 2000)
    assert h1 == h2
    counts = np.bincount(h1, minlength=100)
    assert counts.min() > 5 and counts.max() < 40


@pytest.mark.parametrize("kwargs,message", [
    ({"population_size": 0}, "population_size"),
    ({"population_size": 3, "sample_size": 4}, "sample_size"),
    ({"cycle_size": 0}, "cycle_size")])
def test_evolution_rejects_bad_settings(kwargs, message):
    with pytest.raises(StrategyError, match=message):
        RegularizedEvolution(ToySpace(), **kwargs)


def test_tell_rejects_non_finite_fitness():
    rs = RandomSearch(ToySpace(), rng=0)
    c = rs.ask()
    with pytest.raises(StrategyError, match="report failed evaluations as 0"):
        rs.tell(c.id, float("nan"))


def drive_in_cycles(strategy, cycles, order_rng):
    asked = []
    for _ in range(cycles):
        batch = []
        while (c := strategy.ask()) is not None:
            batch.append(c)
        asked.extend(c.architecture for c in batch)
        for i in order_rng.permutation(len(batch)):  # results arrive in any order
            strategy.tell(batch[i].id, fitness(batch[i].architecture))
    return asked


def test_synchronous_search_does_not_depend_on_result_order():
    runs = [drive_in_cycles(RegularizedEvolution(ToySpace(), 6, 3, rng=4, synchronous=True,
                                                 cycle_size=3), 12, np.random.default_rng(s))
            for s in (0, 1, 2)]
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0]) == 6 + 11 * 3


def test_synchronous_search_is_the_same_one_at_a_time():
    one_at_a_time = RegularizedEvolution(ToySpace(), 6, 3, rng=4, synchronous=True, cycle_size=3)
    serial = []
    while len(serial) < 6 + 11 * 3:
        c = one_at_a_time.ask()
        serial.append(c.architecture)
        one_at_a_time.tell(c.id, fitness(c.architecture))
    in_cycles = drive_in_cycles(RegularizedEvolution(ToySpace(), 6, 3, rng=4, synchronous=True,
                                                     cycle_size=3), 12, np.random.default_rng(0))
    assert serial == in_cycles
