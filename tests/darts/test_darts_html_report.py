"""The HTML report of a DARTS search folder shows its genotype, curves and table."""

from nord.analysis.html_report import load_run, render_html
from nord.darts import study as darts_study
from nord.darts.study import DartsSearchStudy
from nord.studies.base import run_study
from tests.analysis.html_page import Page
from tests.darts.darts_data import TINY, synthetic


def test_a_darts_search_folder_shows_its_files_and_epochs(tmp_path, monkeypatch):
    monkeypatch.setattr(darts_study, "load_search_data", lambda settings: synthetic())
    run_study(DartsSearchStudy(**TINY, epochs=2, seed=0), tmp_path)
    text = render_html([load_run(tmp_path)])
    for name in ("darts_search.md", "genotype.png", "search_curves.csv", "search_curves.png"):
        assert f"<figcaption>{name}</figcaption>" in text
    page = Page(text)
    assert [row[1] for row in page.rows["evaluations-0"]] == ["ok", "ok"]  # one per epoch
    assert "<h2>study darts-search: " in text
