"""A search process killed with SIGKILL resumes with nothing lost or repeated."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nord.execution.store import RunStore

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from nord.design.strategies.evolution import RegularizedEvolution
from nord.execution.run_loop import SearchRun
from nord.execution.store import RunStore
from tests.toy_search import ToyObjective, ToySpace

store = RunStore(sys.argv[1])
objective = ToyObjective(delay=float(sys.argv[2]))
SearchRun(RegularizedEvolution(ToySpace(), 8, 3, rng=21), objective, store, 60,
          cache=False).run()
print("calls", objective.calls)
"""


def launch(tmp_path, store_path, delay):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(script), str(store_path), str(delay)],
                            env=env, stdout=subprocess.PIPE, text=True)


def finished_rows(path):
    if not path.exists():
        return 0
    with RunStore(path) as store:
        return store.count() - store.count("pending")


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path):
    killed = tmp_path / "killed" / "run.sqlite"
    process = launch(tmp_path, killed, 0.03)
    deadline = time.time() + 60
    while finished_rows(killed) < 20 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = finished_rows(killed)
    assert 20 <= done_before < 60

    resumed = launch(tmp_path, killed, 0.0)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0
    calls_after = int(out.split()[-1])

    reference = tmp_path / "reference" / "run.sqlite"
    ref = launch(tmp_path, reference, 0.0)
    ref.communicate(timeout=120)

    with RunStore(killed) as a, RunStore(reference) as b:
        got = [(r.id, r.architecture, r.status, r.fitness) for r in a.finished()]
        want = [(r.id, r.architecture, r.status, r.fitness) for r in b.finished()]
        assert got == want and len(got) == 60
        # only what had no committed result (the one in flight at the kill) runs again
        assert calls_after == 60 - done_before
