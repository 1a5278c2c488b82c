"""``nord dashboard``: the HTML report of runs, served live while they run.

A standard-library :class:`http.server.ThreadingHTTPServer` serves

* ``/``: the page of :mod:`nord.analysis.html_report`, made again only when a
  store changed; the page asks ``/version`` every few seconds and reloads
  itself when the answer differs from the version it shows;
* ``/version``: the version of the page ``/`` serves now (it changes with the
  stores' candidates and results, at most as often as the page is made again);
* ``/data.json``: each run's counts and best evaluation, for scripts;
* ``/architecture/<run>/<id>.png``: one evaluation's architecture, drawn on demand.

Every store is opened read-only (SQLite's ``mode=ro``) for each request, so
the dashboard never writes to a store and reads what a running search has
committed; it listens on 127.0.0.1 unless told otherwise.

>>> server = DashboardServer(["runs/a"], port=0)            # doctest: +SKIP
>>> threading.Thread(target=server.serve_forever).start()    # doctest: +SKIP
>>> urllib.request.urlopen(server.url).read()                # doctest: +SKIP
"""

from __future__ import annotations

import errno
import html
import io
import json
import logging
import re
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from nord.analysis.html_report import (BEST_DRAWN, STORE_NAME, RunView, load_run,
                                       render_html, store_version)
from nord.errors import NordError, PortInUseError, RunNotFoundError
from nord.execution.store import RunStore

__all__ = ["DashboardServer", "serve_dashboard", "DEFAULT_HOST", "DEFAULT_PORT"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
_ARCHITECTURE = re.compile(r"^/architecture/(\d+)/(\d+)\.png$")


class DashboardServer(ThreadingHTTPServer):
    """Serves the live page of the runs in ``runs`` (run folders) on ``host:port``
    (``port=0``: a free port, see :attr:`url`). A folder without a run store
    raises :class:`~nord.errors.RunNotFoundError`, a port already taken
    :class:`~nord.errors.PortInUseError`."""

    daemon_threads = True

    def __init__(self, runs: Sequence, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 drawn: int = BEST_DRAWN, poll_seconds: float = 2.0,
                 refresh_seconds: Optional[float] = None) -> None:
        self.folders: List[Path] = [Path(run) for run in runs]
        if not self.folders:
            raise RunNotFoundError("no run folder given; give one or more --out folders")
        for folder in self.folders:
            if not (folder / STORE_NAME).is_file():
                raise RunNotFoundError(
                    f"{folder} is not a run folder (it holds no {STORE_NAME}); give the --out "
                    f"folder of nord search, nord study or nord darts search (start the "
                    f"dashboard once the search has begun)")
        self.drawn, self.poll_seconds = int(drawn), float(poll_seconds)
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._page: Optional[Tuple[str, bytes]] = None  # (version, page)
        self._views: List[RunView] = []                  # what the page was made from
        self._rendered_at, self._render_seconds = 0.0, 0.0
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), _Handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is in use (another dashboard or program listens "
                    f"on it); choose another with --port N, or --port 0 for any free "
                    f"one") from error
            raise

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def version(self) -> str:
        """The version of every store, joined: what the page compares to reload."""
        versions = []
        for folder in self.folders:
            with RunStore(folder / STORE_NAME, create=False, read_only=True) as store:
                versions.append(store_version(store))
        return "|".join(versions)

    def current(self) -> Tuple[str, bytes]:
        """``(version, page)``: the page and the version it shows, made again when a
        store changed, but at most every ``refresh_seconds`` (default: four times
        as long as the last page took to make, so that a large store beside a
        busy search does not keep the machine busy making pages)."""
        with self._lock:
            now = time.monotonic()
            wait = (4 * self._render_seconds if self.refresh_seconds is None
                    else self.refresh_seconds)
            if self._page is None or (now - self._rendered_at >= wait
                                      and self.version() != self._page[0]):
                views = [load_run(folder) for folder in self.folders]
                text = render_html(views, title=self._title(views), drawn=self.drawn,
                                   link=_architecture_link, poll="/version",
                                   poll_seconds=self.poll_seconds)
                # the version the rows were read at (perhaps newer than version())
                self._page = ("|".join(view.version for view in views), text.encode())
                self._views = views
                self._rendered_at = time.monotonic()
                self._render_seconds = self._rendered_at - now
            return self._page

    def page(self) -> bytes:
        """The page (see :meth:`current`)."""
        return self.current()[1]

    def data(self) -> dict:
        """Each run's counts and best evaluation (``/data.json``)."""
        runs = []
        for folder in self.folders:
            with RunStore(folder / STORE_NAME, create=False, read_only=True) as store:
                best = store.best()
                runs.append({"folder": str(folder), "version": store_version(store),
                             "evaluations": store.count(), "pending": store.count("pending"),
                             "best": None if best is None else {"id": best.id,
                                                                "fitness": best.fitness}})
        return {"runs": runs}

    def architecture(self, run: int, candidate: int) -> Optional[bytes]:
        """The PNG drawing of evaluation ``candidate`` of run number ``run``, or None
        where there is no such evaluation or it has no drawable descriptor."""
        from nord.neural_nets.visualization import plot_descriptor
        self.current()
        views = self._views  # the runs as the page shows them
        if not 0 <= run < len(views):
            return None
        view = views[run]
        with RunStore(self.folders[run] / STORE_NAME, create=False, read_only=True) as store:
            found = store.records("id = ?", (candidate,))
        descriptor = view.descriptor(found[0]) if found else None
        if descriptor is None:
            return None
        buffer = io.BytesIO()
        plot_descriptor(descriptor).savefig(buffer, format="png", dpi=80, facecolor="white")
        return buffer.getvalue()

    @staticmethod
    def _title(views) -> str:
        return "NORD dashboard: " + ", ".join(view.title for view in views)


def _architecture_link(run: int, candidate: int) -> str:
    return f"/architecture/{run}/{candidate}.png"


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", self.server.page())
            elif path == "/version":  # the version of the page / would serve now
                self._send(200, "text/plain; charset=utf-8", self.server.current()[0].encode())
            elif path == "/data.json":
                self._send(200, "application/json", json.dumps(self.server.data()).encode())
            elif _ARCHITECTURE.match(path):
                run, candidate = map(int, _ARCHITECTURE.match(path).groups())
                drawing = self.server.architecture(run, candidate)
                if drawing is None:
                    self._error(404, f"evaluation {candidate} of run {run} has no drawing")
                else:
                    self._send(200, "image/png", drawing)
            else:
                self._error(404, f"nothing at {path}; the dashboard is at /")
        except (NordError, OSError) as error:
            log.warning("the dashboard could not answer %s: %s", path, error)
            self._error(500, f"the run could not be read: {error}")

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str) -> None:
        page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{code}</title>"
                f"</head><body><p>{html.escape(message)}</p></body></html>")
        self._send(code, "text/html; charset=utf-8", page.encode())

    def log_message(self, format: str, *args) -> None:  # requests go to the debug log
        log.debug("%s %s", self.address_string(), format % args)


def serve_dashboard(runs: Sequence, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                    drawn: int = BEST_DRAWN, poll_seconds: float = 2.0,
                    announce: Callable[[str], None] = log.info) -> int:
    """Serve the dashboard of ``runs`` until Ctrl-C (or, from the main thread,
    SIGTERM, as ``kill`` and service managers send); returns 0 once stopped."""
    server = DashboardServer(runs, host, port, drawn, poll_seconds)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.page()  # a store that cannot be read fails now, not in the browser
        announce(f"dashboard of {len(server.folders)} run(s) at {server.url} "
                 f"(reloads when results arrive; Ctrl-C stops it)")
        server.serve_forever()
    except KeyboardInterrupt:
        announce("dashboard stopped")
    finally:
        server.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum, frame) -> None:
    """SIGTERM stops the dashboard as Ctrl-C does."""
    raise KeyboardInterrupt
