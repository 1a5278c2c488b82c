"""A tiny search space and objective with known answers, for search tests.

Architectures are integers 0..99; a mutation adds or subtracts 1..3; the
descriptor is a chain of ``arch % 7 + 1`` identity layers whose op params
carry the integer; fitness is ``-(arch - 70)**2`` (optimum 70), and the
integers divisible by 13 are "outside the space".
"""

from __future__ import annotations

import sqlite3
import time

from nord.design.spaces.base import SearchSpace
from nord.errors import OutOfSearchSpaceError
from nord.execution.objectives import Objective, Outcome
from nord.neural_nets import NeuralDescriptor


class ToySpace(SearchSpace):
    name = "toy"

    def sample(self, rng):
        return int(rng.integers(100))

    def mutate(self, architecture, rng):
        step = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
        return min(99, max(0, architecture + step))

    def to_descriptor(self, architecture):
        d = NeuralDescriptor()
        d.add_layer("input", {}, "in")
        for i in range(architecture % 7 + 1):
            d.add_layer_sequential("identity", {}, f"{i}_Layer")
        d.add_layer_sequential("output", {}, "out")
        d.layers["in"].params["value"] = architecture
        return d


def value_of(descriptor) -> int:
    return descriptor.layers["in"].params["value"]


class ToyObjective(Objective):
    name = "toy"

    def __init__(self, delay: float = 0.0, fail_on=(), pid_file=None):
        self.delay = delay
        self.fail_on = set(fail_on)
        self.pid_file = pid_file
        self.calls = 0

    def evaluate(self, descriptor):
        self.calls += 1
        value = value_of(descriptor)
        if self.pid_file is not None:  # lets a test find (and kill) a busy worker
            import os
            with open(self.pid_file, "a") as handle:
                handle.write(f"{os.getpid()}\n")
        if self.delay:
            time.sleep(self.delay)
        if value % 13 == 0:
            raise OutOfSearchSpaceError(f"{value} is divisible by 13")
        if value in self.fail_on:
            raise RuntimeError(f"training {value} diverged")
        return Outcome(float(-(value - 70) ** 2), {"value": value}, cost=1.0)

    def key(self, descriptor):
        return str(value_of(descriptor))


class WorkerNumberObjective(ToyObjective):
    """ToyObjective that also reports which pool worker evaluated each candidate."""

    def evaluate(self, descriptor):
        from nord.execution import process_pool
        outcome = super().evaluate(descriptor)
        return Outcome(outcome.fitness, {**outcome.metrics, "worker": process_pool._worker_index},
                       outcome.cost)


class Crash(Exception):
    """Raised by :func:`crash_after` to stop a run as a crash would."""


def crash_after(n):
    """A run-loop callback that crashes the run once ``n`` results are told."""
    def callback(event):
        if event.done == n:
            raise Crash
    return callback


class TwoWorkersObjective(ToyObjective):
    """ToyObjective whose first evaluations wait (up to ``timeout`` s) until two worker
    processes have begun one each, so both take part however slowly the second one
    starts. ``pid_file`` is required: the workers meet through it."""

    def __init__(self, pid_file, timeout: float = 60.0, **options):
        super().__init__(pid_file=pid_file, **options)
        self.timeout = timeout

    def evaluate(self, descriptor):
        outcome = super().evaluate(descriptor)  # writes this worker's PID first
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            with open(self.pid_file) as handle:
                if len(set(handle.read().split())) >= 2:
                    break
            time.sleep(0.01)
        return outcome


def collect_all(executor) -> list:
    """Every result of the tasks in flight, by task id."""
    results = []
    while executor.in_flight:
        results += executor.collect()
    return sorted(results, key=lambda r: r.id)


def make_sqlite_read_only(monkeypatch):
    """Open every SQLite file read-only from now on (undone with the monkeypatch), as
    SQLite does a file that the process may not write; returns the real connect."""
    connect = sqlite3.connect

    def read_only(name, *args, **kwargs):
        return connect(f"file:{name}?mode=ro", *args, uri=True, **kwargs)
    monkeypatch.setattr(sqlite3, "connect", read_only)
    return connect
