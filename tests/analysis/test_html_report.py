"""`nord report --html`: one self-contained page, escaped, read-only, quick for 25,000 rows."""

from __future__ import annotations

import hashlib
import time

import pytest

from nord.analysis.html_report import load_run, render_html, write_html_report
from nord.cli import main
from nord.errors import RunNotFoundError
from nord.execution.store import RunStore
from tests.analysis.html_page import Page, fill_store
from tests.execution.logger_fakes import DATA
from tests.analysis.test_report import store_with

HOSTILE = "<script>alert('x')</script>"


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_page_has_one_row_per_evaluation_and_the_stores_best(tmp_path):
    rows = [("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "ok", 0.6, 3.0),
            ("b", "invalid", 0.0, None), ("c", "ok", 0.8, 1.5), ("c", "cached", 0.8, None)]
    with store_with(tmp_path, rows) as store:
        best = store.best()
    page = Page(render_html([load_run(tmp_path)]))
    table = page.rows["evaluations-0"]
    assert [row[:4] for row in table] == [["0", "ok", "0.6", "3"], ["1", "invalid", "0", "-"],
                                          ["2", "ok", "0.8", "1.5"], ["3", "cached", "0.8", "-"]]
    assert table[0][6] == rows[0][0]  # the space's description of the cell
    assert [float(value) for value in page.best] == [best.fitness] == [0.8]
    assert page.scripts == 1  # the sorting script, and no polling in a static report
    assert all(src.startswith("data:image/png;base64,") for src in page.images)


def test_text_from_the_store_is_escaped(tmp_path):
    store = store_with(tmp_path, [(HOSTILE, "ok", 0.5, None)])
    store.record_ask(1, HOSTILE, None, "k", {}, 0.0)
    store.record_result(1, "failed", 0.0, error=f"Traceback\nValueError: {HOSTILE}",
                        worker=HOSTILE)
    store.record_ask(2, "c", None, "c", {}, 0.0)
    store.record_result(2, "ok", 0.9, metrics={HOSTILE: HOSTILE, "curve": [1.0, 0.5]})
    store.set_meta(note=HOSTILE)
    store.close()
    text = render_html([load_run(tmp_path)])
    assert "alert" in text and "<script>alert" not in text
    assert text.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;") >= 6
    assert "<td>[2 values]</td>" in text  # the best's metrics: a list by its length
    assert text.count("<script>") == 1
    page = Page(text)
    assert page.rows["evaluations-0"][1][:2] == ["1", "failed"]
    assert page.rows["evaluations-0"][1][5] == HOSTILE  # shown as text, not run


def test_several_runs_are_compared_and_the_stores_are_not_written(tmp_path):
    first = fill_store(tmp_path / "a", 30)
    second = fill_store(tmp_path / "b", 12, failing_every=4)
    before = [digest(run / "run.sqlite") for run in (first, second)]
    out = write_html_report([first, second], tmp_path / "both.html")
    text = out.read_text()
    page = Page(text)
    assert [len(page.rows[f"evaluations-{i}"]) for i in (0, 1)] == [30, 12]
    assert [float(v) for v in page.best] == [2.9, 1.0]
    assert "<h2>Comparison</h2>" in text and f"<td>{tmp_path / 'b'}</td>" in text
    assert text.count('<details class="failure">') == 3
    assert "RuntimeError: evaluation 11" in text
    assert [digest(run / "run.sqlite") for run in (first, second)] == before


def test_a_study_folders_tables_and_figures_are_embedded(tmp_path):
    from nord.analysis.report import plot_fitness_ecdf
    fill_store(tmp_path, 3)
    (tmp_path / "table_8_2.md").write_text(f"# Table 8.2\n\n| group | best |\n|---|---|\n"
                                           f"| {HOSTILE} | 0.93 |\n")
    (tmp_path / "curves.csv").write_text("epoch,valid\n0,0.5\n1,0.7\n")
    plot_fitness_ecdf([0.1, 0.2], tmp_path / "curves.png")
    (tmp_path / "fake.png").write_text("<svg onload=alert(1)>")
    (tmp_path / "summary.md").write_text("nord report's own summary")
    secret = tmp_path.parent / f"{tmp_path.name}-secret.md"
    secret.write_text("| a secret outside the run folder |")
    (tmp_path / "linked.md").symlink_to(secret)
    (tmp_path / "huge.csv").write_text("x\n" * 1_100_000)  # over 2 MB
    text = render_html([load_run(tmp_path)])
    assert "<figcaption>table_8_2.md</figcaption>" in text
    assert f"<td>{HOSTILE.replace('<', '&lt;').replace('>', '&gt;')}".replace(
        "'", "&#x27;") in text
    assert "<td>0.93</td>" in text and "<tr><td>1</td><td>0.7</td></tr>" in text
    assert "<figcaption>curves.png</figcaption>" in text
    assert "fake.png" not in text and "nord report's own summary" not in text
    assert "a secret" not in text and "linked.md" not in text
    assert "Too large to embed (open them in the run folder): huge.csv" in text


NB101 = DATA / "nasbench101" / "nb101_30k_subset.csv.gz"


@pytest.mark.skipif(not NB101.exists(), reason="NAS-Bench-101 table not present")
def test_a_real_study_shows_its_trials_tables_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))
    out = tmp_path / "study"
    assert main(["study", "nasbench101-epochs", "--samples", "500", "--resamples", "10",
                 "--quiet", "--out", str(out)]) == 0
    text = render_html([load_run(out)])
    page = Page(text)
    assert [row[6] for row in page.rows["evaluations-0"]][:2] == [
        "group=4, rounded=False", "group=4, rounded=True"]
    assert len(page.rows["evaluations-0"]) == 6
    assert "<h3>Best trials (the 5 fittest)</h3>" in text
    for name in ("nasbench101_epochs.md", "nasbench101_accuracies.png",
                 "nasbench101_bootstrap.png"):
        assert f"<figcaption>{name}</figcaption>" in text
    assert len(page.images) == 2 + 2  # its two progress plots and the study's two figures


def test_a_folder_without_a_store_is_not_a_run(tmp_path, capsys):
    with pytest.raises(RunNotFoundError, match="is not a run folder"):
        load_run(tmp_path)
    assert main(["report", str(tmp_path), "--html"]) == 1
    assert "holds no run.sqlite" in capsys.readouterr().err
    assert not (tmp_path / "run.sqlite").exists()


def test_nord_report_html_writes_the_page_in_the_run_folder(tmp_path, capsys):
    fill_store(tmp_path / "a", 5)
    fill_store(tmp_path / "b", 5)
    assert main(["report", str(tmp_path / "a"), "--html"]) == 0
    assert "self-contained" in capsys.readouterr().out
    assert len(Page((tmp_path / "a" / "report.html").read_text()).rows["evaluations-0"]) == 5
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--html"]) == 2
    assert "--html FILE" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--html",
                 str(tmp_path / "c.html"), "--drawn", "1"]) == 0
    tables = Page((tmp_path / "c.html").read_text()).rows
    assert sorted(tables) == ["evaluations-0", "evaluations-1"]


def test_a_store_being_written_shows_what_is_committed(tmp_path):
    fill_store(tmp_path, 4)
    with RunStore(tmp_path / "run.sqlite", create=False) as writer:
        writer.db.execute("BEGIN IMMEDIATE")  # a search in the middle of a commit
        writer.db.execute("UPDATE evaluations SET fitness = 99 WHERE id = 0")
        page = Page(render_html([load_run(tmp_path)]))
        writer.db.execute("ROLLBACK")
    assert [float(v) for v in page.best] == [0.3]
    assert len(page.rows["evaluations-0"]) == 4


@pytest.mark.slow
def test_a_25000_evaluation_store_renders_in_under_5_s_and_10_mb(tmp_path):
    fill_store(tmp_path, 25_000, failing_every=500)
    write_html_report([tmp_path], tmp_path / "warm-up.html", drawn=1)  # imports, fonts
    start = time.perf_counter()
    out = write_html_report([tmp_path], tmp_path / "report.html")
    seconds = time.perf_counter() - start
    size = out.stat().st_size
    print(f"25,000 evaluations: {seconds:.2f} s, {size / 1e6:.2f} MB")
    assert seconds < 5.0
    assert size < 10_000_000
    page = Page(out.read_text())
    assert len(page.rows["evaluations-0"]) == 25_000
    assert [float(v) for v in page.best] == [2499.8]  # #24999 failed
