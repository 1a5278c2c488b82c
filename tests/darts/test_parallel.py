"""Data-parallel DARTS (Algorithms 1 and 2): one rank is the serial search exactly; two
gloo ranks end every epoch with identical weights and architecture weights."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nord.darts.parallel import ALGORITHMS, ParallelDartsSearch
from nord.darts.search import DartsSearch, DartsSettings
from nord.errors import SettingsError
from nord.neural_nets.distributed.collectives import RankGroup
from tests.darts.darts_data import TINY, synthetic
from tests.fashion_mnist_data import needs_fashion_mnist

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("darts_ranks.py")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_one_rank_is_the_serial_search_exactly(algorithm):
    settings = DartsSettings(**TINY, epochs=2, seed=1)
    serial, parallel = DartsSearch(settings, synthetic()), ParallelDartsSearch(
        settings, synthetic(), algorithm, RankGroup())
    for _ in range(2):
        a, b = serial.run_epoch(), parallel.run_epoch()
        assert (a["train_loss"], a["genotype"], a["alpha_reduce"]) == \
            (b["train_loss"], b["genotype"], b["alpha_reduce"])
        assert b["all_reduce_calls"] == 0 and b["ranks"] == 1
    assert all(torch.equal(p, q) for p, q in zip(serial.model.state_dict().values(),
                                                 parallel.model.state_dict().values()))


def test_bad_algorithms_and_world_sizes_are_refused():
    with pytest.raises(SettingsError, match="unknown data-parallel DARTS algorithm"):
        ParallelDartsSearch(DartsSettings(**TINY), synthetic(), "average")
    crowded = RankGroup()
    crowded.size = 8  # 32 samples per half over 8 ranks: 4 each, less than a batch of 8
    with pytest.raises(SettingsError, match="4 per rank, fewer than one batch of 8"):
        ParallelDartsSearch(DartsSettings(**TINY), synthetic(), "weights", crowded)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(algorithm, out, world_size=2, timeout=120):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    processes = [subprocess.Popen(
        [sys.executable, str(SCRIPT), "--rank", str(r), "--world-size", str(world_size),
         "--port", str(port), "--algorithm", algorithm, "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(world_size)]
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p, output in zip(processes, outputs):
        assert p.returncode == 0, output
    return [torch.load(Path(out) / f"rank{r}.pt", weights_only=True)
            for r in range(world_size)]


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_two_gloo_ranks_end_with_identical_weights_and_alphas(algorithm, tmp_path):
    first, second = run_ranks(algorithm, tmp_path)
    assert first["model"].keys() == second["model"].keys()
    for key in first["model"]:
        assert torch.equal(first["model"][key], second["model"][key]), key
    for a, b in zip(first["metrics"], second["metrics"]):
        assert a["genotype"] == b["genotype"] and a["train_loss"] == b["train_loss"]
        assert a["ranks"] == 2
    batches = first["metrics"][0]["batches"]
    assert batches == 2  # 32 samples per half, 16 per rank, batches of 8
    calls = [m["all_reduce_calls"] for m in first["metrics"]]
    # Algorithm 1: one all-reduce an epoch; Algorithm 2: two a step, plus BN statistics
    assert calls == ([1, 1] if algorithm == "weights" else [2 * batches + 1] * 2)
    # the two ranks trained on different shards: the model moved from its start
    serial = DartsSearch(DartsSettings(**TINY, epochs=2, seed=1), synthetic())
    assert not torch.equal(serial.model.alpha_reduce, first["model"]["alpha_reduce"])
    # both cells of this tiny net are reductions: the normal alphas never get a gradient
    # and stay as they started, as in a serial search
    assert torch.equal(serial.model.alpha_normal, first["model"]["alpha_normal"])


@needs_fashion_mnist
@pytest.mark.slow
def test_a_two_rank_search_through_the_run_loop_resumes_exactly(tmp_path):
    from nord.darts.study import DartsSearchStudy, checkpoint_path
    from nord.studies.base import run_study
    from tests.studies.study_helpers import kill_after
    settings = dict(dataset="fashion-mnist", share=0.004, epochs=3, ranks=2, **TINY)
    whole = run_study(DartsSearchStudy(**settings), tmp_path / "whole")
    assert whole.results["epochs"] == 3
    killed = tmp_path / "killed"
    kill_after(DartsSearchStudy(**settings), killed, 1)
    resumed = run_study(DartsSearchStudy(**settings), killed, resume=True)
    assert resumed.results["genotype"] == whole.results["genotype"]
    final = [torch.load(checkpoint_path(f, 2), weights_only=True)
             for f in (tmp_path / "whole", killed)]
    assert final[0]["ranks"] == 2 and len(final[0]["rank_optimizers"]) == 2
    assert all(torch.equal(final[0]["model"][k], final[1]["model"][k]) for k in final[0]["model"])
    with pytest.raises(SettingsError, match="ranks"):
        run_study(DartsSearchStudy(**{**settings, "ranks": 1}), killed, resume=True)
