"""The HTML report's time and size against the number of evaluations in a store.

Stores of 1,000 to 25,000 NAS-Bench-201 evaluations (random cells, one in 500
failed) are written straight into ``run.sqlite``; each is rendered with
``write_html_report`` after a warm-up (imports, fonts), best of 3. Printed:
seconds, megabytes, and the ratio of each to the size before (a ratio near the
growth in evaluations is linear). The issue-17 bound: 25,000 evaluations in
under 5 s and 10 MB (``tests/analysis/test_html_report.py`` checks it).

Run: python benchmarks/html_report_scaling.py [--sizes 1000 5000 25000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from nord.analysis.html_report import write_html_report
from nord.design.spaces import get_space
from nord.execution.store import RunStore


def fill(folder: Path, count: int) -> Path:
    RunStore(folder / "run.sqlite", meta={"settings": {"space": "nasbench201",
                                                       "strategy": "random"}}).close()
    cells, rng = get_space("nasbench201"), np.random.default_rng(0)
    rows = []
    for i in range(count):
        failed = i % 500 == 499
        arch = cells.sample(rng)
        rows.append((i, json.dumps(arch), arch, "failed" if failed else "ok",
                     0.0 if failed else float(rng.uniform(10, 95)),
                     "RuntimeError: out of memory" if failed else None,
                     float(i), float(i), i + 0.5, 12.5, "host:1", i + 1, 1))
    db = sqlite3.connect(folder / "run.sqlite", isolation_level=None)
    db.execute("BEGIN")
    db.executemany("INSERT INTO evaluations (id, architecture, hash, status, fitness, error, "
                   "asked_at, started_at, finished_at, cost, worker, result_seq, told) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.close()
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 25000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = None
        for size in args.sizes:
            folder = fill(Path(tmp) / str(size), size)
            write_html_report([folder], folder / "warm-up.html", drawn=1)
            seconds = []
            for _ in range(3):
                start = time.perf_counter()
                out = write_html_report([folder], folder / "report.html")
                seconds.append(time.perf_counter() - start)
            best, megabytes = min(seconds), out.stat().st_size / 1e6
            ratios = ("" if before is None else
                      f"  (x{best / before[0]:.2f} time, x{megabytes / before[1]:.2f} size "
                      f"for x{size / before[2]:.1f} evaluations)")
            print(f"{size:>6} evaluations: {best:6.2f} s, {megabytes:6.2f} MB{ratios}")
            before = (best, megabytes, size)


if __name__ == "__main__":
    main()
