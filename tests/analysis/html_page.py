"""Reading the HTML report back in tests: its evaluation rows, its best fitness, its scripts."""

from __future__ import annotations

import json
import sqlite3
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List

import numpy as np

from nord.design.spaces import get_space
from nord.execution.store import RunStore


class Page(HTMLParser):
    """The parts of a report page the tests check."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: Dict[str, List[List[str]]] = {}  # table id -> rows of cell texts
        self.best: List[str] = []                    # data-value of each #best-fitness
        self.scripts = 0
        self.images: List[str] = []
        self._table = None
        self._in_body = False
        self._row: List[str] = []
        self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (attrs.get("id") or "").startswith("evaluations-"):
            self._table = attrs["id"]
            self.rows[self._table] = []
        elif tag == "tbody" and self._table:
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._in_body:
            self._cell = ""
        elif tag == "strong" and attrs.get("id") == "best-fitness":
            self.best.append(attrs.get("data-value"))
        elif tag == "script":
            self.scripts += 1
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._in_body:
            self.rows[self._table].append(self._row)
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None


def fill_store(folder: Path, count: int, space: str = "nasbench201", failing_every: int = 0,
               start: int = 0) -> Path:
    """A search store in ``folder`` with ``count`` finished evaluations (fitness ``i / 10``
    for the i-th) written in one transaction: quick for large stores."""
    path = folder / "run.sqlite"
    if not path.exists():
        RunStore(path, meta={"settings": {"space": space, "strategy": "random",
                                          "budget": count}}).close()
    cells = get_space("nasbench201")
    rng = np.random.default_rng(start)
    rows = []
    for i in range(start, start + count):
        failed = failing_every and i % failing_every == failing_every - 1
        arch = cells.sample(rng)
        rows.append((i, json.dumps(arch), arch, "failed" if failed else "ok",
                     0.0 if failed else i / 10, f"RuntimeError: evaluation {i}" if failed else None,
                     float(i), float(i), i + 0.5, 12.5, "host:1", i + 1, 1))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.executemany("INSERT INTO evaluations (id, architecture, hash, status, fitness, error, "
                   "asked_at, started_at, finished_at, cost, worker, result_seq, told) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.close()
    return folder
