"""The DQN agent of listings 3.8-3.9: exact states, valid cells, learning, resumability."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from nord import safe_pickle
from nord.design.spaces.nasbench101 import NASBench101Space
from nord.design.strategies.base import StrategyError
from nord.design.strategies.reinforcement import (NO_CONNECTION, STATE_SIZE, CellBuilder,
                                                  DQNAgent, Transition)
from tests.toy_search import ToySpace

OPS = ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]
DATA = Path(os.environ.get("NORD_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
NB101 = DATA / "nasbench101" / "nb101_30k_subset.csv.gz"


def test_state_is_the_45_value_code_of_the_cell():
    b = CellBuilder(OPS)
    assert STATE_SIZE == 45 and b.state().shape == (45,)
    b.step(0, (0, NO_CONNECTION))          # conv3x3 fed by the input
    b.step(2, (1, 0))                      # maxpool fed by conv3x3 and the input
    state = b.state()
    codes, bits = state[:24].reshape(6, 4), state[24:]
    assert codes[:3].tolist() == [[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0]]
    assert not codes[3:].any()
    # bits follow the upper triangle of the 7x7 matrix, row by row: (0,1) (0,2) ... (5,6)
    pairs = [(i, j) for i in range(7) for j in range(i + 1, 7)]
    assert {pairs[k] for k in np.flatnonzero(bits)} == {(0, 1), (1, 2), (0, 2)}
    assert b.step(3, (2, NO_CONNECTION)) is True  # stop: output fed by the maxpool
    d = b.descriptor()
    assert [d.layers[n].layer for n in d.layers] == ["input", *OPS[0:1], OPS[2], "output"]
    assert sorted(d.edges()) == [("0_Layer", "1_Layer"), ("0_Layer", "2_Layer"),
                                 ("1_Layer", "2_Layer"), ("2_Layer", "9999")]


def test_input_choice_is_attention_like_top_two():
    b = CellBuilder(OPS)
    b.step(0, (0, NO_CONNECTION))
    scores = np.array([0.1, 0.5, 0.0, 0.0, 0.0, 0.0, 0.4])
    assert b.inputs(scores) == (1, NO_CONNECTION)
    scores = np.array([0.3, 0.5, 0.9, 0.9, 0.9, 0.9, 0.1])  # positions 2.. do not exist yet
    assert b.inputs(scores) == (1, 0)
    scores = np.array([0.0, 0.0, 0, 0, 0, 0, 1.0])          # one input is always chosen
    assert b.inputs(scores) == (0, NO_CONNECTION)


def test_a_full_cell_ends_the_episode_and_connects_the_output():
    b = CellBuilder(OPS)
    for i in range(5):
        done = b.step(1, (i, NO_CONNECTION))
    assert done and len(b.layers) == 6 and (5, 6) in b.edges
    with pytest.raises(StrategyError, match="finished"):
        b.step(0, (0, 0))


def conv3x3_share(descriptor):
    ops = [s.layer for s in descriptor.layers.values()]
    inner = [o for o in ops if o not in ("input", "output")]
    return sum(o == "conv3x3-bn-relu" for o in inner) / 5.0


def test_agent_learns_to_prefer_the_rewarded_op():
    agent = DQNAgent(NASBench101Space(), rng=0, eps_decay=100)
    rewards = []
    for _ in range(300):
        c = agent.ask()
        reward = conv3x3_share(c.architecture)
        rewards.append(reward)
        agent.tell(c.id, reward)
    assert np.mean(rewards[-50:]) > np.mean(rewards[:50]) + 0.3


def test_agent_state_dict_continues_identically():
    a = DQNAgent(NASBench101Space(), rng=3)
    for _ in range(40):
        c = a.ask()
        a.tell(c.id, conv3x3_share(c.architecture))
    c = a.ask()
    b = DQNAgent(NASBench101Space(), rng=99)
    b.load_state_dict(a.state_dict())
    for agent in (a, b):
        agent.tell(c.id, 0.5)
    for _ in range(20):
        ca, cb = a.ask(), b.ask()
        assert ca.architecture == cb.architecture
        a.tell(ca.id, conv3x3_share(ca.architecture))
        b.tell(cb.id, conv3x3_share(cb.architecture))


def test_agent_needs_the_nasbench101_space():
    with pytest.raises(StrategyError, match="nasbench101 space"):
        DQNAgent(ToySpace())


def continue_both(a, b, pending, steps=15):
    for agent in (a, b):
        agent.tell(pending.id, 0.5)
    for _ in range(steps):
        ca, cb = a.ask(), b.ask()
        assert ca.architecture == cb.architecture
        a.tell(ca.id, conv3x3_share(ca.architecture))
        b.tell(cb.id, conv3x3_share(cb.architecture))


def trained_agent_with_one_in_flight():
    a = DQNAgent(NASBench101Space(), rng=5, memory_size=200)
    for _ in range(50):
        c = a.ask()
        a.tell(c.id, conv3x3_share(c.architecture))
    return a, a.ask()


def test_agent_state_is_plain_data_with_an_episode_in_flight():
    a, pending = trained_agent_with_one_in_flight()
    state = safe_pickle.loads(safe_pickle.dumps(a.state_dict()))  # refuses anything but data
    steps = state["episode_transitions"][pending.id]
    assert all(type(step) is tuple and len(step) == 6 for step in steps)
    assert state["memory"]["state"].shape == (len(a.memory), STATE_SIZE)  # arrays to chunk
    b = DQNAgent(NASBench101Space(), rng=99, memory_size=200)
    b.load_state_dict(state)
    continue_both(a, b, pending)


def test_agent_state_saved_by_the_previous_version_still_loads():
    """It held episode steps as Transition objects and the memory as pickled bytes."""
    a, pending = trained_agent_with_one_in_flight()
    state = a.state_dict()
    state["episode_transitions"] = {i: [Transition(*step) for step in steps]
                                    for i, steps in state["episode_transitions"].items()}
    state["memory"] = safe_pickle.dumps(state["memory"])
    loaded = safe_pickle.loads(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    assert isinstance(loaded["episode_transitions"][pending.id][0], safe_pickle.PlainRecord)
    b = DQNAgent(NASBench101Space(), rng=99, memory_size=200)
    b.load_state_dict(loaded)
    continue_both(a, b, pending)


def search_inside_the_table(evaluator, seed, queries=150, **settings):
    """What `nord search --space nasbench101 --strategy rl` does with the shipped
    subset: held-only cells, isomorphic repeats answered from a cache."""
    space = NASBench101Space(held_only=True, mutation="nasbench", evaluator=evaluator)
    agent = DQNAgent(space, rng=seed, **settings)
    scores, repeats = {}, 0
    for _ in range(queries):
        c = agent.ask()
        key = evaluator.hash_of(c.architecture)
        repeats += key in scores
        if key not in scores:
            scores[key] = evaluator.descriptor_evaluate(c.architecture)[0]
        agent.tell(c.id, scores[key])
    return repeats / queries, max(scores.values())


@pytest.mark.slow
@pytest.mark.skipif(not NB101.exists(), reason="../shared/data/nasbench101 not present")
def test_agent_explores_instead_of_repeating_cells_inside_the_table():
    from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
    evaluator = NASBench_101Evaluator(NB101)
    for seed in range(3):
        repeats, best = search_inside_the_table(evaluator, seed)
        assert repeats < 0.2, f"seed {seed}: {repeats:.0%} of 150 queries were repeats"
        assert best > 0.94  # (random search finds 0.942-0.945 with 150 queries)


def test_novel_cells_are_proposed_and_remembered():
    agent = DQNAgent(NASBench101Space(), rng=0, eps_decay=10)
    keys = []
    for _ in range(60):
        c = agent.ask()
        keys.append(c.architecture.canonical_hash())
        agent.tell(c.id, conv3x3_share(c.architecture))
    assert len(set(keys)) == 60 and list(agent.proposed) == keys
    saved = agent.state_dict()["proposed"]         # 16 bytes a cell: stored in chunks
    assert saved.dtype == np.uint8 and saved.shape == (60, 16)
    assert bytes(saved[0]).hex() == keys[0]
    greedy = DQNAgent(NASBench101Space(), rng=0, eps_decay=10, novelty_tries=0)
    repeated = [greedy.ask() for _ in range(60)]
    assert len({c.architecture.canonical_hash() for c in repeated}) < 60
    state = agent.state_dict()
    del state["proposed"]                      # saved before novelty replays existed
    b = DQNAgent(NASBench101Space(), rng=1)
    b.load_state_dict(state)
    assert b.proposed == {}
    with pytest.raises(StrategyError, match="novelty_tries"):
        DQNAgent(NASBench101Space(), novelty_tries=-1)
