"""The reinforcement-learning agent of thesis §3.3.2 (listings 3.8 and 3.9).

A double deep Q-network builds NAS-Bench-101 cells layer by layer. The state
(45 values) is the cell so far: six 4-value one-hot layer codes (the three
ops, plus a code for the input layer) and the 21 bits of the upper triangle
of the 7×7 connection matrix. Each step chooses a layer type (3 ops, or
"stop": connect the output) with the *layer head*, and its inputs with the
*input head*, attention-like: of its 7 outputs (one per layer position before
the output, and one meaning "no connection"), the two highest among the
layers that exist become the new layer's inputs. The episode ends when the
agent stops or the cell has 5 inner layers; only then is the cell evaluated,
and its fitness is the episode's only reward.

In ask/tell form an episode is played out in :meth:`ask` (the policy needs
no reward until the end) and learnt from in :meth:`tell`: the episode's
transitions enter the replay memory with the terminal reward, and the policy
network takes one optimisation step per transition (listing 3.9 optimises
once per step), its target network copied every ``target_update`` episodes.

Departures from the listing, each a fix: the "no connection" choice is
actually reachable (the listing sorted only over existing layers, so it never
was); every random choice comes from the strategy's generator; and with
``space.held_only`` an episode whose cell the loaded table lacks is replayed
with random actions (up to ``max_tries`` times) so the agent is scored only on
cells the subset holds.

Exploration, so that the agent does not spend its budget on cells it already
proposed (with the shipped 30k-cell table and 150 queries, 93 % of the
proposals used to be repeats, answered from the cache):

* epsilon decays with the agent's *own* decisions only; the random replays of
  ``held_only`` are the environment's, and counting them (some 60 steps per
  proposal) had made the agent greedy within its first 20 episodes;
* novelty: a proposal isomorphic to an earlier one is played again in a
  widening neighbourhood of the policy's cell: replay ``r`` of
  ``N = novelty_tries`` keeps the policy's layer types and redraws each step's
  inputs with probability ``r / N``; replays ``N + 1 .. 2N`` also take random
  layers with probability ``r / N - 1``; after those (or when the table lacks
  the replayed cell), random cells;
* random replays *grow* their cells (a random action adds a layer, it never
  stops the cell early): most random episodes otherwise stop within a layer or
  two and prune to the same few tiny cells (input -> output alone was 1 in 3),
  while most cells of a table have 5 inner layers.

At most ``max_tries`` episodes are played per proposal; when none is new the
first one the table holds is proposed again. The episode the agent learns from
is the one whose cell it proposed. ``novelty_tries=0`` turns novelty off.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nord import safe_pickle
from nord.design.spaces.nasbench101 import INPUT, OUTPUT, OUTPUT_LAYER_NAME, NASBench101Space
from nord.design.strategies.base import Strategy, StrategyError
from nord.errors import StrategySettingsError
from nord.neural_nets.neural_descriptor import NeuralDescriptor
from nord.neural_nets.torch_threads import torch_threads

__all__ = ["DQNAgent", "CellBuilder", "QNetwork", "STATE_SIZE"]

MAX_INNER = 5                 # inner layers of a NAS-Bench-101 cell
POSITIONS = MAX_INNER + 1     # layer positions before the output (input included)
CODE = 4                      # 3 ops + the input layer's code
STATE_SIZE = POSITIONS * CODE + 21
NO_CONNECTION = POSITIONS     # index of the input head's "no connection" output
_UPPER = np.triu_indices(POSITIONS + 1, k=1)  # the 21 connection bits of the state, in order


class CellBuilder:
    """The environment of listing 3.8: a cell grown one layer per step (pure)."""

    def __init__(self, ops) -> None:
        self.ops = list(ops)
        self.layers: List[str] = [INPUT]
        self.edges: List[Tuple[int, int]] = []   # (src position, dst position); dst 6 = output
        self.done = False

    def state(self) -> np.ndarray:
        codes = np.zeros(POSITIONS * CODE, dtype=np.float32)
        for i, op in enumerate(self.layers):
            codes[i * CODE + (CODE - 1 if op == INPUT else self.ops.index(op))] = 1.0
        matrix = np.zeros((POSITIONS + 1, POSITIONS + 1), dtype=np.float32)
        for src, dst in self.edges:
            matrix[src, dst] = 1.0
        return np.concatenate([codes, matrix[_UPPER]])

    def inputs(self, scores: np.ndarray) -> Tuple[int, int]:
        """The two highest-scoring choices among existing layers and "no connection"."""
        allowed = list(range(len(self.layers))) + [NO_CONNECTION]
        order = sorted(allowed, key=lambda i: (-scores[i], i))
        first = next(i for i in order if i != NO_CONNECTION)  # at least one input
        second = next(i for i in order if i != first)
        return first, second

    def step(self, layer: int, inputs: Tuple[int, int]) -> bool:
        """Add the chosen layer (``layer == len(ops)``: the output); True when finished."""
        if self.done:
            raise StrategyError("the cell is finished; start a new episode")
        target = POSITIONS if layer == len(self.ops) else len(self.layers)
        for source in dict.fromkeys(inputs):
            if source != NO_CONNECTION:
                self.edges.append((source, target))
        if target == POSITIONS:
            self.done = True
        else:
            self.layers.append(self.ops[layer])
            if len(self.layers) == POSITIONS:  # full: connect the output to the last layer
                self.edges.append((POSITIONS - 1, POSITIONS))
                self.done = True
        return self.done

    def descriptor(self) -> NeuralDescriptor:
        d = NeuralDescriptor()
        names = [d.add_layer(op, {}, f"{i}_Layer") for i, op in enumerate(self.layers)]
        names.append(d.add_layer(OUTPUT, {}, OUTPUT_LAYER_NAME))
        for src, dst in self.edges:
            d.connect_layers(names[src], names[min(dst, len(names) - 1)])
        return d


class QNetwork(nn.Module):
    """Fully connected controller with a layer-type head and an input-selection head."""

    def __init__(self, n_ops: int = 3, hidden: int = 64) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(STATE_SIZE, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU())
        self.layer_head = nn.Linear(hidden, n_ops + 1)
        self.input_head = nn.Linear(hidden, POSITIONS + 1)

    def forward(self, state: torch.Tensor):
        features = self.trunk(state)
        return self.layer_head(features), self.input_head(features)


@dataclass
class Transition:
    state: np.ndarray
    layer: int
    in1: int
    in2: int
    next_state: Optional[np.ndarray]
    reward: float


class ReplayMemory:
    """A ring buffer of transitions held as arrays (cheap to sample and to save)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.state = np.zeros((self.capacity, STATE_SIZE), dtype=np.float32)
        self.next_state = np.zeros((self.capacity, STATE_SIZE), dtype=np.float32)
        self.actions = np.zeros((self.capacity, 3), dtype=np.int64)   # layer, in1, in2
        self.alive = np.zeros(self.capacity, dtype=bool)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.size = 0
        self.position = 0

    def __len__(self) -> int:
        return self.size

    def push(self, t: Transition) -> None:
        i = self.position
        self.state[i] = t.state
        self.actions[i] = (t.layer, t.in1, t.in2)
        self.alive[i] = t.next_state is not None
        self.next_state[i] = t.next_state if t.next_state is not None else 0.0
        self.reward[i] = t.reward
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def state_dict(self) -> dict:
        n = self.size
        return {"capacity": self.capacity, "size": n, "position": self.position,
                "state": self.state[:n].copy(), "next_state": self.next_state[:n].copy(),
                "actions": self.actions[:n].copy(), "alive": self.alive[:n].copy(),
                "reward": self.reward[:n].copy()}

    def load_state_dict(self, saved: dict) -> None:
        self.__init__(saved["capacity"])
        n = self.size = int(saved["size"])
        self.position = int(saved["position"])
        for name in ("state", "next_state", "actions", "alive", "reward"):
            getattr(self, name)[:n] = saved[name]


class DQNAgent(Strategy):
    """Double DQN over NAS-Bench-101 cells (see the module docstring).

    >>> agent = DQNAgent(NASBench101Space(), rng=0)
    >>> c = agent.ask(); agent.tell(c.id, 0.91)
    """

    name = "rl"

    def __init__(self, space: Optional[NASBench101Space] = None, rng: Any = None,
                 hidden: int = 64, lr: float = 1e-3, gamma: float = 0.99, batch_size: int = 32,
                 memory_size: int = 5000, eps_start: float = 0.9, eps_end: float = 0.05,
                 eps_decay: float = 1000.0, target_update: int = 10, max_tries: int = 200,
                 novelty_tries: int = 10) -> None:
        space = space or NASBench101Space()
        if not isinstance(space, NASBench101Space):
            raise StrategySettingsError(f"the RL agent builds NAS-Bench-101 cells; it needs "
                                        f"the nasbench101 space, got "
                                        f"{getattr(space, 'name', space)!r}")
        super().__init__(space, rng)
        self.ops = list(space.ops)
        self.gamma, self.batch_size = float(gamma), int(batch_size)
        self.memory_size = int(memory_size)
        self.eps_start, self.eps_end = float(eps_start), float(eps_end)
        self.eps_decay = float(eps_decay)
        self.target_update, self.max_tries = int(target_update), int(max_tries)
        if int(novelty_tries) < 0:
            raise StrategySettingsError(f"novelty_tries must be 0 or more (0: propose repeats "
                                        f"as the policy gives them), got {novelty_tries}")
        self.novelty_tries = int(novelty_tries)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.rng.integers(2 ** 31)))
            self.policy_net = QNetwork(len(self.ops), hidden)
            self.target_net = QNetwork(len(self.ops), hidden)
        self.target_net.load_state_dict(self.policy_net.state_dict())
        self.target_net.eval()
        self.optimizer = torch.optim.Adam(self.policy_net.parameters(), lr=lr)
        self.memory = ReplayMemory(memory_size)
        self.steps_done = 0
        self.episodes = 0
        self.episode_transitions: dict = {}
        self.proposed: dict = {}  # canonical hash of every cell proposed -> None (ordered set)
        self._saved = None  # (episodes, network bytes, memory bytes) last serialised

    # ------------------------------------------------------------- acting
    @property
    def epsilon(self) -> float:
        decay = math.exp(-self.steps_done / self.eps_decay)
        return self.eps_end + (self.eps_start - self.eps_end) * decay

    def _act(self, builder: CellBuilder, explore: Optional[float], rewire: float = 0.0,
             grow: bool = False) -> Tuple[int, Tuple[int, int]]:
        """One step: a random action with probability ``explore`` (``None``: the
        epsilon schedule, and the step counts towards its decay), else the
        policy's, its inputs redrawn at random with probability ``rewire``.
        ``grow``: a random action adds a layer, it never stops the cell."""
        if explore is None:
            explore = self.epsilon
            self.steps_done += 1
        if explore >= 1 or self.rng.random() < explore:
            layer = int(self.rng.integers(len(self.ops) + (0 if grow else 1)))
            scores = self.rng.random(POSITIONS + 1)
        else:
            with torch.no_grad():
                q_layer, q_input = self.policy_net(torch.from_numpy(builder.state())[None])
            layer = int(q_layer[0].argmax())
            if rewire > 0 and self.rng.random() < rewire:
                scores = self.rng.random(POSITIONS + 1)
            else:
                scores = torch.softmax(q_input[0], 0).numpy()
        return layer, builder.inputs(scores)

    def _episode(self, explore: Optional[float], rewire: float = 0.0, grow: bool = False):
        builder, transitions = CellBuilder(self.ops), []
        while not builder.done:
            state = builder.state()
            layer, (in1, in2) = self._act(builder, explore, rewire, grow)
            done = builder.step(layer, (in1, in2))
            transitions.append(Transition(state, layer, in1, in2,
                                          None if done else builder.state(), 0.0))
        return builder.descriptor(), transitions

    def _propose(self) -> NeuralDescriptor:
        with torch_threads(1):
            return self._propose_episode()

    def _propose_episode(self) -> NeuralDescriptor:
        """The policy's episode, replayed (up to ``max_tries`` episodes in all) while
        its cell repeats an earlier proposal or, with ``space.held_only``, is not in
        the table (see the module docstring)."""
        descriptor, transitions = self._episode(None)
        held = not self.space.held_only or self.space.is_held(descriptor)
        key = _cell_key(descriptor) if held else None
        repeat = (descriptor, transitions, key) if held else None  # the fallback
        tries, replay = 1, 0
        while ((not held or (self.novelty_tries and key in self.proposed))
               and tries < self.max_tries):
            if held and replay < 2 * self.novelty_tries:
                replay += 1  # a repeat: search a widening neighbourhood of the policy's cell
                rewire = min(1.0, replay / self.novelty_tries)
                explore = max(self.epsilon, replay / self.novelty_tries - 1.0)
                descriptor, transitions = self._episode(explore, rewire=rewire)
            else:  # a random cell, grown to full size (as most cells of a table are)
                descriptor, transitions = self._episode(1.0, grow=True)
            held = not self.space.held_only or self.space.is_held(descriptor)
            key = _cell_key(descriptor) if held else None
            if held and repeat is None:
                repeat = (descriptor, transitions, key)
            tries += 1
        if not held or (self.novelty_tries and key in self.proposed):
            if repeat is not None:  # nothing new found: an earlier proposal again
                descriptor, transitions, key = repeat
            else:  # nothing the table holds: a cell it lacks (scored as a failure)
                key = _cell_key(descriptor)
        self.proposed[key] = None
        self.episode_transitions[self.next_id] = transitions
        return descriptor

    # ------------------------------------------------------------ learning
    def _learn(self, candidate_id: int, architecture: Any, fitness: float) -> None:
        transitions = self.episode_transitions.pop(candidate_id)
        transitions[-1].reward = fitness
        with torch_threads(1):
            for transition in transitions:
                self._remember(transition)
                self._optimize()
        self.episodes += 1
        if self.episodes % self.target_update == 0:
            self.target_net.load_state_dict(self.policy_net.state_dict())

    def _remember(self, transition: Transition) -> None:
        self.memory.push(transition)

    def _optimize(self) -> None:
        memory = self.memory
        if len(memory) < self.batch_size:
            return
        picks = self.rng.choice(len(memory), self.batch_size, replace=False)
        states = torch.from_numpy(memory.state[picks])
        actions = torch.from_numpy(memory.actions[picks])
        layers, in1, in2 = actions[:, 0], actions[:, 1], actions[:, 2]
        rewards = torch.from_numpy(memory.reward[picks])
        alive = torch.from_numpy(memory.alive[picks])
        q_layer, q_input = self.policy_net(states)
        targets = rewards.clone()
        if alive.any():
            following = torch.from_numpy(memory.next_state[picks][memory.alive[picks]])
            with torch.no_grad():  # double DQN: the policy picks, the target values
                policy_layer, policy_input = self.policy_net(following)
                target_layer, target_input = self.target_net(following)
                layer_value = target_layer.gather(1, policy_layer.argmax(1, keepdim=True))
                input_value = target_input.gather(1, policy_input.argmax(1, keepdim=True))
                value = (layer_value.squeeze(1) + input_value.squeeze(1)) / 2
            targets[alive] += self.gamma * value
        chosen = torch.stack([q_layer.gather(1, layers[:, None]).squeeze(1),
                              q_input.gather(1, in1[:, None]).squeeze(1),
                              q_input.gather(1, in2[:, None]).squeeze(1)], 1)
        loss = F.smooth_l1_loss(chosen, targets[:, None].expand_as(chosen))
        self.optimizer.zero_grad()
        loss.backward()
        for p in self.policy_net.parameters():
            p.grad.data.clamp_(-1, 1)
        self.optimizer.step()

    # --------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Plain data: the networks as ``torch.save`` bytes, the replay memory as
        arrays (a run store saves only their changed rows), episodes as tuples."""
        state = super().state_dict()
        if self._saved is None or self._saved[0] != self.episodes:
            # the networks change only when an episode is learnt from: serialise them
            # once per episode, however often the state is asked for
            buffer = io.BytesIO()
            torch.save({"policy": self.policy_net.state_dict(),
                        "target": self.target_net.state_dict(),
                        "optimizer": self.optimizer.state_dict()}, buffer)
            self._saved = (self.episodes, buffer.getvalue())
        episodes = {i: [(t.state.copy(), t.layer, t.in1, t.in2,
                         None if t.next_state is None else t.next_state.copy(), t.reward)
                        for t in steps]
                    for i, steps in self.episode_transitions.items()}
        state.update(networks=self._saved[1], memory=self.memory.state_dict(),
                     steps_done=self.steps_done, episodes=self.episodes,
                     episode_transitions=episodes, proposed=_keys_to_array(self.proposed))
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        # read by NORD's one restricted unpickler, like the rest of the state
        networks = _as_tensors(safe_pickle.load_torch(state["networks"]))
        self.policy_net.load_state_dict(networks["policy"])
        self.target_net.load_state_dict(networks["target"])
        self.optimizer.load_state_dict(networks["optimizer"])
        memory = state["memory"]
        self.memory.load_state_dict(safe_pickle.loads(memory) if isinstance(memory, bytes)
                                    else memory)
        self.steps_done = int(state["steps_done"])
        self.episodes = int(state["episodes"])
        self.episode_transitions = {int(i): [_transition(t) for t in steps]
                                    for i, steps in dict(state["episode_transitions"]).items()}
        # states saved before novelty replays have no record of what was proposed
        self.proposed = dict.fromkeys(_keys_from_array(state.get("proposed")))
        self._saved = None


def _cell_key(descriptor: NeuralDescriptor) -> str:
    """The cell's canonical hash: isomorphic cells share it."""
    return descriptor.canonical_hash()


def _keys_to_array(keys) -> np.ndarray:
    """Hex MD5 keys as a ``[n, 16]`` uint8 array (a run store saves only its new rows)."""
    return np.array([list(bytes.fromhex(key)) for key in keys], dtype=np.uint8).reshape(-1, 16)


def _keys_from_array(saved) -> List[str]:
    if saved is None:
        return []
    return [bytes(row).hex() for row in np.asarray(saved, dtype=np.uint8).reshape(-1, 16)]


def _as_tensors(value: Any) -> Any:
    """``value`` (what :func:`nord.safe_pickle.load_torch` read) with its numpy arrays
    as tensors again, in dicts (of their own type), lists and tuples."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, dict):
        return type(value)((key, _as_tensors(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_as_tensors(item) for item in value)
    return value


def _transition(saved) -> Transition:
    """A saved episode step: a tuple, or (stores from before) a record with attributes."""
    if isinstance(saved, (tuple, list)):
        state, layer, in1, in2, next_state, reward = saved
    else:
        state, layer, in1, in2, next_state, reward = (
            saved.state, saved.layer, saved.in1, saved.in2, saved.next_state, saved.reward)
    return Transition(np.array(state, dtype=np.float32), int(layer), int(in1), int(in2),
                      None if next_state is None else np.array(next_state, dtype=np.float32),
                      float(reward))
