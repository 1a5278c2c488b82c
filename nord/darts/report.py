"""``nord darts analyse``: tables 8.2–8.3 and Figures 8.1–8.4 from groups of searches.

A group is a setup (1, 2 or 4 ranks; an algorithm) with its search folders,
one per seed. :func:`analyse_groups` reads each folder's run store (untrusted:
only the stored metrics are read) and writes into ``out``:

* ``table_8_2.csv`` / ``.md``: per group, the mean over its runs of the best
  training and validation accuracy, the mean search time and the speed-up
  against the first group (table 8.2);
* ``table_8_3.csv`` / ``.md``: the Kolmogorov–Smirnov test between every two
  groups' validation curves, p-values corrected by Benjamini–Hochberg
  (table 8.3), and the Kruskal–Wallis test of the groups' best validation
  accuracies. As in the thesis, the curves are those of the final trainings
  (``nord darts train SEARCH`` writes ``SEARCH/final/final.json``) from epoch
  ``ks_from`` on, when every group has one; otherwise every search epoch;
* ``final_train_curves.png``, ``final_valid_curves.png``: the final
  trainings' accuracy per epoch (Figures 8.6/8.7), when there are any;
* ``ged_normal.csv``, ``ged_reduce.csv`` and ``ged_normal.png``,
  ``ged_reduce.png``: graph edit distances between the final genotypes within
  and between groups (Figures 8.3/8.4);
* ``train_curves.png``, ``valid_curves.png``: every run's accuracy per epoch
  (Figures 8.1/8.2).
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from nord.darts.analysis import distance_groups
from nord.darts.genotype import Genotype
from nord.errors import SerializationError, SettingsError, StudyError

__all__ = ["load_search", "load_final_curve", "analyse_groups"]


def load_search(folder) -> Dict[str, object]:
    """The per-epoch metrics and final genotype of a finished ``nord darts search``."""
    from nord.studies.base import load_study_records
    name, settings, records = load_study_records(folder)
    if name != "darts-search":
        raise StudyError(f"{folder} holds a {name!r} study, not a nord darts search")
    rows = sorted((r.metrics for r in records if r.status == "ok"),
                  key=lambda m: m.get("epoch", -1))
    epochs = settings.get("epochs") if isinstance(settings, dict) else None
    if not rows or len(rows) != epochs or [m.get("epoch") for m in rows] != list(range(epochs)):
        raise StudyError(f"{folder} holds {len(rows)} of its {epochs} epochs; finish it with "
                         f"nord darts search --out {folder} --resume")
    return {"folder": str(folder), "settings": settings,
            "train": [float(m["train_accuracy"]) for m in rows],
            "valid": [float(m["valid_accuracy"]) for m in rows],
            "seconds": float(sum(m["seconds"] for m in rows)),
            "genotype": Genotype.from_json(rows[-1]["genotype"]),
            "final": load_final_curve(Path(folder) / "final" / "final.json")}


def load_final_curve(path) -> Optional[Dict[str, List[float]]]:
    """The training and validation accuracy per epoch of a final training
    (``nord darts train`` with a validation share), or None when ``path`` is
    missing or holds no curve. The file is untrusted: only numbers are read."""
    from nord.neural_nets.serialization import read_json
    path = Path(path)
    if not path.is_file():
        return None
    value = read_json(path.read_bytes(), str(path))
    curve = value.get("curve") if isinstance(value, dict) else None
    if not curve:
        return None
    try:
        return {key: [float(row[f"{key}_accuracy"]) for row in curve]
                for key in ("train", "validation")}
    except (KeyError, TypeError, ValueError) as error:
        raise SerializationError(f"{path}: its curve is not a list of epochs with "
                                 f"train_accuracy and validation_accuracy ({error!r}); "
                                 f"train again with nord darts train") from error


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _markdown(path: Path, title: str, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    lines = [title, "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def analyse_groups(groups: Mapping[str, Sequence], out, timeout: float = 10.0,
                   ks_from: int = 10) -> dict:
    """Read the groups' search folders and write the tables and figures into ``out``.

    ``ks_from``: the first final-training epoch table 8.3 compares (thesis: 10,
    the epochs before it depending mostly on the initial weights)."""
    from nord.analysis.figures import plot_epoch_curves, plot_search_comparison
    from nord.analysis.hypothesis import benjamini_hochberg, kruskal_wallis, ks_two_sample
    from nord.studies.figures import draw_grouped_boxplots

    if len(groups) < 1 or any(not folders for folders in groups.values()):
        raise SettingsError("give at least one group with at least one search folder")
    runs = {name: [load_search(f) for f in folders] for name, folders in groups.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: List[Path] = []
    names = list(runs)
    base = float(np.mean([r["seconds"] for r in runs[names[0]]]))
    table = []
    for name in names:
        group = runs[name]
        seconds = float(np.mean([r["seconds"] for r in group]))
        table.append([name, len(group),
                      f"{100 * np.mean([max(r['train']) for r in group]):.2f} %",
                      f"{100 * np.mean([max(r['valid']) for r in group]):.2f} %",
                      f"{seconds:.0f}", f"{base / seconds:.2f}"])
    header = ["group", "runs", "best train accuracy", "best validation accuracy",
              "time (s)", "speed-up"]
    files.append(_write_csv(out / "table_8_2.csv", header, table))
    files.append(_markdown(out / "table_8_2.md", "Table 8.2: key performance metrics",
                           header, table))

    if int(ks_from) < 1:
        raise SettingsError(f"ks_from is a 1-based epoch, got {ks_from!r}")
    finals = {n: [r["final"] for r in runs[n] if r["final"] is not None] for n in names}
    if all(finals.values()):
        shortest = min(len(f["validation"]) for n in names for f in finals[n])
        start = min(int(ks_from), shortest)
        compared = {n: sum((f["validation"][start - 1:] for f in finals[n]), []) for n in names}
        source = (f"the final trainings' validation accuracy, epochs {start} to the last"
                  + (f" (ks_from {ks_from} is past the {shortest} epochs trained)"
                     if start < int(ks_from) else ""))
    else:
        compared = {n: sum((r["valid"] for r in runs[n]), []) for n in names}
        source = ("every search epoch's validation accuracy (no group has final trainings "
                  "with validation curves: run nord darts train SEARCH on a search of each)"
                  if not any(finals.values()) else
                  "every search epoch's validation accuracy (not every group has a final "
                  "training with a validation curve)")
    tests = []
    pairs = list(itertools.combinations(names, 2))
    pvalues = [ks_two_sample(compared[a], compared[b]).pvalue for a, b in pairs]
    if pairs:
        adjusted, rejected = benjamini_hochberg(pvalues)
        tests = [[f"{a} / {b}", f"{p:.4g}", f"{q:.4g}", "yes" if r else "no"]
                 for (a, b), p, q, r in zip(pairs, pvalues, adjusted, rejected)]
    kruskal = None
    best = [[max(r["valid"]) for r in runs[n]] for n in names]
    if len(names) >= 2 and all(len(b) >= 2 for b in best):
        kruskal = kruskal_wallis(*best)
    header = ["groups", "KS p-value", "BH-corrected p-value", "different at 5 % FDR"]
    files.append(_write_csv(out / "table_8_3.csv", header, tests))
    note = (f"\nKruskal-Wallis on the best validation accuracies: H = {kruskal.statistic:.3f}, "
            f"p = {kruskal.pvalue:.4g}" if kruskal is not None else
            "\nKruskal-Wallis needs two groups of at least two runs")
    path = _markdown(out / "table_8_3.md", "Table 8.3: Kolmogorov-Smirnov between validation "
                     f"curves, Benjamini-Hochberg corrected\n\nCompared: {source}.",
                     header, tests)
    path.write_text(path.read_text() + note + "\n")
    files.append(path)

    distances = {}
    for cell, reduction in (("normal", False), ("reduce", True)):
        values = distance_groups({n: [r["genotype"] for r in runs[n]] for n in names},
                                 reduction, timeout)
        distances[cell] = values
        rows = [[k, v] for k, vs in values.items() for v in vs]
        files.append(_write_csv(out / f"ged_{cell}.csv", ["pair", "distance"], rows))
        shown = {k: v for k, v in values.items() if v}
        if shown:
            figure = out / f"ged_{cell}.png"
            draw_grouped_boxplots(shown, "graph edit distance",
                                  f"GED between {cell} cells (Figure "
                                  f"{'8.3' if cell == 'normal' else '8.4'})", figure)
            files.append(figure)
    for key, label, number in (("train", "training", "8.1"), ("valid", "validation", "8.2")):
        curves = {f"{n} #{i + 1}": r[key] for n in names for i, r in enumerate(runs[n])}
        figure = out / f"{key}_curves.png"
        plot_search_comparison(curves, figure, ylabel=f"{label} accuracy",
                               title=f"DARTS search {label} accuracy (Figure {number})")
        files.append(figure)
    if any(finals.values()):
        for key, label, number in (("train", "training", "8.6"),
                                   ("validation", "validation", "8.7")):
            lines = {f"{n} #{i + 1}": f[key] for n in names for i, f in enumerate(finals[n])}
            figure = out / f"final_{'valid' if key == 'validation' else key}_curves.png"
            plot_epoch_curves({f"{label} accuracy": lines}, figure,
                              title=f"final training {label} accuracy (Figure {number})")
            files.append(figure)
    return {"files": files, "table_8_2": table, "table_8_3": tests, "compared": source,
            "kruskal_wallis": None if kruskal is None else
            {"statistic": kruskal.statistic, "pvalue": kruskal.pvalue},
            "distances": distances}
