"""`nord dashboard`: the live page, served from read-only stores beside a running search."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nord.analysis.dashboard import DashboardServer
from nord.cli import main
from nord.errors import PortInUseError, RunNotFoundError
from nord.execution.store import RunStore
from tests.analysis.html_page import Page, fill_store

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def served(*folders, **options):
    server = DashboardServer(folders, port=0, **{"refresh_seconds": 0, **options})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def fetch(server, path="") -> bytes:
    with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=10) as answer:
        return answer.read()


def add_results(folder, first: int, fitness) -> None:
    """What a running search does: ask candidates, then commit their results."""
    with RunStore(Path(folder) / "run.sqlite", create=False) as store:
        for i, value in enumerate(fitness, start=first):
            store.record_ask(i, f"arch{i}", None, f"key{i}", None, 0.0)
            store.record_result(i, "ok", value, started_at=1.0, finished_at=2.0, worker="w")


def test_the_page_follows_new_results_and_the_store_is_never_written(tmp_path):
    fill_store(tmp_path, 3)
    store_file = tmp_path / "run.sqlite"
    before = hashlib.sha256(store_file.read_bytes()).hexdigest()
    with served(tmp_path) as server:
        assert server.server_address[0] == "127.0.0.1"
        page = Page(fetch(server).decode())
        version = fetch(server, "/version").decode()
        assert len(page.rows["evaluations-0"]) == 3 and page.best == ["0.2"]
        assert hashlib.sha256(store_file.read_bytes()).hexdigest() == before
        assert b"fetch('/version'" in fetch(server)  # the page polls for changes

        add_results(tmp_path, 3, [7.5, 1.0])
        assert fetch(server, "/version").decode() != version
        page = Page(fetch(server).decode())
        assert [row[0] for row in page.rows["evaluations-0"]] == ["0", "1", "2", "3", "4"]
        assert [float(value) for value in page.best] == [7.5]
        data = json.loads(fetch(server, "/data.json"))
        assert data["runs"][0]["evaluations"] == 5
        assert data["runs"][0]["best"] == {"id": 3, "fitness": 7.5}


def test_a_store_in_the_middle_of_a_commit_still_serves_what_is_committed(tmp_path):
    fill_store(tmp_path, 2)
    with served(tmp_path) as server, RunStore(tmp_path / "run.sqlite", create=False) as writer:
        writer.db.execute("BEGIN IMMEDIATE")
        writer.db.execute("UPDATE evaluations SET fitness = 50 WHERE id = 1")
        assert Page(fetch(server).decode()).best == ["0.1"]
        writer.db.execute("COMMIT")
        assert Page(fetch(server).decode()).best == ["0.1"]  # same version: the page kept
        add_results(tmp_path, 2, [0.5])
        assert [float(v) for v in Page(fetch(server).decode()).best] == [50.0]


def test_a_page_is_made_at_most_every_refresh_seconds(tmp_path):
    fill_store(tmp_path, 2)
    with served(tmp_path, refresh_seconds=60) as server:
        version = fetch(server, "/version")
        assert Page(fetch(server).decode()).best == ["0.1"]
        add_results(tmp_path, 2, [3.0])
        assert fetch(server, "/version") == version  # so the browser does not reload
        assert Page(fetch(server).decode()).best == ["0.1"]
        assert json.loads(fetch(server, "/data.json"))["runs"][0]["evaluations"] == 3
        server.refresh_seconds = 0
        assert fetch(server, "/version") != version
        assert Page(fetch(server).decode()).best == ["3.0"]


def test_architectures_are_drawn_on_demand_and_unknown_paths_are_404(tmp_path):
    fill_store(tmp_path, 2)
    with served(tmp_path, drawn=0) as server:
        page = fetch(server).decode()
        assert '<a href="/architecture/0/1.png">1</a>' in page
        assert "data:image/png" in page and "Best architectures" not in page  # none drawn
        assert fetch(server, "/architecture/0/1.png")[:8] == b"\x89PNG\r\n\x1a\n"
        for path in ("/architecture/0/9.png", "/architecture/3/0.png", "/nothing"):
            with pytest.raises(urllib.error.HTTPError) as answer:
                fetch(server, path)
            assert answer.value.code == 404


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    with pytest.raises(RunNotFoundError, match="holds no run.sqlite"):
        DashboardServer([tmp_path], port=0)
    assert main(["dashboard", str(tmp_path), "--port", "0"]) == 1
    assert "is not a run folder" in capsys.readouterr().err


def test_a_port_in_use_is_named_with_the_way_out(tmp_path, capsys):
    fill_store(tmp_path, 1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use"):
            DashboardServer([tmp_path], port=port)
        assert main(["dashboard", str(tmp_path), "--port", str(port)]) == 1
    assert "choose another with --port N" in capsys.readouterr().err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_or_kill_stops_the_dashboard_with_status_0(tmp_path, stop):
    fill_store(tmp_path, 2)
    process = subprocess.Popen(
        [sys.executable, "-m", "nord", "dashboard", str(tmp_path), "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        # as from a terminal: a suite started in the background (`cmd &`) passes
        # on an ignored SIGINT, which Python then leaves ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = process.stdout.readline()
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert len(Page(answer.read().decode()).rows["evaluations-0"]) == 2
        process.send_signal(stop)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "dashboard stopped" in out and "Traceback" not in err


@pytest.mark.slow
def test_beside_a_running_search_every_request_is_answered_and_the_search_is_undisturbed(
        tmp_path):
    from tests.execution.logger_fakes import DATA, NB201
    if not NB201.exists():
        pytest.skip("NAS-Bench-201 table not present")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "nord", "search", "--space", "nasbench201", "--budget",
               "8000", "--seed", "0", "--quiet", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NORD_DATA": str(DATA)}
    assert subprocess.run([*command[:7], "20", *command[8:]], env=env, cwd=ROOT).returncode == 0
    search = subprocess.Popen([*command, "--resume"], env=env, cwd=ROOT,
                              stderr=subprocess.PIPE, text=True)
    seen = set()
    with served(out) as server:
        while search.poll() is None:
            seen.add(len(Page(fetch(server).decode()).rows["evaluations-0"]))
            fetch(server, "/version")
        _, err = search.communicate(timeout=60)
        final = Page(fetch(server).decode())
    assert search.returncode == 0, err
    assert len(final.rows["evaluations-0"]) == 8000
    with RunStore(out / "run.sqlite", create=False) as store:
        assert [float(v) for v in final.best] == [store.best().fitness]
    assert len(seen) >= 2  # pages made while the search ran showed it progressing
