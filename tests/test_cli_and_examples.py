"""The README's main job, the `nord` command and the examples, at small settings."""

import json
import runpy
import sys
from pathlib import Path

import pytest

from nord.cli import main
from tests.fashion_mnist_data import needs_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]




def demo(tmp_path, name, *extra):
    args = ["demo", "--budget", "4", "--population", "2", "--sample", "2", "--channels", "8",
            "--percentage", "0.05", "--seed", "3", "--quiet", "--out", str(tmp_path / name)]
    assert main(args + list(extra)) == 0
    return json.loads((tmp_path / name / "summary.json").read_text())


def fitness_by_id(folder):
    from nord.execution.store import RunStore
    with RunStore(folder / "run.sqlite", create=False) as store:
        return [(r.id, r.architecture, r.status, r.fitness, r.metrics.get("loss"))
                for r in store.records()]


@needs_fashion_mnist
@pytest.mark.slow
def test_demo_searches_real_fashion_mnist_reproducibly(tmp_path, capsys):
    first = demo(tmp_path, "a", "--workers", "1")
    out = capsys.readouterr().out
    assert "best architecture:" in out and "nord train-final" in out
    assert first["best_accuracy"] > 0.25  # chance is 0.1
    assert set(first["searches"]) == {"regularized evolution", "random search (N=1)"}
    for name in ("figure_6_4.png", "figure_6_5.png", "evolution/summary.md",
                 "random/summary.md", "evolution/best_so_far.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    second = demo(tmp_path, "b", "--workers", "2", "--no-baseline")
    # synchronous cycles: the same search whatever the number of workers
    assert fitness_by_id(tmp_path / "a" / "evolution") == fitness_by_id(tmp_path / "b" / "evolution")
    assert second["best_accuracy"] == first["best_accuracy"]


def test_demo_reports_missing_data_clearly(tmp_path, capsys):
    code = main(["demo", "--data-root", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err and "--data-root" in err
    assert not (tmp_path / "out").exists()


def test_describe_prints_shapes_and_hash(tmp_path, capsys):
    from nord.demo import listing_3_1_descriptor
    path = tmp_path / "d.json"
    descriptor = listing_3_1_descriptor()
    path.write_text(descriptor.to_json())
    assert main(["describe", str(path), "--input-shape", "32", "32", "--channels", "3",
                 "--dot", str(tmp_path / "d.dot")]) == 0
    out = capsys.readouterr().out
    assert "pool2   MaxPool2d  10x24x24, 10x13x13  10x3x3" in out
    assert f"canonical hash: {descriptor.canonical_hash()}" in out
    assert (tmp_path / "d.dot").read_text().startswith("digraph")


def test_describe_reports_an_invalid_descriptor(tmp_path, capsys):
    from nord.neural_nets import NeuralDescriptor
    d = NeuralDescriptor()
    d.add_layer("input", None, "in")
    d.add_layer("output", None, "out")  # never connected
    path = tmp_path / "d.json"
    path.write_text(d.to_json())
    assert main(["describe", str(path)]) == 1
    assert "no path leads from the input layer 'in' to the output layer 'out'" in capsys.readouterr().err


def test_listing_3_1_example_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sys, "argv", ["listing_3_1_descriptor.py", "--png", str(tmp_path / "g.png")])
    runpy.run_path(str(ROOT / "examples" / "listing_3_1_descriptor.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "output for a batch of 4 images: (4, 10)" in out
    assert "total parameters: 3,220" in out
    assert (tmp_path / "g.png").stat().st_size > 0


def run_example(monkeypatch, name, *argv):
    monkeypatch.setattr(sys, "argv", [name, *argv])
    return runpy.run_path(str(ROOT / "examples" / name), run_name="not_main")["main"](list(argv))


@needs_fashion_mnist
def test_listing_3_2_example_trains_on_fashion_mnist(monkeypatch, capsys):
    loss, metrics, total_time = run_example(
        monkeypatch, "listing_3_2_local_evaluator.py",
        "--dataset", "fashion-mnist", "--epochs", "1", "--percentage", "0.05")
    assert metrics["accuracy"] > 0.4  # chance is 0.1
    assert loss > 0 and total_time > 0
    out = capsys.readouterr().out
    assert "Test metrics:" in out and "accuracy" in out


def shared_cifar10_archive():
    return ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"


@pytest.mark.skipif(not shared_cifar10_archive().exists(),
                    reason="../shared/data/cifar10-jpeg not present")
def test_listing_3_2_example_runs_on_cifar10_as_in_the_thesis(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("NORD_DATA", str(ROOT.parent / "shared" / "data"))
    loss, metrics, _ = run_example(
        monkeypatch, "listing_3_2_local_evaluator.py",
        "--epochs", "1", "--percentage", "0.02")
    assert 0.0 <= metrics["accuracy"] <= 1.0 and loss > 0
    assert metrics["accuracy"] > 0.15  # chance is 0.1; 1,000 images, one epoch


@needs_fashion_mnist
def test_listing_3_5_example_registers_and_trains_a_custom_dataset(monkeypatch, capsys):
    loss, metrics, _ = run_example(
        monkeypatch, "listing_3_5_custom_dataset.py", "--epochs", "1", "--percentage", "0.05")
    assert metrics["accuracy"] > 0.4
    assert "test accuracy" in capsys.readouterr().out


@needs_fashion_mnist
@pytest.mark.slow
def test_distributed_evolution_example_with_a_process_pool(monkeypatch, tmp_path):
    summary = run_example(monkeypatch, "distributed_evolution.py", "--budget", "4",
                          "--population", "2", "--sample", "2", "--percentage", "0.02",
                          "--workers", "2", "--synchronous", "--out", str(tmp_path / "pool"))
    assert summary.evaluations == 4 and summary.best.fitness > 0.1


@needs_fashion_mnist
@pytest.mark.slow
def test_distributed_evolution_example_under_torchrun(tmp_path):
    import subprocess
    out = tmp_path / "env"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(ROOT / "examples" / "distributed_evolution.py"), "--environment", "--budget", "3",
         "--population", "2", "--sample", "2", "--percentage", "0.02", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3/3 evaluations" in done.stdout
    from nord.execution.store import RunStore
    with RunStore(out / "run.sqlite", create=False) as store:
        assert store.count("ok") == 3
