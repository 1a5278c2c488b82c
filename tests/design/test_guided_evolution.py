"""Predictor-guided regularized evolution on the NAS-Bench-201 table."""

import numpy as np
import pytest

from nord.design.predictors.surrogate import OracleSurrogate
from nord.design.spaces import get_space
from nord.design.strategies import make_strategy
from nord.errors import StrategySettingsError
from nord.execution.runs import SearchSettings


@pytest.fixture(scope="module")
def table():
    objective = SearchSettings(space="nasbench201",
                               fitness="cifar10_valid_valid_12ep").build_objective()
    evaluator = objective.evaluator
    return {arch: float(evaluator.evaluate_string(arch, "validation_accuracy", "cifar10-valid", 12))
            for _, arch in evaluator}


def best_after(strategy, table, budget=60):
    best, asked = -np.inf, []
    for _ in range(budget):
        candidate = strategy.ask()
        asked.append(candidate.architecture)
        value = table[candidate.architecture]
        strategy.tell(candidate.id, value)
        best = max(best, value)
    return best, asked


def test_a_perfect_oracle_guides_the_search_above_random_search(table):
    space = get_space("nasbench201")
    graph_to_value = {space.to_graph(a): v for a, v in table.items()}
    oracle_bests, random_bests = [], []
    for seed in range(5):
        guided = make_strategy("guided-evolution", space, rng=seed, population_size=10,
                               predictor=OracleSurrogate(graph_to_value.__getitem__))
        oracle_bests.append(best_after(guided, table)[0])
        random_bests.append(best_after(make_strategy("random", space, rng=seed), table)[0])
    assert np.mean(oracle_bests) > np.mean(random_bests) + 0.5


def test_a_random_predictor_matches_plain_evolution_in_distribution(table):
    space = get_space("nasbench201")
    guided = [best_after(make_strategy("guided-evolution", space, rng=s, population_size=10,
                                       sample_size=3, predictor="random"), table, 80)[0]
              for s in range(12)]
    plain = [best_after(make_strategy("evolution", space, rng=100 + s, population_size=10,
                                      sample_size=3), table, 80)[0] for s in range(12)]
    # same algorithm up to the choice of child: the means agree within the seeds' spread
    spread = np.std(plain + guided)
    assert abs(np.mean(guided) - np.mean(plain)) < spread


def test_guided_search_never_repeats_and_resumes_exactly(table):
    space = get_space("nasbench201")
    options = dict(population_size=8, candidates=6, predictor_options={"initial_steps": 20})
    first = make_strategy("guided-evolution", space, rng=3, **options)
    _, asked = best_after(first, table, 30)
    assert len(set(asked)) == 30
    state = first.state_dict()
    resumed = make_strategy("guided-evolution", space, rng=99, **options)
    resumed.load_state_dict(state)
    _, more = best_after(first, table, 10)
    _, again = best_after(resumed, table, 10)
    assert more == again
    assert first.predictor_seconds > 0


def test_bad_settings_and_spaces_without_graphs_are_refused():
    space = get_space("nasbench201")
    with pytest.raises(StrategySettingsError, match="candidates"):
        make_strategy("guided-evolution", space, candidates=0)
    with pytest.raises(StrategySettingsError, match="predictor"):
        make_strategy("guided-evolution", space, predictor=3)
    with pytest.raises(StrategySettingsError, match="graph form"):
        make_strategy("guided-evolution", get_space("deepneat"))


@pytest.mark.slow
def test_on_nasbench101_isomorphic_cells_count_as_one_query():
    # NAS-Bench-101 stores one entry per isomorphism class: asking an isomorph again is a
    # cached repeat, so the novelty check compares the pruned cells' graph keys
    settings = SearchSettings(space="nasbench101")
    objective = settings.build_objective()
    objective.prepare()
    space = settings.build_space(objective)
    cell = space.sample(np.random.default_rng(0))
    matrix, ops = space.to_matrix(cell)
    assert space.identity(cell) == space.identity(space.from_matrix(matrix, ops))
    for name in ("guided-evolution", "local-search"):
        search = make_strategy(name, space, rng=1, population_size=20, sample_size=5) \
            if name == "guided-evolution" else make_strategy(name, space, rng=1)
        keys = []
        for _ in range(60):
            candidate = search.ask()
            descriptor = space.to_descriptor(candidate.architecture)
            keys.append(objective.key(descriptor))
            search.tell(candidate.id, objective.evaluate(descriptor).fitness)
        assert len(set(keys)) >= 58, name  # was 25 % repeats for guided evolution
