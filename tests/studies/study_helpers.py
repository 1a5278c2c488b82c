"""Helpers shared by the study tests."""

from pathlib import Path

import pytest

from nord.execution.store import RunStore
from nord.studies.base import run_study


class Killed(Exception):
    """Stands for the kill of a study run: raised from a progress callback."""


def kill_after(study, folder: Path, trials: int) -> None:
    """Run ``study`` in ``folder`` and stop it (as a kill would) once ``trials``
    results are committed; check that exactly those are in the store."""
    def stop(event):
        if event.done == trials:
            raise Killed

    with pytest.raises(Killed):
        run_study(study, folder, callbacks=[stop])
    with RunStore(Path(folder) / "run.sqlite", create=False) as store:
        assert len(store.finished()) == trials
