"""First-order DARTS search: Algorithm 1's steps, exact resume, a killed search resumed."""

import io
import json

import pytest
import torch

from nord.cli import main
from nord.darts.search import DartsSearch, DartsSettings
from nord.darts.study import DartsSearchStudy, checkpoint_path
from nord.errors import DartsError, SettingsError
from nord.studies.base import run_study
from tests.darts.darts_data import TINY, synthetic
from tests.fashion_mnist_data import needs_fashion_mnist
from tests.studies.study_helpers import kill_after


def saved_and_loaded(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_step_updates_only_its_own_level():
    search = DartsSearch(DartsSettings(**TINY, epochs=2), synthetic())
    alphas = [a.detach().clone() for a in search.model.arch_parameters()]
    weights = [w.detach().clone() for w in search.model.weights()]
    data = search.data
    search.weight_step(data.train_x[:8], data.train_y[:8])
    assert all(torch.equal(a, b) for a, b in zip(alphas, search.model.arch_parameters()))
    assert any(not torch.equal(w, v) for w, v in zip(weights, search.model.weights()))
    weights = [w.detach().clone() for w in search.model.weights()]
    search.architecture_step(data.valid_x[:8], data.valid_y[:8])
    assert all(torch.equal(w, v) for w, v in zip(weights, search.model.weights()))
    assert any(not torch.equal(a, b) for a, b in zip(alphas, search.model.arch_parameters()))


def test_an_epoch_from_a_checkpoint_is_the_uninterrupted_epoch():
    settings = DartsSettings(**TINY, epochs=3, seed=4)
    straight = DartsSearch(settings, synthetic())
    first = straight.run_epoch()
    assert first["batches"] == 4 and first["lr"] == 0.025
    state = saved_and_loaded(straight.state_dict())
    second = straight.run_epoch()
    resumed = DartsSearch(settings, synthetic())
    resumed.load_state_dict(state)
    again = resumed.run_epoch()
    assert again["train_loss"] == second["train_loss"]
    assert again["alpha_normal"] == second["alpha_normal"]
    assert again["genotype"] == second["genotype"] and again["lr"] < first["lr"]
    other = DartsSearch(DartsSettings(**TINY, epochs=3, seed=5), synthetic())
    with pytest.raises(SettingsError, match=r"seed: 4 -> 5"):
        other.load_state_dict(state)


def test_warm_up_epochs_train_the_weights_only_then_the_search_proper_begins():
    search = DartsSearch(DartsSettings(**TINY, epochs=3, warmup_epochs=2), synthetic())
    alphas = [a.detach().clone() for a in search.model.arch_parameters()]
    weights = [w.detach().clone() for w in search.model.weights()]
    for _ in range(2):
        warm = search.run_epoch()
        assert all(torch.equal(a, b) for a, b in zip(alphas, search.model.arch_parameters()))
        assert 0 <= warm["valid_accuracy"] <= 1 and warm["valid_loss"] > 0
    assert any(not torch.equal(w, v) for w, v in zip(weights, search.model.weights()))
    search.run_epoch()
    assert any(not torch.equal(a, b) for a, b in zip(alphas, search.model.arch_parameters()))
    with pytest.raises(SettingsError, match=r"warmup_epochs must be a whole number in 0..2"):
        DartsSettings(epochs=3, warmup_epochs=3)


def test_bad_settings_are_refused():
    with pytest.raises(SettingsError, match="share"):
        DartsSettings(share=0)
    with pytest.raises(SettingsError, match="lr_min"):
        DartsSettings(lr_min=1.0)
    with pytest.raises(SettingsError, match="unknown DARTS settings"):
        DartsSettings.from_dict({"chanels": 4})
    search = DartsSearch(DartsSettings(**TINY, epochs=1), synthetic())
    search.run_epoch()
    with pytest.raises(DartsError, match="has run its 1 epochs"):
        search.run_epoch()
    with pytest.raises(DartsError, match="not a DARTS search checkpoint"):
        search.load_state_dict({"format": 9})


def fashion(**changes):
    return dict(dataset="fashion-mnist", share=0.004, epochs=3, **TINY, **changes)


@needs_fashion_mnist
@pytest.mark.slow
def test_a_killed_search_resumes_with_nothing_lost(tmp_path, capsys):
    whole = tmp_path / "whole"
    assert main(["darts", "search", "--share", "0.004", "--epochs", "3", "--channels", "2",
                 "--cells", "2", "--steps", "1", "--multiplier", "1", "--batch-size", "8",
                 "--out", str(whole), "--quiet"]) == 0
    assert "DARTS search, 3 epochs" in capsys.readouterr().out
    killed = tmp_path / "killed"
    kill_after(DartsSearchStudy(**fashion()), killed, 1)
    assert checkpoint_path(killed, 0).is_file() and not checkpoint_path(killed, 1).exists()
    outcome = run_study(DartsSearchStudy(**fashion()), killed, resume=True)
    assert outcome.results["epochs"] == 3
    for name in ("genotype.json", "genotypes.json"):
        assert (killed / name).read_text() == (whole / name).read_text(), name

    def curves(folder):  # every column but the seconds
        return [line.rsplit(",", 1)[0] for line in
                (folder / "search_curves.csv").read_text().splitlines()]
    assert curves(killed) == curves(whole) and len(curves(whole)) == 4
    final = [torch.load(checkpoint_path(folder, 2), weights_only=True)["model"]
             for folder in (whole, killed)]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])
    assert json.loads((killed / "genotype.json").read_text())["normal_concat"] == [2]
    assert (killed / "search_curves.png").stat().st_size > 0
    with pytest.raises(SettingsError):
        run_study(DartsSearchStudy(**fashion(seed=3)), killed, resume=True)


@needs_fashion_mnist
@pytest.mark.slow
def test_nord_darts_train_trains_and_exports_the_searched_genotype(tmp_path, capsys):
    import numpy as np

    from nord.darts.genotype import random_genotype
    folder = tmp_path / "search"
    folder.mkdir()
    genotype = random_genotype(np.random.default_rng(0), steps=2)
    (folder / "genotype.json").write_text(json.dumps(genotype.to_json()))
    assert main(["darts", "train", str(folder), "--channels", "4", "--cells", "3",
                 "--percentage", "0.01", "--batch-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and (folder / "final" / "final.json").is_file()
    final = json.loads((folder / "final" / "final.json").read_text())
    assert final["settings"]["optimizer"] == "sgd" and final["parameters"] > 0
    assert final["settings"]["validation_fraction"] == 0.1  # table 8.1's held-out share
    assert [row["epoch"] for row in final["curve"]] == [1]
    assert 0 <= final["curve"][0]["validation_accuracy"] <= 1
    rows = (folder / "final" / "curves.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_loss,train_accuracy,validation_loss,validation_accuracy"
    assert len(rows) == 2 and (folder / "final" / "curves.png").stat().st_size > 0
    assert (folder / "final" / "model" / "descriptor.json").is_file()
    assert main(["darts", "train", str(tmp_path / "nothing")]) == 1
    assert "nothing is missing: give a nord darts search folder" in capsys.readouterr().err
