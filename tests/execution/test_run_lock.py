"""The run lock (a filelock.FileLock): one search per folder, released when its process dies."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nord.errors import SettingsError
from nord.execution.runs import RunLock

ROOT = Path(__file__).resolve().parents[2]
HOLD = ("import sys, time\n"
        "from nord.execution.runs import RunLock\n"
        "lock = RunLock(sys.argv[1]).__enter__()\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n")


def test_a_folder_locked_by_a_live_process_is_refused_until_that_process_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        for _ in range(2):  # a refused attempt leaves the holder's PID in place
            with pytest.raises(SettingsError, match=rf"{tmp_path} is in use by a search running "
                                                    rf"now \(PID {holder.pid}\); wait for it"):
                with RunLock(tmp_path):
                    pass
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the file stays behind
        holder.wait()
    assert (tmp_path / "run.lock").exists()
    with RunLock(tmp_path):  # the dead holder's lock went with it
        assert (tmp_path / "run.lock").read_text() == str(os.getpid())
    assert not (tmp_path / "run.lock").exists()


def test_the_lock_is_held_against_other_locks_of_the_same_process(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(SettingsError, match=rf"PID {os.getpid()}"):
            RunLock(tmp_path).__enter__()
    with RunLock(tmp_path):  # released on leaving: taken again at once
        pass
