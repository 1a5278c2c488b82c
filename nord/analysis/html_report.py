"""``nord report RUN --html``: one self-contained HTML page for one run or several.

The page needs no network: its style and its small script (sorting the table)
are inline, its figures are PNG images embedded as ``data:`` URIs. It shows a
run's settings, its counts per status, the best-so-far and fitness
distribution plots, a sortable table with one row per finished evaluation,
the best architectures drawn as graphs, the failures with their errors, the
tables (``.md``, ``.csv``) and figures (``.png``) a study or a DARTS search
wrote into its folder, and, for several runs, their comparison (Figure 6.4).

Everything read from a store or a run folder is untrusted: every text is
escaped with :func:`html.escape` before it reaches the page, and only files
that start like a PNG are embedded as images. Stores are opened read-only
(:class:`~nord.execution.store.RunStore` with ``read_only=True``), so a page
can be made beside a running search.

>>> write_html_report(["runs/evolution", "runs/random"], "compare.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Union

from nord.analysis.report import FIGURES, Report, plot_best_so_far, plot_fitness_ecdf
from nord.errors import NordError, RunNotFoundError
from nord.execution.store import STATUSES, EvaluationRecord, RunStore

__all__ = ["RunView", "load_run", "store_version", "render_html", "write_html_report",
           "BEST_DRAWN",
           "STORE_NAME", "FAILURE_STATUSES"]

log = logging.getLogger(__name__)

#: the file of a run folder that holds its store
STORE_NAME = "run.sqlite"
#: architectures drawn as graphs per run (the best ones; the dashboard draws others on demand)
BEST_DRAWN = 5
#: statuses whose evaluations are listed with their errors
FAILURE_STATUSES = ("invalid", "not_in_table", "failed")

_DPI = 80
_ARCHITECTURE_CHARS = 160   # characters of an architecture shown in a table cell
_ERROR_CHARS = 4000         # characters of one error shown
_FAILURES_SHOWN = 50
_EXTRA_BYTES = 2_000_000    # largest table or figure file embedded from a run folder
_EXTRA_TOTAL = 4_000_000    # most bytes of such files embedded per run
_CSV_ROWS = 200
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: files of a run folder that the page itself replaces (nord report's Markdown and PNGs)
_REPLACED = set(FIGURES) | {"summary.md"}


def _escape(value: Any) -> str:
    """Any value as text safe inside an element or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass
class RunView:
    """What the page shows of one run folder, read once from its store."""

    folder: Path
    report: Report
    study: Optional[dict] = None
    version: str = ""
    space: Any = None
    notes: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.folder.name or str(self.folder)

    @property
    def title(self) -> str:
        if self.study is not None:
            return f"study {self.study.get('name', '?')}"
        s = self.report.settings
        return f"{s.get('strategy', '?')} on {s.get('space', '?')}"

    def describe(self, architecture: Any) -> str:
        """The space's description of a stored architecture, or its stored form."""
        if self.study is not None and isinstance(architecture, dict):
            return ", ".join(f"{k}={v}" for k, v in architecture.items())
        if self.space is not None:
            try:
                return self.space.describe(self.space.decode(architecture))
            except (NordError, LookupError, TypeError, ValueError, AttributeError):
                pass
        return architecture if isinstance(architecture, str) else json.dumps(architecture)

    def descriptor(self, record: EvaluationRecord):
        """The record's network descriptor (something with ``layers``), or None."""
        if self.space is None or self.study is not None:
            return None
        try:
            if record.descriptor:
                found = self.space.descriptor_from_json(record.descriptor)
            else:
                found = self.space.to_descriptor(self.space.decode(record.architecture))
        except (NordError, LookupError, TypeError, ValueError, AttributeError) as error:
            log.debug("evaluation #%d of %s cannot be drawn: %s", record.id, self.folder,
                      error)
            return None
        return found if hasattr(found, "layers") else None


def store_version(store: RunStore) -> str:
    """Changes whenever the store gets a candidate, a result or its end: evaluations,
    pending ones, the last result's number, whether the run finished."""
    row = store.db.execute(
        "SELECT COUNT(*) AS n, COALESCE(SUM(status = 'pending'), 0) AS pending, "
        "COALESCE(MAX(result_seq), 0) AS seq FROM evaluations").fetchone()
    finished = store.db.execute("SELECT value FROM meta WHERE key = 'finished'").fetchone()
    return (f"{row['n']}-{row['pending']}-{row['seq']}-"
            f"{'' if finished is None else finished['value']}")


def load_run(folder) -> RunView:
    """Read the run in ``folder`` (its ``run.sqlite``) read-only; a folder without a
    store raises :class:`~nord.errors.RunNotFoundError`."""
    folder = Path(folder)
    path = folder / STORE_NAME
    if not path.is_file():
        raise RunNotFoundError(f"{folder} is not a run folder (it holds no {STORE_NAME}); "
                               f"give the --out folder of nord search, nord study or nord "
                               f"darts search")
    with RunStore(path, create=False, read_only=True) as store:
        store.db.execute("BEGIN")  # one snapshot: the rows and the version agree
        try:
            report, version = Report(store), store_version(store)
        finally:
            store.db.execute("COMMIT")
    study = report.meta.get("study")
    view = RunView(folder, report, study if isinstance(study, dict) else None, version)
    if view.study is None and isinstance(report.settings, dict) and report.settings.get("space"):
        from nord.design.spaces import get_space
        try:
            view.space = get_space(report.settings["space"],
                                   **(report.meta.get("space_settings") or {}))
        except (NordError, LookupError, TypeError, ValueError) as error:
            view.notes.append(f"the {report.settings['space']} space cannot be built here "
                              f"({error}); architectures are shown as stored")
    return view


# ------------------------------------------------------------------ figures
def _png_uri(fig, dpi: int = _DPI, tight: bool = True) -> str:
    """``fig`` as an embedded PNG (``tight``: laid out tightly first; not for figures
    that place their own axes, like the descriptor drawing)."""
    buffer = io.BytesIO()
    if tight:
        fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(uri: str, alt: str, css: str = "plot") -> str:
    return f'<img class="{css}" alt="{_escape(alt)}" src="{uri}">'


def _run_plots(view: RunView) -> str:
    report = view.report
    if not report.records:
        return "<p>No evaluation has finished yet.</p>"
    ok = [r.fitness for r in report.records if r.status in ("ok", "cached")]
    parts = [_img(_png_uri(plot_best_so_far(report.fitness, title=view.title)),
                  "best fitness so far")]
    if ok:
        parts.append(_img(_png_uri(plot_fitness_ecdf(ok, title=view.title)),
                          "distribution of the fitness of successful evaluations"))
    return '<div class="plots">' + "".join(parts) + "</div>"


def _comparison(views: Sequence[RunView]) -> str:
    from nord.analysis.figures import plot_search_comparison
    labels = Counter(view.label for view in views)
    fitness = {}
    for i, view in enumerate(views):
        label = view.label if labels[view.label] == 1 else f"{view.label} ({i + 1})"
        fitness[label] = [r.fitness for r in view.report.records]
    rows = "".join(
        f"<tr><td>{_escape(view.folder)}</td><td>{_escape(view.title)}</td>"
        f"<td>{len(view.report.records)}</td><td>{_fitness(view.report.best)}</td></tr>"
        for view in views)
    figure = _img(_png_uri(plot_search_comparison(fitness)),
                  "best so far and fitness distribution of each run", "wide")
    return ("<section><h2>Comparison</h2><table><thead><tr><th>run</th><th>search</th>"
            "<th>evaluations</th><th>best fitness</th></tr></thead><tbody>" + rows +
            "</tbody></table>" + figure + "</section>")


def _fitness(record: Optional[EvaluationRecord]) -> str:
    return "-" if record is None else f"{record.fitness:.6g}"


# ------------------------------------------------------------------ sections
def _settings(view: RunView) -> str:
    rows = []
    for key, value in sorted(view.report.meta.items()):
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, item in items:
            if item is None or item == {} or item == []:
                continue
            text = item if isinstance(item, str) else json.dumps(item)
            name = f"{key}.{sub}" if sub else key
            rows.append(f"<tr><th>{_escape(name)}</th><td>{_escape(_clip(text, 300))}</td></tr>")
    return "<table class=\"settings\"><tbody>" + "".join(rows) + "</tbody></table>"


def _counts(view: RunView) -> str:
    report = view.report
    counts = report.statuses()
    cells = [("finished", len(report.records)), ("pending", report.pending)]
    cells += [(status, counts[status]) for status in STATUSES if counts.get(status)]
    best = report.best
    value = "" if best is None else f' data-value="{best.fitness!r}"'
    line = (f'<p>Best fitness <strong id="best-fitness"{value}>{_fitness(best)}</strong>'
            + ("" if best is None else f" (evaluation #{best.id})") + "</p>")
    head = "".join(f"<th>{_escape(name)}</th>" for name, _ in cells)
    row = "".join(f'<td id="count-{_escape(name)}">{n}</td>' for name, n in cells)
    return (f'{line}{_metrics(best)}<table class="counts"><tr>{head}</tr><tr>{row}</tr>'
            f'</table>')


def _metrics(record: Optional[EvaluationRecord]) -> str:
    """The best evaluation's metrics, one table row (lists shown by their length)."""
    if record is None or not record.metrics:
        return ""
    shown = [(key, f"[{len(value)} values]" if isinstance(value, list) else
              _clip(value if isinstance(value, str) else json.dumps(value), 80))
             for key, value in list(record.metrics.items())[:20]]
    head = "".join(f"<th>{_escape(key)}</th>" for key, _ in shown)
    row = "".join(f"<td>{_escape(value)}</td>" for _, value in shown)
    return f'<table class="metrics"><tr>{head}</tr><tr>{row}</tr></table>'


def _number(value: Optional[float], digits: str = ".4g") -> str:
    return "-" if value is None else format(value, digits)


def _table(view: RunView, index: int, link: Optional[Callable[[int, int], str]],
           drawn: Sequence[int]) -> str:
    rows = []
    for r in sorted(view.report.records, key=lambda record: record.id):
        if link is not None:
            ident = f'<a href="{_escape(link(index, r.id))}">{r.id}</a>'
        elif r.id in drawn:
            ident = f'<a href="#arch-{index}-{r.id}">{r.id}</a>'
        else:
            ident = str(r.id)
        architecture = _clip(view.describe(r.architecture), _ARCHITECTURE_CHARS)
        rows.append(f'<tr><td>{ident}</td><td class="s-{_escape(r.status)}">{_escape(r.status)}'
                    f'</td><td>{r.fitness:.6g}</td><td>{_number(r.cost)}</td>'
                    f'<td>{_number(r.eval_seconds, ".3g")}</td><td>{_escape(r.worker or "-")}'
                    f'</td><td class="arch">{html.escape(architecture, quote=False)}</td></tr>')
    header = "".join(f'<th data-type="{kind}">{name}</th>' for name, kind in (
        ("id", "num"), ("status", "text"), ("fitness", "num"), ("cost", "num"),
        ("seconds", "num"), ("worker", "text"), ("architecture", "text")))
    return (f'<table class="evaluations sortable" id="evaluations-{index}"><thead><tr>{header}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _best_records(view: RunView, count: int) -> List[EvaluationRecord]:
    """The ``count`` fittest successful evaluations, one per architecture."""
    ok = sorted((r for r in view.report.records if r.status in ("ok", "cached")),
                key=lambda r: (-r.fitness, r.id))
    best: List[EvaluationRecord] = []
    seen = set()
    for r in ok:
        if len(best) >= count:
            break
        key = r.hash or json.dumps(r.architecture, sort_keys=True)
        if key not in seen:
            seen.add(key)
            best.append(r)
    return best


def _architectures(view: RunView, index: int, records: Sequence[EvaluationRecord]) -> str:
    from nord.neural_nets.visualization import plot_descriptor
    parts = []
    for r in records:
        descriptor = view.descriptor(r)
        drawing = "" if descriptor is None else _img(
            _png_uri(plot_descriptor(descriptor), 60, tight=False), f"evaluation #{r.id}",
            "architecture")
        text = _escape(_clip(view.describe(r.architecture), 400))
        parts.append(f'<figure id="arch-{index}-{r.id}">{drawing}<figcaption>#{r.id}, '
                     f'fitness {r.fitness:.6g}: {text}</figcaption></figure>')
    return '<div class="architectures">' + "".join(parts) + "</div>"


def _failures(view: RunView) -> str:
    failures = [r for r in view.report.records if r.status in FAILURE_STATUSES]
    if not failures:
        return "<p>No evaluation failed.</p>"
    shown = failures[:_FAILURES_SHOWN]
    more = (f"<p>{len(failures) - len(shown)} more are not shown.</p>"
            if len(failures) > len(shown) else "")
    return "".join(
        f'<details class="failure"><summary>#{r.id} {_escape(r.status)}: '
        f'{_escape(_clip((r.error or "").strip().split(chr(10))[0], 200))}</summary>'
        f'<pre>{_escape((r.error or "")[:_ERROR_CHARS])}</pre></details>' for r in shown) + more


def _markdown_file(text: str) -> str:
    """A Markdown file as HTML: its pipe tables as tables, other lines as text."""
    out, table = [], []

    def flush():
        if table:
            rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
                    for line in table if not set(line.strip()) <= set("|-: ")]
            out.append("<table>" + "".join(
                "<tr>" + "".join(f"<td>{_escape(cell)}</td>" for cell in row) + "</tr>"
                for row in rows) + "</table>")
            table.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            table.append(line)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{_escape(line.lstrip('#').strip())}</p>")
    flush()
    return "".join(out)


def _csv_file(text: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    shown = rows[:_CSV_ROWS + 1]
    more = f"<p>{len(rows) - len(shown)} more rows.</p>" if len(rows) > len(shown) else ""
    return "<table>" + "".join(
        "<tr>" + "".join(f"<td>{_escape(_clip(cell, 200))}</td>" for cell in row) + "</tr>"
        for row in shown) + "</table>" + more


def _folder_files(view: RunView) -> str:
    """The tables and figures a study or DARTS search wrote into the run folder:
    plain files only (no links out of the folder), each under ``_EXTRA_BYTES``,
    until ``_EXTRA_TOTAL`` bytes are embedded (a note names those left out)."""
    parts, left_out, total = [], [], 0
    for path in sorted(view.folder.iterdir()):
        suffix = path.suffix.lower()
        if (suffix not in (".md", ".csv", ".png") or path.name in _REPLACED
                or path.is_symlink() or not path.is_file()):
            continue
        size = path.stat().st_size
        if size > _EXTRA_BYTES or total + size > _EXTRA_TOTAL:
            left_out.append(path.name)
            continue
        data = path.read_bytes()
        if suffix == ".png":
            if not data.startswith(_PNG_MAGIC):
                continue
            body = _img("data:image/png;base64," + base64.b64encode(data).decode("ascii"),
                        path.name, "wide")
        else:
            text = data.decode("utf-8", errors="replace")
            body = _markdown_file(text) if suffix == ".md" else _csv_file(text)
        total += size
        parts.append(f'<figure class="file"><figcaption>{_escape(path.name)}</figcaption>'
                     f'{body}</figure>')
    if left_out:
        parts.append(f'<p class="note">Too large to embed (open them in the run folder): '
                     f'{_escape(", ".join(left_out))}</p>')
    return "".join(parts)


def _run_section(view: RunView, index: int, drawn_count: int,
                 link: Optional[Callable[[int, int], str]]) -> str:
    best = _best_records(view, drawn_count)
    files = _folder_files(view)
    notes = "".join(f'<p class="note">{_escape(note)}</p>' for note in view.notes)
    parts = [f'<section class="run" id="run-{index}"><h2>{_escape(view.title)}: '
             f'{_escape(view.folder)}</h2>', notes, _counts(view),
             "<details><summary>Settings</summary>", _settings(view), "</details>",
             "<h3>Progress</h3>", _run_plots(view)]
    if best:
        what = "trials" if view.study is not None else "architectures"
        parts += [f"<h3>Best {what} (the {len(best)} fittest)</h3>",
                  _architectures(view, index, best)]
    parts += [f"<h3>Evaluations ({len(view.report.records)})</h3>",
              "<p>Click a column's header to sort by it.</p>",
              _table(view, index, link, [r.id for r in best]),
              "<h3>Failures</h3>", _failures(view)]
    if files:
        parts += ["<h3>Tables and figures in the run folder</h3>", files]
    return "".join(parts) + "</section>"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1a1a1a;max-width:1400px}
h1{font-size:1.5em}h2{border-bottom:2px solid #3b5b92;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
thead th{background:#e8eef8;cursor:pointer;position:sticky;top:0}
.evaluations td.arch{font-family:monospace;font-size:.85em}
.s-ok,.s-cached{color:#2e7d32}.s-failed,.s-invalid,.s-not_in_table{color:#b71c1c}
img.plot{max-width:48%;height:auto}img.wide{max-width:100%;height:auto}
img.architecture{max-height:300px;max-width:100%}
.architectures{display:flex;flex-wrap:wrap;gap:1em}
.architectures figure{border:1px solid #ddd;padding:.5em;margin:0;max-width:240px;text-align:center}
figure figcaption{text-align:left}
.counts th,.counts td{text-align:center}summary{cursor:pointer;font-weight:600;margin:.5em 0}
figcaption{font-size:.85em;font-family:monospace;word-break:break-all}
details.failure pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap}
.note{color:#8a5a00}.stamp{color:#666;font-size:.85em}
"""

#: sorts a table by the clicked column (numbers as numbers; "-" sorts lowest)
_SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('thead th').forEach(function(th,col){
    th.addEventListener('click',function(){
      var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      var up=th.getAttribute('data-order')!=='up',num=th.getAttribute('data-type')==='num';
      function key(row){var t=row.cells[col].textContent;
        if(!num)return t;var v=parseFloat(t);return isNaN(v)?-Infinity:v;}
      rows.sort(function(a,b){var x=key(a),y=key(b);
        return (x<y?-1:x>y?1:0)*(up?1:-1);});
      th.setAttribute('data-order',up?'up':'down');
      rows.forEach(function(row){body.appendChild(row);});
    });
  });
});
"""

#: reloads the page when the ``version`` URL answers another version (the dashboard)
_POLL_SCRIPT = """
(function(){var shown=document.body.getAttribute('data-version');
  setInterval(function(){fetch('%s',{cache:'no-store'}).then(function(r){return r.text();})
    .then(function(v){if(v!==shown){location.reload();}}).catch(function(){});},%d);})();
"""


def render_html(views: Sequence[RunView], title: Optional[str] = None,
                drawn: int = BEST_DRAWN, link: Optional[Callable[[int, int], str]] = None,
                poll: Optional[str] = None, poll_seconds: float = 2.0) -> str:
    """The page of ``views`` (from :func:`load_run`), as text.

    ``drawn``: architectures drawn per run (the fittest); ``link(run index, id)``
    gives each table row's link (the dashboard's on-demand drawings);
    ``poll``: a URL answering the runs' version, polled to reload the page when
    it changes (the dashboard); None for a static report.
    """
    title = title or ("Search report: " + ", ".join(view.title for view in views))
    version = "|".join(view.version for view in views)
    body = [f"<h1>{_escape(title)}</h1>",
            f'<p class="stamp">Written {_escape(time.strftime("%Y-%m-%d %H:%M:%S"))} by NORD '
            f'from {len(views)} run folder(s).</p>']
    if len(views) > 1:
        body.append(_comparison(views))
    body += [_run_section(view, i, drawn, link) for i, view in enumerate(views)]
    script = _SORT_SCRIPT
    if poll is not None:
        script += _POLL_SCRIPT % (poll, int(1000 * poll_seconds))
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{_escape(title)}</title><style>{_STYLE}</style></head>"
            f'<body data-version="{_escape(version)}">' + "".join(body) +
            f"<script>{script}</script></body></html>\n")


def write_html_report(runs: Sequence[Union[str, Path, RunView]], out,
                      drawn: int = BEST_DRAWN, title: Optional[str] = None) -> Path:
    """Write the page of ``runs`` (run folders, or views from :func:`load_run`) to
    the file ``out``, read-only on every store; returns its path."""
    views = [run if isinstance(run, RunView) else load_run(run) for run in runs]
    if not views:
        raise RunNotFoundError("no run folder given; give one or more --out folders")
    out = Path(out)
    out.write_text(render_html(views, title=title, drawn=drawn), encoding="utf-8")
    return out
