"""examples/darts_data_parallel.py runs end to end with tiny settings."""

import runpy
import sys
from pathlib import Path

import pytest

from tests.fashion_mnist_data import needs_fashion_mnist

ROOT = Path(__file__).resolve().parents[2]


@needs_fashion_mnist
@pytest.mark.slow
def test_the_data_parallel_darts_example(monkeypatch, tmp_path, capsys):
    argv = ["--epochs", "1", "--share", "0.004", "--channels", "2", "--cells", "2",
            "--steps", "1", "--batch-size", "8", "--train-share", "0.01",
            "--train-channels", "2", "--train-cells", "2", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", ["darts_data_parallel.py", *argv])
    main = runpy.run_path(str(ROOT / "examples" / "darts_data_parallel.py"),
                          run_name="not_main")["main"]
    summary = main(argv)
    assert [row[0] for row in summary["table_8_2"]] == ["1 rank(s)", "2 rank(s)"]
    assert set(summary["test_accuracy"]) == {"1", "2"}
    assert all(0 <= a <= 1 for a in summary["test_accuracy"].values())
    assert summary["distance"]["normal"] >= 0
    out = capsys.readouterr().out
    assert "Table 8.2" in out and "graph edit distance" in out
    assert (tmp_path / "ranks-2" / "genotype.json").is_file()
    assert (tmp_path / "ranks-1" / "final" / "final.json").is_file()
