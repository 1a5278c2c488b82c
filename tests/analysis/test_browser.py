"""The HTML report and the live dashboard in a real browser: headless Chromium.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped
without it. Chromium runs the page's scripts, so ``--dump-dom`` gives the page
as a reader sees it, and a long enough ``--virtual-time-budget`` lets the
dashboard's poll notice new results and reload the page by itself.
"""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from nord.analysis.dashboard import DashboardServer
from nord.analysis.html_report import write_html_report
from nord.cli import main
from nord.execution.store import RunStore
from tests.analysis.html_page import Page
from tests.execution.logger_fakes import DATA, NB201

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="apt-get install -y chromium"),
              pytest.mark.skipif(not NB201.exists(), reason="NAS-Bench-201 table not present")]


def chromium(url: str, *flags: str) -> str:
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1280,1400", *flags, url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def search(out, budget: int, *extra) -> None:
    assert main(["search", "--space", "nasbench201", "--budget", str(budget), "--seed", "0",
                 "--quiet", "--out", str(out), *extra]) == 0


def stored(out):
    with RunStore(out / "run.sqlite", create=False) as store:
        return store.count(), store.best().fitness


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))
    search(tmp_path / "run", 30)
    return tmp_path / "run"


def test_the_report_shows_the_stores_best_and_one_row_per_evaluation(run, tmp_path):
    page_file = write_html_report([run], tmp_path / "report.html")
    page = Page(chromium(page_file.as_uri(), "--dump-dom"))
    count, best = stored(run)
    assert len(page.rows["evaluations-0"]) == count == 30
    assert [float(value) for value in page.best] == [best]
    assert page.images and all(src.startswith("data:image/png") for src in page.images)
    chromium(page_file.as_uri(), f"--screenshot={tmp_path / 'report.png'}")
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class ResumingDashboard(DashboardServer):
    """A dashboard that, once ``armed``, lets the search go on to 45 evaluations at
    the first poll after it served the page: results arrive while the page is open."""

    armed, shown, resumed = False, False, 0

    def page(self) -> bytes:
        body = super().page()
        self.shown = True
        return body

    def version(self) -> str:
        if self.armed and self.shown:
            self.armed = False
            search(self.folders[0], 45, "--resume")
            self.resumed += 1
        return super().version()


def test_the_dashboard_reloads_itself_when_results_arrive(run, tmp_path):
    server = ResumingDashboard([run], port=0, poll_seconds=0.5, refresh_seconds=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        first = Page(chromium(server.url, "--dump-dom"))
        assert len(first.rows["evaluations-0"]) == 30
        server.armed, server.shown = True, False
        final = Page(chromium(server.url, "--dump-dom", "--virtual-time-budget=8000"))
        chromium(server.url, f"--screenshot={tmp_path / 'dashboard.png'}")
    finally:
        server.shutdown()
        server.server_close()
    count, best = stored(run)
    assert server.resumed == 1
    assert len(final.rows["evaluations-0"]) == count == 45
    assert [float(value) for value in final.best] == [best]
    assert (tmp_path / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def fitness_after_clicks(page_text: str, clicks: int, path) -> list:
    """The fitness column as Chromium shows it after ``clicks`` on its header."""
    script = ("<script>var header = document.querySelectorAll('#evaluations-0 th')[2];"
              + "header.click();" * clicks + "</script>")
    path.write_text(page_text.replace("</body>", script + "</body>"))
    rows = Page(chromium(path.as_uri(), "--dump-dom")).rows["evaluations-0"]
    return [float(row[2]) for row in rows]


def test_a_click_on_a_header_sorts_the_table(run, tmp_path):
    text = write_html_report([run], tmp_path / "report.html").read_text()
    up = fitness_after_clicks(text, 1, tmp_path / "once.html")
    down = fitness_after_clicks(text, 2, tmp_path / "twice.html")
    assert len(up) == 30 and up == sorted(up) and up != sorted(up, reverse=True)
    assert down == sorted(up, reverse=True)
