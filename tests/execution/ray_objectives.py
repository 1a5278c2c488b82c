"""Objectives for the Ray executor's tests, in a module Ray workers can import."""

import os
import time

from nord.errors import DataNotFoundError
from nord.execution.objectives import Outcome
from tests.toy_search import ToyObjective


class CountingObjective(ToyObjective):
    """Reports how often this copy of the objective was prepared and called, and where."""

    def __init__(self):
        super().__init__()
        self.prepared = 0

    def prepare(self):
        self.prepared += 1

    def evaluate(self, descriptor):
        outcome = super().evaluate(descriptor)
        return Outcome(outcome.fitness, {"calls": self.calls, "prepared": self.prepared,
                                         "pid": os.getpid()})


class MissingDataObjective(ToyObjective):
    """Fails as a whole set-up does: the data it needs is not there."""

    def evaluate(self, descriptor):
        raise DataNotFoundError("no data at /nowhere: set NORD_DATA")


class StallOnceObjective(ToyObjective):
    """The first evaluation of a run (whichever worker takes it) writes its worker's pid
    to ``marker`` and stalls until that worker is killed; every other one is quick."""

    def __init__(self, marker):
        super().__init__()
        self.marker = str(marker)

    def evaluate(self, descriptor):
        try:
            handle = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return super().evaluate(descriptor)
        os.write(handle, f"{os.getpid()}\n".encode())
        os.close(handle)
        time.sleep(60)  # the test kills this worker long before
        return super().evaluate(descriptor)
