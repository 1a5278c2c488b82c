"""A DARTS search as a run: one trial per epoch through the run loop, store and executors.

:class:`DartsSearchStudy` lists one trial per epoch and runs them in order
(``sequential``: an epoch starts from the checkpoint the previous one wrote).
Its objective (:class:`DartsEpochObjective`) loads
``<out>/checkpoints/epoch_<e - 1>.pt`` (as untrusted input: ``torch.load``
with ``weights_only=True``, settings compared), trains epoch ``e`` with
:class:`~nord.darts.search.DartsSearch`, writes ``epoch_<e>.pt`` atomically
and returns the epoch's metrics, which the store commits. A killed search
resumes (``--resume``) at the first epoch whose result was not committed, and
because every epoch's randomness is seeded by ``(seed, epoch)`` it ends where
an uninterrupted search ends.

The analysis writes into the run folder ``genotype.json`` (the last epoch's
cells) and ``genotype.png`` (drawn as Figure 8.5), ``genotypes.json`` (one per
epoch), ``search_curves.csv`` and
``search_curves.png`` (training and validation accuracy per epoch, Figures
8.1/8.2) and ``darts_search.md`` (table 8.2's row: best accuracies, time).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from nord.darts.genotype import Genotype
from nord.darts.search import DartsSearch, DartsSettings, load_search_data
from nord.errors import DartsError, SettingsError, StudyError
from nord.execution.objectives import Objective, Outcome
from nord.studies.base import Study, StudyOutcome, Trial

__all__ = ["DartsSearchStudy", "DartsEpochObjective", "checkpoint_path", "load_checkpoint"]

CHECKPOINTS = "checkpoints"


def checkpoint_path(folder, epoch: int) -> Path:
    return Path(folder) / CHECKPOINTS / f"epoch_{int(epoch)}.pt"


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """A checkpoint file, read as untrusted input (tensors and plain data only)."""
    import torch
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same advice
        raise DartsError(f"{path} could not be read ({type(error).__name__}: {error}); "
                         f"delete it and resume from the epoch before") from error


class DartsEpochObjective(Objective):
    """Trains one epoch of the search (a trial ``{'epoch': e}``) from the previous
    epoch's checkpoint; fitness: the epoch's architecture-step validation accuracy."""

    name = "darts-epoch"

    def __init__(self, settings: Mapping[str, Any], device: Optional[str] = None,
                 ranks: int = 1, algorithm: str = "weights") -> None:
        self.search_settings = DartsSettings.from_dict(settings)
        self.device = device
        self.ranks, self.algorithm = _check_ranks(ranks, algorithm)
        self.folder: Optional[Path] = None
        self._data = None

    def settings(self) -> dict:
        return {**self.search_settings.to_dict(), "ranks": self.ranks,
                "algorithm": self.algorithm}

    def bind_folder(self, folder) -> None:
        self.folder = Path(folder)

    def key(self, trial) -> str:
        return trial.canonical_hash()

    def prepare(self) -> None:
        self.data  # noqa: B018 - missing data fails before the run starts

    @property
    def data(self):
        if self._data is None:
            self._data = load_search_data(self.search_settings)
        return self._data

    def __getstate__(self):  # workers load the data themselves
        state = dict(self.__dict__)
        state["_data"] = None
        return state

    def evaluate(self, trial: Trial) -> Outcome:
        if self.folder is None:
            raise DartsError("the DARTS objective has no run folder for its checkpoints; run "
                             "it through run_study (nord darts search)")
        epoch = int(trial.params["epoch"])
        if self.ranks > 1:
            metrics = _parallel_epoch(self.search_settings, self.ranks, self.algorithm,
                                      self.folder, epoch)
            return Outcome(fitness=float(metrics["valid_accuracy"]), metrics=metrics,
                           cost=float(metrics["seconds"]))
        device = self.device or ("cuda" if _cuda() else "cpu")
        search = DartsSearch(self.search_settings, self.data, device)
        if epoch > 0:
            _resume(search, self.folder, epoch, lambda state: state)
        metrics = search.run_epoch()
        _save_atomically(search.state_dict(), checkpoint_path(self.folder, epoch))
        return Outcome(fitness=float(metrics["valid_accuracy"]), metrics=metrics,
                       cost=float(metrics["seconds"]))


def _check_ranks(ranks, algorithm):
    from nord.darts.parallel import ALGORITHMS
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise SettingsError(f"ranks must be a whole number >= 1, got {ranks!r}")
    if algorithm not in ALGORITHMS:
        raise SettingsError(f"unknown data-parallel DARTS algorithm {algorithm!r}; use "
                            f"'weights' (Algorithm 1) or 'gradients' (Algorithm 2)")
    return ranks, algorithm


def _resume(search: DartsSearch, folder: Path, epoch: int, state_of) -> None:
    """Load into ``search`` the checkpoint epoch ``epoch`` starts from
    (``state_of(checkpoint)``: what this process loads of it) and check that it
    holds the state after epoch ``epoch - 1``."""
    previous = checkpoint_path(folder, epoch - 1)
    if not previous.is_file():
        raise DartsError(f"epoch {epoch + 1} starts from {previous}, which is missing; "
                         f"the run folder lost its checkpoints: start the search again")
    search.load_state_dict(state_of(load_checkpoint(previous)))
    if search.epoch != epoch:
        raise DartsError(f"{previous} holds the state after epoch {search.epoch}, not "
                         f"{epoch}; start the search again")


def _metrics_path(folder, epoch: int) -> Path:
    """Where rank 0 leaves a parallel epoch's metrics for the objective."""
    return Path(folder) / CHECKPOINTS / f"epoch_{int(epoch)}.metrics.json"


def _parallel_epoch(settings: DartsSettings, ranks: int, algorithm: str, folder: Path,
                    epoch: int) -> Dict[str, Any]:
    """One epoch on ``ranks`` gloo processes of this machine (CPU; one torch thread each).
    Every rank starts from the checkpoint (the shared weights, its own optimizer state),
    so an epoch after a resume is the epoch of an uninterrupted search."""
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _metrics_path(folder, epoch)
    result.unlink(missing_ok=True)
    mp.spawn(_rank_epoch, args=(ranks, port, settings.to_dict(), algorithm, str(folder), epoch),
             nprocs=ranks)
    metrics = json.loads(result.read_text())
    result.unlink()
    return metrics


def _rank_epoch(rank: int, world: int, port: int, settings: Dict[str, Any], algorithm: str,
                folder: str, epoch: int) -> None:
    import torch
    import torch.distributed as dist

    from nord.darts.parallel import ParallelDartsSearch
    from nord.neural_nets.distributed.collectives import RankGroup, destroy_process_group
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        search_settings = DartsSettings.from_dict(settings)
        search = ParallelDartsSearch(search_settings, load_search_data(search_settings),
                                     algorithm, RankGroup())
        if epoch > 0:
            def own(state):
                if state.get("ranks") != world or state.get("algorithm") != algorithm:
                    raise SettingsError(f"the checkpoint was written by {state.get('ranks')} "
                                        f"rank(s) with {state.get('algorithm')!r}; resume with "
                                        f"those")
                mine = state["rank_optimizers"][rank]
                return {**state, "w_optimizer": mine["w"], "a_optimizer": mine["a"]}
            _resume(search, Path(folder), epoch, own)
        metrics = search.run_epoch()
        mine = {"w": search.w_optimizer.state_dict(), "a": search.a_optimizer.state_dict()}
        everyone = search.ranks.all_gather_objects(mine)
        if rank == 0:
            state = {**search.state_dict(), "ranks": world, "algorithm": algorithm,
                     "rank_optimizers": everyone}
            _save_atomically(state, checkpoint_path(folder, epoch))
            _metrics_path(folder, epoch).write_text(json.dumps(metrics))
        search.ranks.barrier()
        del search, everyone
    finally:
        destroy_process_group()  # joins gloo's threads before the process exits


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def _save_atomically(state, path: Path) -> None:
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".pt.partial")
    torch.save(state, partial)
    os.replace(partial, path)


class DartsSearchStudy(Study):
    """First-order DARTS on a share of a dataset (see the module docstring)."""

    name = "darts-search"
    sequential = True

    def __init__(self, **settings) -> None:
        self.device = settings.pop("device", None)
        self.ranks, self.algorithm = _check_ranks(settings.pop("ranks", 1),
                                                  settings.pop("algorithm", "weights"))
        self.search_settings = DartsSettings.from_dict(settings)

    def settings(self) -> dict:
        return {**self.search_settings.to_dict(), "ranks": self.ranks,
                "algorithm": self.algorithm}

    def trials(self) -> List[Dict[str, Any]]:
        return [{"epoch": e} for e in range(self.search_settings.epochs)]

    def objective(self) -> DartsEpochObjective:
        return DartsEpochObjective(self.search_settings.to_dict(), self.device, self.ranks,
                                   self.algorithm)

    def analyse(self, records: Sequence, folder: Path) -> StudyOutcome:
        rows = sorted((r.metrics for r in records), key=lambda m: m["epoch"])
        if [m.get("epoch") for m in rows] != list(range(len(rows))) or not rows:
            raise StudyError(f"{folder} does not hold one result per epoch; it is not this "
                             f"search's folder")
        genotypes = [Genotype.from_json(m["genotype"]) for m in rows]
        files: List[Path] = []
        final = folder / "genotype.json"
        final.write_text(json.dumps(genotypes[-1].to_json(), indent=1) + "\n")
        every = folder / "genotypes.json"
        every.write_text(json.dumps([g.to_json() for g in genotypes], indent=1) + "\n")
        curves = folder / "search_curves.csv"
        columns = ["epoch", "lr", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                   "seconds"]
        with open(curves, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for m in rows:
                writer.writerow([m["epoch"] + 1] + [m[c] for c in columns[1:]])
        files += [final, every, curves]
        from nord.darts.figures import draw_genotype
        drawing = folder / "genotype.png"
        draw_genotype(genotypes[-1], drawing, title=f"the genotype after {len(rows)} epochs "
                      f"(Figure 8.5)")
        files.append(drawing)
        from nord.analysis.figures import plot_search_comparison
        figure = folder / "search_curves.png"
        plot_search_comparison({"training": [m["train_accuracy"] for m in rows],
                                "validation": [m["valid_accuracy"] for m in rows]},
                               figure, ylabel="accuracy",
                               title="DARTS search accuracy per epoch (Figures 8.1/8.2)")
        files.append(figure)
        seconds = sum(m["seconds"] for m in rows)
        results = {"epochs": len(rows),
                   "best_train_accuracy": max(m["train_accuracy"] for m in rows),
                   "best_valid_accuracy": max(m["valid_accuracy"] for m in rows),
                   "seconds": seconds, "genotype": genotypes[-1].to_json(),
                   "settings": self.settings()}
        table = folder / "darts_search.md"
        table.write_text(
            "| epochs | best train accuracy | best validation accuracy | time (s) |\n"
            "|---|---|---|---|\n"
            f"| {len(rows)} | {100 * results['best_train_accuracy']:.2f} % | "
            f"{100 * results['best_valid_accuracy']:.2f} % | {seconds:.0f} |\n\n"
            f"genotype: {genotypes[-1].describe()}\n")
        files.append(table)
        text = (f"DARTS search, {len(rows)} epochs in {seconds:.0f} s: best training accuracy "
                f"{100 * results['best_train_accuracy']:.2f} %, validation "
                f"{100 * results['best_valid_accuracy']:.2f} %\n"
                f"genotype: {genotypes[-1].describe()}")
        return StudyOutcome(text, files, results)
