"""The README runs as written: its ```python blocks, in order, in one namespace, in a
fresh interpreter (``tests/readme_runner.py``) with the shared data present.

A block that needs what CI lacks says so on its first line (``# needs: cuda``); it
is skipped where that is missing, and this test names it in a warning.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.fashion_mnist_data import needs_fashion_mnist
from tests.readme_runner import REPORT, Block, MarkerError, python_blocks

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUNNER = ROOT / "tests" / "readme_runner.py"
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
TABLES = [DATA / "nasbench201" / "nb201_tables.csv",
          DATA / "nasbench101" / "nb101_30k_subset.csv.gz"]


def test_blocks_are_found_in_order_with_their_lines_and_needs():
    text = ("# Title\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n\n"
            "```python\n# needs: cuda\ny = x + 1\n```\n")
    assert python_blocks(text) == [Block(1, 4, "x = 1\n", ()),
                                   Block(2, 12, "# needs: cuda\ny = x + 1\n", ("cuda",))]


@pytest.mark.parametrize("first_line, message", [
    ("# needs: a cluster", "names a cluster; a block may need cuda"),
    ("# needs:", "names nothing; a block may need cuda")])
def test_a_need_the_runner_cannot_check_is_refused(first_line, message):
    with pytest.raises(MarkerError, match=f"^block 1 \\(README.md line 2\\): '# needs:' "
                                          f"{message}$"):
        python_blocks(f"```python\n{first_line}\nx = 1\n```\n")


def test_the_readme_has_its_python_blocks_and_no_unknown_needs():
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 4  # descriptor, training, benchmarks, distributed
    assert [b for b in blocks if b.needs] == []  # all of them run in CI


def report(done):
    """The runner's report lines, without what the blocks printed."""
    return [line[len(REPORT):] for line in done.stdout.splitlines() if line.startswith(REPORT)]


def run_readme(tmp_path, readme=README):
    env = dict(os.environ, NORD_DATA=str(DATA),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, str(RUNNER), str(readme)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_failing_block_is_named_with_its_traceback(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```python\nx = 1\n```\n\ntext\n\n```python\ny = x + undefined\n```\n")
    done = run_readme(tmp_path, readme)
    assert done.returncode == 1
    first, second = report(done)
    assert first.startswith("block 1 (README.md line 2): ok in ")
    assert second == "block 2 (README.md line 8): failed"
    assert f'File "{readme}", line 8' in done.stderr  # the README's own line
    assert "NameError: name 'undefined' is not defined" in done.stderr


@pytest.mark.slow
@needs_fashion_mnist
@pytest.mark.skipif(not all(t.exists() for t in TABLES),
                    reason=f"the benchmark tables are not under {DATA}")
def test_every_python_block_of_the_readme_runs_as_printed(tmp_path):
    done = run_readme(tmp_path)
    lines = report(done)
    assert done.returncode == 0, ("a README block failed:\n" + "\n".join(lines) + "\n"
                                  + done.stderr[-6000:])
    count = len(python_blocks(README.read_text(encoding="utf-8")))
    assert len(lines) == count, done.stdout
    assert all(": ok in " in line or ": skipped " in line for line in lines), lines
    skipped = [line for line in lines if ": skipped " in line]
    if skipped:
        warnings.warn("README blocks not run here: " + "; ".join(skipped))
    # what the benchmark block prints is what its comment says (the shipped tables)
    assert "0.9300881624221802 2030.7239990234375" in done.stdout
    assert "90.7693 90.5133" in done.stdout


def test_a_block_whose_need_is_missing_is_skipped_and_reported(monkeypatch, capsys):
    import tests.readme_runner as runner
    monkeypatch.setitem(runner.NEEDS, "cuda", lambda: False)
    blocks = python_blocks("```python\nx = 1\n```\n```python\n# needs: cuda\nx = 2\n```\n"
                           "```python\nprint('x is', x)\n```\n")
    assert runner.run_blocks(blocks, README) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"{REPORT}block 2 (README.md line 5): skipped (needs: cuda)"
    assert out[2] == "x is 1"  # the skipped block did not run
