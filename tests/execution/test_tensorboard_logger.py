"""`nord search --log tensorboard` with the real package: event files TensorBoard reads back.

Skipped where tensorboard is not installed (pip install tensorboard, the
``tensorboard`` extra); the conftest summary line says whether it ran.
"""

from __future__ import annotations

import pytest

from nord.execution.store import RunStore
from tests.execution.logger_fakes import DATA, NB201, small_search

pytest.importorskip("tensorboard", reason="pip install tensorboard to run it")
pytestmark = pytest.mark.skipif(not NB201.exists(), reason="NAS-Bench-201 table not present")


def test_tensorboard_reads_back_every_result(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    monkeypatch.setenv("NORD_DATA", str(DATA))
    out = tmp_path / "run"
    assert small_search(out, "--log", "tensorboard") == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    with RunStore(out / "run.sqlite", create=False) as store:
        fitness = [r.fitness for r in store.finished()]
        best = store.best().fitness
    logged = events.Scalars("evaluation/fitness")
    assert [e.step for e in logged] == [1, 2, 3, 4, 5, 6]
    assert [e.value for e in logged] == pytest.approx(fitness, rel=1e-6)
    assert events.Scalars("search/best_fitness")[-1].value == pytest.approx(best, rel=1e-6)
