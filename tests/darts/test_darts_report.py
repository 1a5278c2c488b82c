"""nord darts analyse: tables 8.2-8.3 and the GED figures from groups of searches."""

import json
from pathlib import Path

import pytest

from nord.cli import main
from nord.darts import study as darts_study
from nord.darts.report import analyse_groups, load_search
from nord.darts.study import DartsSearchStudy
from nord.analysis.hypothesis import ks_two_sample
from nord.errors import SerializationError, StudyError
from nord.studies.base import run_study
from tests.darts.darts_data import TINY, synthetic
from tests.studies.study_helpers import kill_after


@pytest.fixture(autouse=True)
def _synthetic_data(monkeypatch):
    monkeypatch.setattr(darts_study, "load_search_data", lambda settings: synthetic())


def search(folder, seed, epochs=2):
    run_study(DartsSearchStudy(**TINY, epochs=epochs, seed=seed), folder)
    return folder


@pytest.mark.slow
def test_groups_of_searches_give_tables_8_2_and_8_3_and_the_distances(tmp_path, capsys):
    one = [search(tmp_path / f"one{s}", s) for s in (0, 1)]
    two = [search(tmp_path / f"two{s}", s) for s in (2, 3)]
    loaded = load_search(one[0])
    assert len(loaded["valid"]) == 2 and loaded["seconds"] > 0
    result = analyse_groups({"1 rank": one, "2 ranks": two}, tmp_path / "analysis")
    names = sorted(p.name for p in result["files"])
    assert names == sorted(["table_8_2.csv", "table_8_2.md", "table_8_3.csv", "table_8_3.md",
                            "ged_normal.csv", "ged_normal.png", "ged_reduce.csv",
                            "ged_reduce.png", "train_curves.png", "valid_curves.png"])
    assert [row[:2] for row in result["table_8_2"]] == [["1 rank", 2], ["2 ranks", 2]]
    assert result["table_8_2"][0][-1] == "1.00"
    assert [row[0] for row in result["table_8_3"]] == ["1 rank / 2 ranks"]
    assert 0 <= result["kruskal_wallis"]["pvalue"] <= 1
    reduce = result["distances"]["reduce"]
    assert [len(reduce[k]) for k in ("1 rank", "2 ranks", "1 rank / 2 ranks")] == [1, 1, 4]
    assert main(["darts", "analyse", "--group", f"a={one[0]},{one[1]}", "--group",
                 f"b={two[0]}", "--out", str(tmp_path / "cli")]) == 0
    assert "Table 8.2" in capsys.readouterr().out
    assert "every search epoch's validation accuracy" in result["compared"]

    # with final trainings (as nord darts train writes them), table 8.3 compares
    # their validation curves from --ks-from on, and Figures 8.6/8.7 appear
    curves = {one[0]: [0.70, 0.80, 0.82, 0.83], one[1]: [0.60, 0.81, 0.84, 0.85],
              two[0]: [0.50, 0.70, 0.72, 0.74], two[1]: [0.55, 0.71, 0.73, 0.70]}
    for folder, valid in curves.items():
        write_final(folder, valid)
    result = analyse_groups({"1 rank": one, "2 ranks": two}, tmp_path / "finals", ks_from=2)
    expected = ks_two_sample(curves[one[0]][1:] + curves[one[1]][1:],
                             curves[two[0]][1:] + curves[two[1]][1:]).pvalue
    assert result["table_8_3"][0][1] == f"{expected:.4g}"
    assert result["compared"] == "the final trainings' validation accuracy, epochs 2 to the last"
    assert {"final_train_curves.png", "final_valid_curves.png"} <= {p.name for p in
                                                                    result["files"]}
    assert "epochs 2 to the last" in (tmp_path / "finals" / "table_8_3.md").read_text()
    result = analyse_groups({"1 rank": one, "2 ranks": two}, tmp_path / "short")
    assert "epochs 4 to the last (ks_from 10 is past the 4 epochs trained)" in result["compared"]
    (Path(one[0]) / "final" / "final.json").write_text('{"curve": [{"epoch": "<b>"}]}')
    with pytest.raises(SerializationError, match="its curve is not a list of epochs"):
        load_search(one[0])


def write_final(folder, valid):
    final = Path(folder) / "final"
    final.mkdir()
    rows = [{"epoch": e + 1, "train_loss": 1.0, "train_accuracy": v + 0.05,
             "validation_loss": 1.0, "validation_accuracy": v} for e, v in enumerate(valid)]
    (final / "final.json").write_text(json.dumps({"curve": rows}))


def test_unfinished_or_foreign_folders_are_refused(tmp_path):
    folder = tmp_path / "killed"
    kill_after(DartsSearchStudy(**TINY, epochs=3, seed=0), folder, 1)
    with pytest.raises(StudyError, match="holds 1 of its 3 epochs; finish it with nord darts "
                                         "search"):
        load_search(folder)
    with pytest.raises(StudyError, match="not a study folder"):
        load_search(tmp_path)
    assert main(["darts", "analyse", "--group", "broken", "--out", str(tmp_path / "x")]) == 2
