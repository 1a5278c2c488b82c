"""The Markdown report of a run store."""

from nord.analysis.report import Report
from nord.execution.store import RunStore


def store_with(tmp_path, rows, space="nasbench201"):
    store = RunStore(tmp_path / "run.sqlite")
    store.set_meta(settings={"space": space, "strategy": "evolution", "fitness": None})
    for i, (arch, status, fitness, cost) in enumerate(rows):
        store.record_ask(i, arch, None, arch, {}, 0.0)
        store.record_result(i, status, fitness, cost=cost,
                            cached_from=0 if status == "cached" else None)
    return store


def test_repeats_and_table_times_are_reported(tmp_path):
    rows = [("a", "ok", 90.0, None), ("a", "cached", 90.0, None), ("b", "ok", 91.0, None),
            ("a", "cached", 90.0, None)]
    with store_with(tmp_path, rows) as store:
        text = Report(store).markdown()
    assert "| share of the budget spent on repeats (cached) | 50% |" in text
    assert "| simulated training time | - (the table holds no training times) |" in text
    assert "| fitness |" not in text  # no empty setting rows
    assert "Evaluation #2 (result 3 of 4 to arrive), fitness **91**." in text


def test_a_table_with_times_adds_them_up(tmp_path):
    rows = [("a", "ok", 0.9, 100.0), ("b", "ok", 0.8, 50.5)]
    with store_with(tmp_path, rows, space="nasbench101") as store:
        text = Report(store).markdown()
    assert "| simulated training time (the table's) | 150 s |" in text
    assert "repeats" not in text
