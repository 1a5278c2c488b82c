"""Studies as runs: a fixed list of trials through the run loop, store and executors.

A study (chapters 4-5: train these architectures with these optimizers; run
this genetic algorithm this many times) is not searched, it is enumerated:
its trials are known from its settings. Each trial is a JSON-ready dict of
parameters. :class:`TrialSpace` presents them to the run loop as a search
space whose "architectures" are those dicts and whose descriptors are
:class:`Trial` values; :class:`EnumerationStrategy` asks for them in order.
So a study gets what every search has: results committed one by one to
``<out>/run.sqlite``, a resume after a kill that loses nothing and redoes
nothing finished, parallel workers through any executor, a progress bar.

:func:`run_study` runs one, then hands the finished records to the study's
``analyse``, which writes its tables and figures into the run folder.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from nord.design.spaces.base import SearchSpace
from nord.design.strategies.base import Strategy
from nord.errors import SettingsError, StudyError
from nord.execution.run_loop import ProgressEvent, RunSummary, SearchRun
from nord.execution.store import EvaluationRecord, RunStore

__all__ = ["Trial", "TrialSpace", "EnumerationStrategy", "Study", "StudyOutcome",
           "run_study", "check_resumable", "load_study_settings", "load_study_records",
           "is_study", "report_study", "trials_fingerprint", "check_seed", "check_resamples",
           "STUDY_META_KEY"]

log = logging.getLogger(__name__)

#: the run store's meta key that marks a study (a search stores ``settings``)
STUDY_META_KEY = "study"


@dataclass(frozen=True)
class Trial:
    """One unit of a study's work: the study's name and the trial's parameters.

    It stands where a search evaluates a descriptor: the store keeps its JSON,
    the run loop caches by its hash (two equal trials are one evaluation).
    """

    study: str
    params: Mapping[str, Any]

    def to_json(self) -> str:
        return json.dumps({"study": self.study, "params": dict(self.params)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Trial":
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise StudyError(f"a stored trial is not JSON ({error}); the store is "
                             f"damaged: start the study in another --out folder") from error
        if (not isinstance(data, dict) or not isinstance(data.get("study"), str)
                or not isinstance(data.get("params"), dict)):
            raise StudyError("a stored trial is not {'study': name, 'params': {...}}; the "
                             "store is damaged: start the study in another --out folder")
        return cls(data["study"], data["params"])

    def canonical_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:32]


class TrialSpace(SearchSpace):
    """The trials of one study, in order, as a search space the run loop can walk."""

    name = "trials"

    def __init__(self, study: str, trials: Sequence[Mapping[str, Any]]) -> None:
        if not trials:
            raise SettingsError(f"the {study} study has no trials: its settings select "
                                f"nothing to run")
        self.study = study
        self.trials: List[Dict[str, Any]] = [json.loads(json.dumps(dict(t))) for t in trials]
        keys = [json.dumps(t, sort_keys=True) for t in self.trials]
        if len(set(keys)) != len(keys):
            raise SettingsError(f"the {study} study lists a trial twice; each must differ")

    def sample(self, rng):
        raise StudyError("a study's trials are enumerated, not sampled; use "
                         "EnumerationStrategy")

    def mutate(self, architecture, rng):
        raise StudyError("a study's trials are enumerated, not mutated; use "
                         "EnumerationStrategy")

    def to_descriptor(self, architecture) -> Trial:
        return Trial(self.study, architecture)

    def descriptor_from_json(self, text: str) -> Trial:
        trial = Trial.from_json(text)
        if trial.study != self.study:
            raise StudyError(f"the store holds a trial of the {trial.study} study, not of "
                             f"{self.study}; resume it with nord study {trial.study}")
        return trial

    def describe(self, architecture) -> str:
        return ", ".join(f"{k}={v}" for k, v in architecture.items())

    def settings(self) -> dict:
        return {"study": self.study, "trials": len(self.trials)}


class EnumerationStrategy(Strategy):
    """Asks for the space's trials one after the other; learns nothing."""

    name = "enumeration"

    def __init__(self, space: TrialSpace, rng: Any = None) -> None:
        super().__init__(space, rng)

    def _propose(self):
        if self.next_id >= len(self.space.trials):
            return None
        return self.space.trials[self.next_id]

    def _learn(self, candidate_id: int, architecture: Any, fitness: float) -> None:
        pass


class Study(abc.ABC):
    """What a study is made of. Subclasses hold their settings (JSON-ready, stored
    with the run and compared on resume), list their trials, give the objective
    that evaluates one trial, and analyse the finished records."""

    #: the name ``nord study`` knows it by
    name = ""
    #: trials run one at a time, in order (each starts from what the previous one
    #: left in the run folder, as a DARTS search's epochs do)
    sequential = False

    @abc.abstractmethod
    def settings(self) -> dict:
        """Everything the trials and their results depend on."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "Study":
        """The study whose :meth:`settings` are ``settings`` (a resume rebuilds it so)."""
        return cls(**dict(settings))

    @abc.abstractmethod
    def trials(self) -> List[Dict[str, Any]]:
        """The trials, in the order they are run."""

    @abc.abstractmethod
    def objective(self):
        """An :class:`~nord.execution.objectives.Objective` whose ``evaluate``
        takes a :class:`Trial`; picklable, for process and Ray workers."""

    @abc.abstractmethod
    def analyse(self, records: Sequence[EvaluationRecord], folder: Path) -> "StudyOutcome":
        """Tables and figures from the finished records, written into ``folder``."""


def check_seed(seed) -> int:
    """A study's seed as an int; numpy's seeding takes no negative one."""
    if int(seed) < 0:
        raise SettingsError(f"seed must be 0 or more, got {seed}")
    return int(seed)


def check_resamples(resamples) -> int:
    """Bootstrap resamples of a study's taus as an int (10 or more)."""
    if int(resamples) < 10:
        raise SettingsError(f"resamples must be at least 10, got {resamples}")
    return int(resamples)


@dataclass
class StudyOutcome:
    """What a study's analysis produced: a text for the terminal, the files it
    wrote, and the numbers (JSON-ready) it also saved as ``results.json``."""

    text: str
    files: List[Path]
    results: Dict[str, Any]
    summary: Optional[RunSummary] = None


def _study_meta(meta: Mapping[str, Any], path: Path) -> dict:
    """The study's entry of a store's ``meta``, checked (untrusted: a store from
    anywhere)."""
    if STUDY_META_KEY not in meta:
        if "settings" in meta:
            raise StudyError(f"{path.parent} holds a search run (nord search), not a study; "
                             f"choose another --out for the study")
        raise StudyError(f"{path} holds no study settings (not written by nord study, or "
                         f"damaged); choose another --out")
    stored = meta[STUDY_META_KEY]
    if not isinstance(stored, dict) or not isinstance(stored.get("settings"), dict):
        raise StudyError(f"the study settings in {path} are not a JSON object; the store is "
                         f"damaged: start the study in another --out folder")
    return stored


def _resumable_study(out, name: str) -> dict:
    """The stored entry of the ``name`` study in ``out`` (to resume it)."""
    path = Path(out) / "run.sqlite"
    if not path.exists():
        raise StudyError(f"nothing to resume: {out} holds no study (no run.sqlite); start "
                         f"it without --resume")
    with RunStore(path, create=False) as store:
        stored = _study_meta(store.meta(), path)
    if stored.get("name") != name:
        raise StudyError(f"{out} holds a {stored.get('name')!r} study, not {name!r}; "
                         f"resume it with nord study {stored.get('name')}")
    return stored


def load_study_settings(out, name: str) -> dict:
    """The settings of the ``name`` study stored in ``out`` (to resume it)."""
    return _resumable_study(out, name)["settings"]


def trials_fingerprint(trials: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 of a study's trial list, in order: a resume must walk the same list."""
    text = json.dumps([dict(t) for t in trials], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def check_resumable(study: Study, out) -> None:
    """The study in ``out`` must be ``study``'s kind, with the same settings and the
    same trials (a NORD version that lists them otherwise cannot resume it)."""
    stored = _resumable_study(out, study.name)
    kept, fingerprint = stored["settings"], stored.get("trials_sha256")
    given = _plain(study.settings())
    different = {k: (kept.get(k), v) for k, v in given.items() if kept.get(k) != v}
    different.update({k: (v, None) for k, v in kept.items() if k not in given})
    if different:
        detail = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in different.items())
        raise SettingsError(f"the study in {out} was started with other settings ({detail}); "
                            f"resume with the settings it started with, or start a new study "
                            f"in another --out folder")
    if fingerprint is not None and fingerprint != trials_fingerprint(study.trials()):
        raise StudyError(f"the study in {out} lists other trials than these settings give "
                         f"now (another NORD version, or other data); finish it with the "
                         f"version that started it, or start a new study in another --out")


def _plain(value):
    return json.loads(json.dumps(value))


def run_study(study: Study, out, resume: bool = False, executor: str = "serial",
              workers: int = 1, callbacks: Sequence[Callable[[ProgressEvent], None]] = (),
              **executor_options) -> StudyOutcome:
    """Run ``study`` in ``out`` (or resume it there), then analyse it.

    Every trial goes through :class:`~nord.execution.run_loop.SearchRun`: a
    killed study resumes with ``resume=True`` and redoes only the trials whose
    results were not committed. A finished study resumed again only analyses.
    """
    from nord.execution.executors import make_executor
    from nord.execution.runs import run_folder

    out = Path(out)
    if resume:
        check_resumable(study, out)
    elif (out / "run.sqlite").exists():
        raise SettingsError(f"{out} already holds a run; pass --resume to continue it or "
                            f"choose another --out")
    space = TrialSpace(study.name, study.trials())
    strategy = EnumerationStrategy(space)
    if study.sequential:
        strategy.max_in_flight = 1
    objective = study.objective()
    objective.bind_folder(out)
    objective.prepare()
    meta = {STUDY_META_KEY: {"name": study.name, "settings": _plain(study.settings()),
                             "trials_sha256": trials_fingerprint(space.trials)},
            "space_settings": space.settings()}
    with run_folder(out, meta, resume) as (store, state):
        pool = make_executor(executor, objective, workers=workers, **executor_options)
        try:
            run = SearchRun(strategy, objective, store, len(space.trials), executor=pool,
                            cache=False, callbacks=callbacks)
            state.started = True
            summary = run.run()
        finally:
            pool.close()
        records = store.finished()
    outcome = _analyse(study, records, out)
    outcome.summary = summary
    return outcome


def _analyse(study: Study, records, out: Path) -> StudyOutcome:
    """Check the records, analyse them and write ``results.json``. A trial that
    failed (an exception while evaluating it: a training that diverges is a
    result, recorded by the study itself) stops the analysis, and so do results
    that are not what the study writes (a store from elsewhere)."""
    expected = len(study.trials())
    if len(records) < expected:
        raise StudyError(f"the {study.name} study in {out} holds {len(records)} of its "
                         f"{expected} results; finish it with nord study {study.name} "
                         f"--resume --out {out}")
    failed = [r for r in records if r.status not in ("ok", "cached")]
    if failed:
        first = failed[0]
        reason = (first.error or "").splitlines()[0] if first.error else "no reason recorded"
        raise StudyError(f"{len(failed)} of {len(records)} trials of the {study.name} study "
                         f"failed (first: trial {first.id}, {first.status}: {reason}); the "
                         f"results of the others are kept in {out / 'run.sqlite'}: fix the "
                         f"cause and start the study again in another --out")
    try:
        outcome = study.analyse(records, out)
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        raise StudyError(f"the results in {out / 'run.sqlite'} are not what the "
                         f"{study.name} study writes ({type(error).__name__}: {error}); the "
                         f"store is damaged or from another NORD version: run the study "
                         f"again in another --out") from error
    path = out / "results.json"
    path.write_text(json.dumps(_finite(outcome.results), indent=2, sort_keys=True,
                               allow_nan=False))
    if path not in outcome.files:
        outcome.files.append(path)
    return outcome


def _finite(value):
    """``value`` with every NaN or infinity replaced by ``None`` (standard JSON)."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def is_study(out) -> bool:
    """Whether ``out`` holds a study's run store."""
    path = Path(out) / "run.sqlite"
    if not path.exists():
        return False
    with RunStore(path, create=False) as store:
        return STUDY_META_KEY in store.meta()


def report_study(out) -> StudyOutcome:
    """Analyse the study stored in ``out`` again (tables, figures, results.json)."""
    from nord.studies import STUDIES
    name, settings, records = load_study_records(out)
    if name not in STUDIES:
        raise StudyError(f"{out} holds a {name!r} study, which this NORD does not know; "
                         f"studies: {', '.join(STUDIES.names())}")
    return _analyse(STUDIES[name].from_settings(settings), records, Path(out))


def load_study_records(out) -> tuple:
    """``(name, settings, records)`` of the study stored in ``out``, read only."""
    path = Path(out) / "run.sqlite"
    if not path.exists():
        raise StudyError(f"{out} is not a study folder (no run.sqlite); run nord study "
                         f"... --out {out} first")
    with RunStore(path, create=False) as store:
        stored = _study_meta(store.meta(), path)
        records = store.finished()
    return stored.get("name"), stored["settings"], records
