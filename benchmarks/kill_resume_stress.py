"""Kill-and-resume stress test: SIGKILL a NAS-Bench-201 search at random moments.

A search (``nord search``, NAS-Bench-201 table, regularized evolution) is
started, killed with SIGKILL, resumed (or started again when the kill came
before a run existed), killed again, and so on ``--kills`` times; then it is
resumed to the end and compared with an uninterrupted run of the same
settings in the same script. The kill moments come from a seeded generator: a
third fall in start-up (0–100 ms after the run folder is locked, while the
store is being created), the rest mid-search after a random number of new
results. Then ``--startup-kills`` new runs, each in a fresh folder, are
killed 0–100 ms after locking theirs and must either have left no run (and
start again) or resume; each must end equal to the uninterrupted run.

It prints, and exits non-zero unless all hold:

* kills survived: every killed folder either held no run (started again) or
  resumed; none was left unusable;
* results lost: results committed before a kill that were missing or changed
  at the end (must be 0);
* results repeated: committed results evaluated again (must be 0); the
  evaluations in flight at the kills (pending rows) are re-run, and counted
  separately;
* the final store equals the uninterrupted run's: same ids, architectures,
  statuses and fitnesses;
* with ``--executor process``: worker processes still alive 5 s after their
  parent was killed (must be 0).

Run: python benchmarks/kill_resume_stress.py [--kills 30] [--budget 3000]
     python benchmarks/kill_resume_stress.py --kills 10 --budget 600 --executor process --workers 2
The process executor runs synchronous cycles (``--synchronous --cycle-size``),
the mode whose result does not depend on timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nord.execution.process_pool import descendants

ROOT = Path(__file__).resolve().parents[1]
STORE = "run.sqlite"


def search_command(args, out: Path, resume: bool) -> list:
    command = [sys.executable, "-m", "nord", "search", "--space", "nasbench201",
               "--budget", str(args.budget), "--seed", str(args.seed), "--out", str(out),
               "--quiet"]
    if args.executor == "process":
        command += ["--executor", "process", "--workers", str(args.workers),
                    "--synchronous", "--cycle-size", str(args.workers)]
    return command + (["--resume"] if resume else [])


def rows(path: Path) -> dict:
    """id -> (architecture, status, fitness, finished_at) of every finished row."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {id_: (arch, status, fitness, finished)
                for id_, arch, status, fitness, finished in db.execute(
                    "SELECT id, architecture, status, fitness, finished_at FROM evaluations "
                    "WHERE status != 'pending'")}
    except sqlite3.DatabaseError:
        return {}
    finally:
        db.close()


def pending(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'pending'").fetchone()[0]
    except sqlite3.DatabaseError:
        return 0
    finally:
        db.close()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(process, below, condition, interval: float = 0.002,
               timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds or ``process`` ends; where ``below`` is a
    set, note the process's descendants in it on the way."""
    end = time.perf_counter() + timeout
    while process.poll() is None and not condition() and time.perf_counter() < end:
        if below is not None:
            below |= set(descendants(process.pid))
        time.sleep(interval)


def run(command, env, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs in all")
    parser.add_argument("--startup-kills", type=int, default=10,
                        help="new runs killed during start-up, each in a folder of its own")
    parser.add_argument("--budget", type=int, default=3000, help="evaluations of the search")
    parser.add_argument("--seed", type=int, default=0, help="search seed")
    parser.add_argument("--kill-seed", type=int, default=1, help="seed of the kill moments")
    parser.add_argument("--executor", choices=("serial", "process"), default="serial")
    parser.add_argument("--workers", type=int, default=2, help="process executor workers")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("NORD_DATA", str(ROOT.parent / "shared" / "data"))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    work = Path(tempfile.mkdtemp(prefix="nord-kill-stress-"))
    reference, killed = work / "reference", work / "killed"
    try:
        t0 = time.perf_counter()
        done = run(search_command(args, reference, resume=False), env)
        run_seconds = time.perf_counter() - t0
        if done.returncode != 0:
            print(done.stdout, done.stderr, sep="\n")
            return 1
        want = rows(reference / STORE)
        print(f"uninterrupted run: {len(want)} evaluations in {run_seconds:.1f} s "
              f"(start-up included)")

        rng = np.random.default_rng(args.kill_seed)
        committed: dict = {}
        restarts = resumes = unusable = in_flight = orphans = kills = 0
        moments = {"start-up": 0, "mid-run": 0}
        for _ in range(args.kills):
            resume = (killed / STORE).exists()
            process = subprocess.Popen(search_command(args, killed, resume), env=env, cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
            below = set() if args.executor == "process" else None
            if rng.random() < 1 / 3:  # a start-up kill: just after the run folder is locked
                moment, lock = "start-up", killed / "run.lock"
                wait_until(process, below, lambda: lock.exists())
                delay_end = time.perf_counter() + float(rng.uniform(0.0, 0.1))
                wait_until(process, below, lambda: time.perf_counter() >= delay_end)
            else:  # a kill in the middle of the search, after a random number of results
                moment = "mid-run"
                target = len(committed) + int(rng.integers(1, max(2, 2 * args.budget // args.kills)))
                wait_until(process, below, lambda: len(rows(killed / STORE)) >= target,
                           interval=0.005)
            if process.poll() is not None:  # finished before the kill
                if process.returncode != 0:
                    unusable += 1
                    print(f"a {'resumed' if resume else 'new'} run failed:\n{process.stderr.read()}")
                break
            moments[moment] += 1
            if below is not None:
                below |= set(descendants(process.pid))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            resumes += resume
            restarts += not resume
            end = time.time() + 5
            while below and time.time() < end and any(alive(p) for p in below):
                time.sleep(0.1)
            survivors = [p for p in below or () if alive(p)]
            orphans += len(survivors)
            for p in survivors:  # do not leak them into the next round
                os.kill(p, signal.SIGKILL)
            now = rows(killed / STORE)
            in_flight += pending(killed / STORE)
            for id_, row in now.items():
                committed.setdefault(id_, row)
        # start-ups of new runs killed in the window where the store is being created
        fresh_left = fresh_resumed = fresh_unusable = 0
        for index in range(args.startup_kills):
            folder = work / f"fresh-{index}"
            process = subprocess.Popen(search_command(args, folder, False), env=env, cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_until(process, None, lambda: (folder / "run.lock").exists())
            delay_end = time.perf_counter() + float(rng.uniform(0.0, 0.1))
            wait_until(process, None, lambda: time.perf_counter() >= delay_end)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            resume = (folder / STORE).exists()
            fresh_resumed += resume
            fresh_left += not resume
            again = run(search_command(args, folder, resume), env)
            if again.returncode != 0 or \
                    {k: v[:3] for k, v in rows(folder / STORE).items()} != \
                    {k: v[:3] for k, v in want.items()}:
                fresh_unusable += 1
                print(f"a new run killed in start-up could not be "
                      f"{'resumed' if resume else 'started again'}:\n{again.stderr}")
            shutil.rmtree(folder, ignore_errors=True)
        unusable += fresh_unusable

        final = run(search_command(args, killed, (killed / STORE).exists()), env)
        if final.returncode != 0:
            unusable += 1
            print(f"the final resume failed:\n{final.stdout}\n{final.stderr}")
        got = rows(killed / STORE)
        lost = sum(1 for id_, row in committed.items() if id_ not in got)
        repeated = sum(1 for id_, row in committed.items() if id_ in got and got[id_] != row)
        same = ({k: v[:3] for k, v in got.items()} == {k: v[:3] for k, v in want.items()})
        print(f"kills: {kills} ({moments['start-up']} during start-up, {moments['mid-run']} "
              f"mid-run; {restarts} of a new run, {resumes} of a resumed one)")
        print(f"new runs killed during start-up: {args.startup_kills} ({fresh_left} left no "
              f"run and started again, {fresh_resumed} resumed, {fresh_unusable} unusable)")
        print(f"kills survived: {kills + args.startup_kills - unusable}/"
              f"{kills + args.startup_kills}")
        print(f"results committed before a kill: {len(committed)}; lost: {lost}; "
              f"evaluated again: {repeated}")
        print(f"evaluations in flight at a kill (run again on resume): {in_flight}")
        if args.executor == "process":
            print(f"worker processes alive 5 s after their parent was killed: {orphans}")
        print(f"final store equals the uninterrupted run ({len(want)} evaluations): {same}")
        ok = not unusable and not lost and not repeated and same and not orphans
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"run folders kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
