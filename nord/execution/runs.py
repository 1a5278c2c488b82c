"""Building a search run from plain settings (what ``nord search`` does).

:class:`SearchSettings` holds everything a run is made of; it is saved in the
run's store, so ``resume`` rebuilds the same space, strategy and objective
from the store alone.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from nord.design.spaces import get_space
from nord.design.strategies import make_strategy
from nord.errors import NordError, SettingsError
from nord.execution.executors import make_executor
from nord.execution.objectives import NASBench101Objective, make_objective
from nord.execution.run_loop import ProgressEvent, RunSummary, SearchRun
from nord.execution.store import ReadOnlyStoreError, RunStore, StoreError

__all__ = ["SearchSettings", "run_search", "run_folder", "STORE_NAME", "SettingsError"]

log = logging.getLogger(__name__)
STORE_NAME = "run.sqlite"
#: spaces whose candidates can be looked up in a benchmark table
TABLE_SPACES = ("nasbench101", "nasbench201")
#: cells in the complete NAS-Bench-101 space
NASBENCH101_CELLS = 423_624


@dataclass(frozen=True)
class SearchSettings:
    """One search: what is searched, how, for how long, and where it is stored.

    ``fitness`` is a NAS-Bench-201 table column (``cifar10_valid_valid_12ep``)
    or, for NAS-Bench-101, ``<accuracy>@<epochs>`` (``validation_accuracy@108``);
    ``None`` picks the space's default. ``table`` is the benchmark table's path
    (default: found through ``$NORD_DATA``). ``space_options`` and
    ``strategy_options`` go to the space's and strategy's constructors.
    """

    space: str = "nasbench201"
    strategy: str = "evolution"
    budget: int = 150
    population: int = 10
    sample: int = 3
    seed: int = 0
    fitness: Optional[str] = None
    report: Sequence[str] = ()
    cache: bool = True
    table: Optional[str] = None
    executor: str = "serial"
    workers: int = 1
    ray_address: Optional[str] = None
    gpus: float = 0.0
    synchronous: bool = False
    cycle_size: Optional[int] = None
    threads: Optional[int] = None
    space_options: Dict[str, Any] = field(default_factory=dict)
    strategy_options: Dict[str, Any] = field(default_factory=dict)
    objective: Optional[str] = None
    objective_options: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["report"] = list(self.report)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SearchSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    # ---------------------------------------------------------------- parts
    def check(self) -> None:
        """Refuse worker and GPU settings that cannot work, naming the flag to use."""
        if not isinstance(self.workers, int) or self.workers < 1:
            raise SettingsError(f"--workers {self.workers}: at least one evaluation must be "
                                f"in flight; use --workers 1 (the serial executor) or more "
                                f"with --executor process or ray")
        if self.executor == "serial" and self.workers != 1:
            raise SettingsError(f"the serial executor runs one evaluation at a time; for "
                                f"--workers {self.workers} choose --executor process or ray")
        for name in ("threads", "cycle_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SettingsError(f"--{name.replace('_', '-')} must be at least 1, got "
                                    f"{value}; leave it out for the default")
        if self.gpus and self.executor != "ray":
            where = ("trains on the visible GPU (choose it with CUDA_VISIBLE_DEVICES)"
                     if self.executor == "serial" else
                     "gives its workers the visible GPUs in turn")
            raise SettingsError(f"--gpus {self.gpus} applies to the Ray executor only (GPUs "
                                f"per evaluation): add --executor ray, or leave --gpus out; "
                                f"the {self.executor} executor {where}")
        if self.gpus < 0:
            raise SettingsError(f"--gpus must be 0 or more (GPUs per Ray evaluation), got "
                                f"{self.gpus}")

    def resolved(self) -> "SearchSettings":
        """These settings with the defaults that depend on others written out, as a
        run stores them: a synchronous cycle is ``workers`` children unless
        ``cycle_size`` says otherwise, and a resumed run keeps that cycle even
        if it is resumed with another number of workers."""
        if self.synchronous and self.cycle_size is None:
            return dataclasses.replace(self, cycle_size=self.workers)
        return self

    def executor_options(self) -> dict:
        """``threads``: torch threads per evaluation. CPU training gives the same
        numbers for the same seed only at the same thread count, so fix it to
        compare runs with different ``workers`` (default: the cores shared out)."""
        options = {"threads": self.threads} if self.threads is not None else {}
        if self.executor == "ray":
            options.update(address=self.ray_address, gpus=self.gpus)
        return options

    def build_objective(self):
        """The space's benchmark table, or ``objective='training'``: train each
        candidate with ``LocalEvaluator`` (``objective_options``: dataset,
        epochs, data_percentage, optimizer, batch_size, seed, ...). The ``gcn``
        space's fitness is the ``predictor`` objective (a trained ranker's
        Kendall tau; ``objective_options``: dataset, size, train, epsilon,
        epochs, lr, weight_decay, batch_size, seed; ``table`` is its
        NAS-Bench-101 table)."""
        self.check()
        if self.objective == "predictor" or (self.objective is None and self.space == "gcn"):
            return self._predictor_objective()
        if self.objective == "training" or (self.objective is None
                                            and self.space not in TABLE_SPACES):
            ignored = [name for name, value in (("fitness", self.fitness), ("table", self.table),
                                                ("report", self.report)) if value]
            if ignored:
                raise SettingsError(
                    f"{', '.join(ignored)} name{'s' if len(ignored) == 1 else ''} benchmark-table "
                    f"columns, but the {self.space} space trains its candidates (fitness: the "
                    f"trained network's accuracy); leave "
                    f"{', '.join('--' + n for n in ignored)} out")
            # the search's seed also seeds training, unless the options name one
            options = {"seed": self.seed, **self.objective_options}
            return make_objective("training", **options)
        if self.objective not in (None, "table"):
            raise SettingsError(f"unknown objective {self.objective!r}; use 'table' (the "
                                f"benchmark's table), 'training' or, for the gcn space, "
                                f"'predictor'")
        if self.objective_options:
            flags = ", ".join(sorted(self.objective_options))
            raise SettingsError(f"the {self.space} space is scored from its benchmark table, so "
                                f"training options ({flags}) do not apply; leave them out "
                                f"(or pass objective='training' to train its cells)")
        if self.space == "nasbench201":
            report = list(self.report) or ["cifar10_test_200ep"]
            return make_objective("nasbench201", fitness=self.fitness or "cifar10_valid_valid_200ep",
                                  report=report, path=self.table)
        if self.space == "nasbench101":
            acc, _, epochs = (self.fitness or "validation_accuracy@108").partition("@")
            if not epochs.isdigit():
                raise SettingsError(f"NAS-Bench-101 fitness is <accuracy>@<epochs>, e.g. "
                                    f"validation_accuracy@108; got {self.fitness!r}")
            return make_objective("nasbench101", acc=acc, epochs=int(epochs),
                                  path=self.table)
        raise SettingsError(f"no benchmark table for the space {self.space!r}; pass "
                            f"objective='training' to train its candidates")

    def _predictor_objective(self):
        """The ``predictor`` objective of a ``gcn`` search (chapter 7)."""
        if self.space != "gcn":
            raise SettingsError(f"the predictor objective scores GCN rankers (genomes of the "
                                f"gcn space), not {self.space} architectures; use it with "
                                f"--space gcn")
        ignored = [name for name, value in (("fitness", self.fitness),
                                            ("report", self.report)) if value]
        if ignored:
            raise SettingsError(f"{', '.join('--' + n for n in ignored)}: the gcn space's "
                                f"fitness is the trained ranker's Kendall tau (its top-50 % "
                                f"tau and parameters are recorded too); leave them out")
        options = {"seed": self.seed, **self.objective_options}
        if self.table is not None:
            options.setdefault("table", self.table)
        return make_objective("predictor", **options)

    def build_space(self, objective=None):
        """The space; for NAS-Bench-101 ``held_only`` defaults to whether the
        loaded table is a subset, and then the mutation to ``nasbench`` (listing
        3.6's rules only grow cells, and the subset's cells are mostly maximal,
        so they would almost never reach another held cell). The ``gcn`` space's
        standard width F defaults to ``SEARCH_FILTERS`` (32, so that a CPU
        evaluates a genome in seconds; the thesis's 300 with
        ``space_options={'filters': 300}``)."""
        options = dict(self.space_options)
        if self.space == "gcn":
            from nord.execution.predictor_objective import SEARCH_FILTERS
            options.setdefault("filters", SEARCH_FILTERS)
        if self.space == "nasbench101" and isinstance(objective, NASBench101Objective):
            if options.get("held_only") is None:
                options["held_only"] = len(objective.evaluator) < NASBENCH101_CELLS
            if options["held_only"]:
                options.setdefault("evaluator", objective.evaluator)
                options.setdefault("mutation", "nasbench")
        return get_space(self.space, **options)

    def build_strategy(self, space):
        if self.cycle_size is not None and not self.synchronous:
            raise SettingsError(f"cycle_size {self.cycle_size} applies only to synchronous "
                                f"evolution; add --synchronous or leave --cycle-size out")
        options = dict(self.strategy_options)
        if self.strategy == "evolution":
            options.setdefault("population_size", self.population)
            options.setdefault("sample_size", self.sample)
            if self.synchronous:
                options.setdefault("synchronous", True)
                options.setdefault("cycle_size", self.resolved().cycle_size)
        return make_strategy(self.strategy, space, rng=self.seed, **options)


#: settings a resumed run may change
RESUME_OVERRIDABLE = ("budget", "table", "executor", "workers", "ray_address", "gpus",
                      "threads")


def _resumed_settings(stored: SearchSettings, explicit: Dict[str, Any],
                      path="the run store") -> SearchSettings:
    different = {name: value for name, value in explicit.items()
                 if name not in RESUME_OVERRIDABLE and getattr(stored, name) != value}
    if different:
        detail = ", ".join(f"{name}: stored {getattr(stored, name)!r}, given {value!r}"
                           for name, value in different.items())
        raise SettingsError(f"this run was started with other settings ({detail}); resume "
                            f"without them or start a new run in another --out folder")
    changes = {k: v for k, v in explicit.items() if k in RESUME_OVERRIDABLE}
    if changes.get("budget", stored.budget) < stored.budget:
        raise SettingsError(f"--budget {changes['budget']} is lower than this run's budget "
                            f"{stored.budget} (stored in {path}); a budget can only be "
                            f"raised: resume without --budget to finish the {stored.budget} "
                            f"evaluations, or give {stored.budget} or more")
    return dataclasses.replace(stored, **changes)


def run_search(settings: Optional[SearchSettings], out, resume: bool = False,
               callbacks: Sequence[Callable[[ProgressEvent], None]] = (),
               explicit: Optional[Dict[str, Any]] = None) -> RunSummary:
    """Start a search in ``out`` (or resume the one there) and run it to its budget.

    On ``resume`` the stored settings are used (``settings`` may be ``None``);
    ``explicit`` holds the settings the user typed: the budget may be raised,
    the table path and executor changed, anything else must match the run.
    """
    path = Path(out) / STORE_NAME
    if resume:
        if not path.exists():
            raise SettingsError(f"nothing to resume: no {STORE_NAME} in {out}")
        with RunStore(path, create=False) as existing:
            meta = existing.meta()
        if "settings" not in meta:
            raise SettingsError(f"{path} holds no search settings (a start killed before it "
                                f"wrote them, or not written by nord search); start the run "
                                f"anew, without --resume")
        if not isinstance(meta["settings"], dict):
            raise StoreError(f"the settings in {path} are not a JSON object; the store is "
                             f"damaged: start a new run in another --out folder")
        # resolved first: a run stored before cycle_size was written out keeps the
        # cycle of the workers it was started with
        settings = _resumed_settings(SearchSettings.from_dict(meta["settings"]).resolved(),
                                     dict(explicit or {}), path)
    elif settings is None:
        raise SettingsError("settings are needed to start a run")
    elif path.exists() and not _discard_if_empty(path):
        raise SettingsError(f"{out} already holds a run; pass --resume to continue it or "
                            f"choose another --out")
    settings.check()
    settings = settings.resolved()
    # build everything before touching the store, so a bad setting leaves no file
    objective = settings.build_objective()
    space = settings.build_space(objective)
    _check_data_fits(space, objective)  # before loading data: the cheaper check first
    objective.prepare()
    strategy = settings.build_strategy(space)
    stored = {"settings": settings.to_dict(), "space_settings": space.settings()}
    with run_folder(out, stored, resume) as (store, run):
        if resume:
            _check_state_loads(store, strategy)
        executor = make_executor(settings.executor, objective, workers=settings.workers,
                                 **settings.executor_options())
        try:
            search = SearchRun(strategy, objective, store, settings.budget, executor=executor,
                               cache=settings.cache, callbacks=callbacks)
            if resume:
                store.set_meta(**stored)
            run.started = True
            summary = search.run()
        finally:
            executor.close()
        store.set_meta(summary={
            "evaluations": summary.evaluations, "statuses": summary.statuses,
            "strategy_seconds_per_step": summary.strategy_seconds_per_step,
            "store_seconds_per_step": summary.store_seconds_per_step,
            "simulated_cost": summary.simulated_cost})
        return summary


class _RunState:
    started = False  # set once the run loop begins: from then on the store is kept


@contextmanager
def run_folder(out, meta: dict, resume: bool = False) -> Iterator[Tuple[RunStore, _RunState]]:
    """Hold ``<out>`` for a run and open its store: a new store is created holding
    ``meta`` (so a start killed at any moment leaves no store or one that
    resumes); on ``resume`` the existing one is opened and must be writable.
    Yields ``(store, state)``: set ``state.started = True`` when the run loop
    begins; if set-up fails before that, a new run leaves no store (and no new
    folder) behind. Searches and studies both run in one of these."""
    folder = Path(out)
    path = folder / STORE_NAME
    new_folder = not folder.exists()
    state = _RunState()
    try:
        with RunLock(folder):
            if not resume and path.exists():  # another start got here first
                raise SettingsError(f"{out} already holds a run; pass --resume to continue "
                                    f"it or choose another --out")
            RunStore.discard_unfinished(path)  # left by a start that was killed
            store = RunStore(path, meta=None if resume else meta)
            try:
                if resume:
                    store.check_writable()
                yield store, state
            finally:
                store.close()
                if not state.started and not resume:  # set-up failed: leave no run behind
                    _remove_store(path)
    finally:
        if new_folder and not state.started and not resume:
            _remove_if_empty(folder)


def _discard_if_empty(path: Path) -> bool:
    """Remove a store that holds no settings and no evaluation (what a start killed
    before its settings were written left behind, before stores were created
    whole); True if it was removed. Anything else is kept."""
    try:
        empty = path.stat().st_size == 0
        if not empty:
            with RunStore(path, create=False) as existing:
                empty = "settings" not in existing.meta() and existing.count() == 0
    except (NordError, OSError):
        return False  # damaged or unreadable: not ours to delete
    if empty:
        log.warning("removing %s: an empty store left by a start that was killed", path)
        _remove_store(path)
    return empty


def _remove_store(path: Path) -> None:
    """Delete a store file and SQLite's log files beside it."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _check_data_fits(space, objective) -> None:
    """A space of image networks cannot train on 1-D data (and so on): say so now."""
    rank = getattr(objective, "input_rank", None)
    if space.input_rank is None or rank is None:
        return
    if rank() != space.input_rank:
        raise SettingsError(
            f"the {space.name} space builds networks for {space.input_rank}-D inputs, but "
            f"dataset {objective.dataset!r} has {rank()}-D inputs; choose another --dataset "
            f"or space")


def _check_state_loads(store: RunStore, strategy) -> None:
    """The stored strategy state must load into the strategy these settings build."""
    state = store.load_state()
    if state is None:
        return
    try:
        strategy.load_state_dict(state)
    except KeyError as error:
        name = getattr(strategy, "name", type(strategy).__name__)
        raise StoreError(f"the {name} strategy state in {store.path} lacks the key "
                         f"{error}; the store is damaged or from an incompatible NORD "
                         f"version: start a new run in another --out folder") from error


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (or already gone): leave it


class RunLock:
    """Holds ``<folder>/run.lock`` while a search writes there, so a second
    ``nord search`` on the same folder stops at once instead of interleaving
    its evaluations with the first one's. The lock is a :class:`filelock.FileLock`
    (``flock`` on Unix, ``msvcrt`` locking on Windows): it goes with the process,
    so a killed run never leaves the folder locked. The file holds the PID of
    the search holding it, for the message the second one stops with."""

    NAME = "run.lock"

    def __init__(self, folder) -> None:
        self.path = Path(folder) / self.NAME
        self._lock = None

    def __enter__(self) -> "RunLock":
        from filelock import FileLock, Timeout  # only a search pays for importing it
        lock = FileLock(str(self.path), timeout=0)  # timeout 0: never wait for the holder
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except Timeout:
            raise SettingsError(f"{self.path.parent} is in use by a search running now "
                                f"(PID {self._holder()}); wait for it to finish, or choose "
                                f"another --out") from None
        except OSError as error:
            self._raise_if_read_only(error)
            raise
        try:
            self.path.write_text(str(os.getpid()))
        except OSError as error:
            lock.release()
            self._raise_if_read_only(error)
            raise
        self._lock = lock
        return self

    def _holder(self) -> str:
        """The PID the holder wrote into the lock file (if it can be read)."""
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def _raise_if_read_only(self, error: OSError) -> None:
        """Stop with :class:`ReadOnlyStoreError` if creating or writing the lock failed
        because the folder cannot be written."""
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ReadOnlyStoreError(f"{self.path.parent} is read-only ({error.strerror}); a "
                                     f"search writes its run there: make it writable (chmod "
                                     f"-R u+w {self.path.parent}) or choose another --out"
                                     ) from error

    def __exit__(self, *exc) -> None:
        if self._lock is None:
            return
        removed = self._remove()  # while still held: no other search can lock it meanwhile
        self._lock.release()
        self._lock = None
        if not removed:  # Windows removes no file that is open
            self._remove()

    def _remove(self) -> bool:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            return False
        return True
