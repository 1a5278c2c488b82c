"""A local process pool: every core of one machine evaluating at once.

``W`` worker processes started with the ``spawn`` method (safe with torch's
thread pools), each fed its tasks over its own pipe, so the pool always knows
which worker is evaluating which candidate. Each worker loads the objective
once and limits torch to its share of the cores, so ``W`` workers on ``C``
cores use ``C // W`` threads each instead of fighting over all of them. On a
machine with GPUs the workers take the visible GPUs in turn (worker ``i``
uses GPU ``i mod G``; ``CUDA_VISIBLE_DEVICES`` chooses which GPUs are
visible), so ``W = G`` workers evaluate one candidate per GPU as the thesis's
chapter 6 did on four GPUs.

A worker that dies (killed, out of memory) is replaced by a new one in its
place; only the candidate it was evaluating is charged an attempt and queued
again, up to ``max_retries`` times, after which it comes back as a ``failed``
result that says so. The other workers go on undisturbed. Each result carries
its ``attempts`` (1 for an evaluation no worker death touched).

Workers never outlive the process that started them: on Linux the kernel
signals a worker when its parent dies (``PR_SET_PDEATHSIG``), and on every
system a thread in the worker checks for its parent every half second; either
way the worker kills the processes it started (on Linux, all its descendants)
and exits. Worker processes are started from one long-lived thread, so the
signal means the parent process died, not merely the thread that called
``submit``. A worker stuck in C code that holds Python's lock cannot act on
either; that is the one case left uncovered.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from multiprocessing import util as mp_util
from multiprocessing.connection import wait as wait_for
from typing import Any, Deque, Dict, List, Optional

from nord.errors import ExecutorError, SettingsError, WorkerStartError
from nord.execution.executors import Executor
from nord.execution.tasks import (FAILED_FITNESS, Task, TaskResult, prepare_in_worker,
                                  run_task, set_worker_device, worker_name)

__all__ = ["ProcessPoolExecutor", "threads_per_worker", "worker_gpu", "descendants"]

log = logging.getLogger(__name__)

_objective = None  # the objective, one copy per worker process
_worker_index: Optional[int] = None  # this worker's number in its pool, 0 .. W-1

_PARENT_CHECK_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def threads_per_worker(workers: int, cores: Optional[int] = None) -> int:
    """Each worker's share of the cores (at least one thread)."""
    if cores is None:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count()) or 1
    return max(1, int(cores) // max(1, int(workers)))


def worker_gpu(index: int, gpu_count: int) -> Optional[int]:
    """The GPU pool worker ``index`` uses when ``gpu_count`` are visible (``None``: none)."""
    return int(index) % int(gpu_count) if gpu_count > 0 else None


# ----------------------------------------------------------------- the worker side
def descendants(pid: int) -> List[int]:
    """Every live process below ``pid`` (read from ``/proc``; none where there is none)."""
    try:
        entries = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    children: Dict[int, List[int]] = {}
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        children.setdefault(ppid, []).append(entry)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it has ended already, which is what we want


def _exit_with_descendants(*_) -> None:
    """Stop every process this one started (so none can start more), kill them, exit."""
    stopped: set = set()
    while True:
        new = [pid for pid in descendants(os.getpid()) if pid not in stopped]
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
            stopped.add(pid)
    for pid in stopped:
        _signal(pid, signal.SIGKILL)
    os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        if os.getppid() != parent_pid:
            _exit_with_descendants()


def _guard_against_orphaning(parent_pid: int) -> None:
    """Make this worker (and what it starts) exit when the pool's process dies."""
    signal.signal(signal.SIGTERM, _exit_with_descendants)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), ctypes.c_ulong(0),
                          ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d); relying on the "
                            "parent check alone", ctypes.get_errno())
        except (OSError, AttributeError) as error:
            log.warning("prctl is not available (%s); relying on the parent check alone", error)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        _exit_with_descendants()
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                     name="nord-parent-watch").start()


def _start_worker(objective, threads: int, index: int) -> None:
    global _objective, _worker_index
    import torch
    torch.set_num_threads(threads)
    _worker_index = index
    gpu = worker_gpu(index, torch.cuda.device_count())
    if gpu is not None:
        torch.cuda.set_device(gpu)  # 'cuda' now means this GPU in this worker
        set_worker_device(f"cuda:{gpu}")
    _objective = objective
    prepare_in_worker(objective)


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling both ways, else a RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _worker_main(conn, objective, threads: int, index: int, parent_pid: int) -> None:
    """A worker's life: start, say ready, then evaluate each task sent until told to stop."""
    _guard_against_orphaning(parent_pid)
    try:
        _start_worker(objective, threads, index)
    except BaseException as error:
        conn.send(("init_error", _portable(error), traceback.format_exc()))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the pool is gone
        if task is None:
            return
        conn.send(("start", task.id))
        try:
            message = ("result", run_task(_objective, task))
        except BaseException as error:  # a set-up error: the parent raises it
            message = ("error", task.id, _portable(error), traceback.format_exc())
        try:
            conn.send(message)
        except Exception as error:  # a result that does not pickle
            conn.send(("error", task.id, _portable(error), traceback.format_exc()))


# ----------------------------------------------------------------- the parent side
class _Spawner:
    """Starts processes from one thread that lives as long as this process.

    On Linux a worker's parent-death signal fires when the *thread* that
    started it ends; starting every worker here makes that mean the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: "queue.SimpleQueue" = queue.SimpleQueue()
        self._pid: Optional[int] = None

    def start(self, process) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked copy of this process
                self._requests = queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(self._requests,), daemon=True,
                                 name="nord-pool-spawner").start()
                self._pid = os.getpid()
        done: "queue.SimpleQueue" = queue.SimpleQueue()
        self._requests.put((process, done))
        error = done.get()
        if error is not None:
            raise error

    @staticmethod
    def _serve(requests) -> None:
        while True:
            process, done = requests.get()
            try:
                process.start()
                done.put(None)
            except BaseException as error:  # handed to the caller, who raises it
                done.put(error)


_spawner = _Spawner()


class _RemoteTraceback(Exception):
    """The traceback of an error raised in a worker process (set as its ``__cause__``)."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0])


@dataclasses.dataclass(eq=False)
class _Worker:
    slot: int
    process: Any
    conn: Any
    ready: bool = False  # started and waiting for tasks
    task: Optional[Task] = None  # sent to it and not yet answered
    started: bool = False  # it said it began ``task``


def _stop(workers: List[Optional[_Worker]]) -> None:
    """Ask idle workers to stop, stop busy ones (and what they started), reap all."""
    live = [w for w in workers if w is not None]
    for worker in live:
        if worker.process.exitcode is not None:
            continue
        if worker.ready and worker.task is None:
            try:
                worker.conn.send(None)
                continue
            except OSError:
                pass  # it is dying anyway: terminate below makes sure
        worker.process.terminate()  # SIGTERM: the worker kills its descendants, then exits
    for worker in live:
        worker.process.join(timeout=5)
        if worker.process.exitcode is None:
            log.warning("worker %s did not stop within 5 s; killing it", worker.process.pid)
            worker.process.kill()
            worker.process.join()
        worker.conn.close()
    workers[:] = [None] * len(workers)


def _check_count(name: str, value, flag: str, hint: str) -> int:
    if isinstance(value, bool) or int(value) < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}: pass {flag} 1 or more"
                            f"{hint}")
    return int(value)


class ProcessPoolExecutor(Executor):
    """Evaluates up to ``workers`` tasks at once in worker processes.

    >>> with ProcessPoolExecutor(objective, workers=4) as pool:   # doctest: +SKIP
    ...     pool.submit(Task(0, descriptor))
    ...     [result] = pool.collect()
    """

    def __init__(self, objective, workers: Optional[int] = None, threads: Optional[int] = None,
                 max_retries: int = 3) -> None:
        super().__init__(objective)
        self.capacity = _check_count("workers", (os.cpu_count() or 1) if workers is None
                                     else workers, "--workers",
                                     " (or leave it out for one per core)")
        self.threads = (threads_per_worker(self.capacity) if threads is None else _check_count(
            "threads", threads, "--threads", " (or leave it out to share the cores out)"))
        self.max_retries = int(max_retries)
        self.restarts = 0  # workers replaced after dying
        self.resubmitted: List[int] = []  # ids evaluated again after their worker died
        self._context = multiprocessing.get_context("spawn")
        self._workers: List[Optional[_Worker]] = [None] * self.capacity
        self._queue: Deque[Task] = deque()  # submitted, not yet sent to a worker
        self._ready: List[TaskResult] = []  # results to hand out before waiting again
        self._attempts: Dict[int, int] = {}  # evaluations begun per unfinished task
        self._start_failures = 0  # workers in a row that died before they were ready
        self._closed = False
        # runs on close, when the pool is collected, or at exit before multiprocessing
        # waits for its children (which would wait forever for their next task)
        self._finalizer = mp_util.Finalize(self, _stop, args=(self._workers,), exitpriority=10)

    @property
    def in_flight(self) -> int:
        busy = sum(1 for w in self._workers if w is not None and w.task is not None)
        return len(self._queue) + busy + len(self._ready)

    def submit(self, task: Task) -> None:
        if self._closed:
            raise ExecutorError("this process pool is closed; make a new ProcessPoolExecutor")
        for slot, worker in enumerate(self._workers):
            if worker is None:
                self._workers[slot] = self._spawn(slot)
        self._queue.append(task)
        self._dispatch()

    def collect(self) -> List[TaskResult]:
        while not self._ready:
            if self.in_flight == 0:
                return []
            self._dispatch()
            watched: Dict[Any, _Worker] = {}
            for worker in self._workers:
                if worker is not None:
                    watched[worker.conn] = watched[worker.process.sentinel] = worker
            for item in wait_for(list(watched)):
                worker = watched[item]
                if self._workers[worker.slot] is not worker:
                    continue  # replaced earlier in this round
                if item is worker.conn:
                    self._receive(worker)
                else:
                    while self._workers[worker.slot] is worker and self._poll(worker):
                        self._receive(worker)  # what it sent before it died
                    if self._workers[worker.slot] is worker:
                        self._replace(worker)
        ready, self._ready = self._ready, []
        return ready

    def close(self) -> None:
        self._closed = True
        self._finalizer()

    # ------------------------------------------------------------ internals
    def _spawn(self, slot: int) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main, name=f"nord-pool-worker-{slot}",
            args=(child_conn, self.objective, self.threads, slot, os.getpid()))
        _spawner.start(process)
        child_conn.close()
        return _Worker(slot, process, parent_conn)

    def _dispatch(self) -> None:
        """Send queued tasks to idle workers."""
        for worker in self._workers:
            if not self._queue:
                return
            if (worker is None or not worker.ready or worker.task is not None
                    or worker.process.exitcode is not None):
                continue
            task = self._queue.popleft()
            try:
                worker.conn.send(task)
            except (BrokenPipeError, ConnectionResetError):  # it died: collect notices
                self._queue.appendleft(task)
                continue
            worker.task, worker.started = task, False

    @staticmethod
    def _poll(worker: _Worker) -> bool:
        try:
            return worker.conn.poll()
        except (EOFError, OSError):
            return False

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):  # it died (perhaps while sending)
            message = ("died",)
        kind = message[0]
        if kind == "died":
            self._replace(worker)
        elif kind == "ready":
            worker.ready, self._start_failures = True, 0
        elif kind == "start":
            worker.started = True
            self._attempts[message[1]] = self._attempts.get(message[1], 0) + 1
        elif kind == "result":
            result = message[1]
            worker.task = None
            attempts = self._attempts.pop(result.id, 1)
            self._ready.append(dataclasses.replace(result, attempts=attempts))
        elif kind == "error":
            _, task_id, error, remote = message
            worker.task = None
            self._attempts.pop(task_id, None)
            raise error from _RemoteTraceback(remote)
        elif kind == "init_error":
            _, error, remote = message
            raise error from _RemoteTraceback(remote)

    def _replace(self, worker: _Worker) -> None:
        """A worker died: start another in its slot; charge and requeue only its task."""
        worker.process.join(timeout=5)
        if worker.process.exitcode is None:  # its pipe broke but it lives on: end it
            worker.process.kill()
            worker.process.join()
        code = worker.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        worker.conn.close()
        self.restarts += 1
        if not worker.ready:
            self._start_failures += 1
            if self._start_failures > self.max_retries:
                raise WorkerStartError(
                    f"pool workers keep dying while starting ({how}, {self._start_failures} "
                    f"in a row); see the error they printed above, or run with --executor "
                    f"serial to see it raised here")
        self._workers[worker.slot] = self._spawn(worker.slot)
        task = worker.task
        if task is None:
            log.warning("pool worker %d (pid %s) died while %s (%s); started another",
                        worker.slot, worker.process.pid, "idle" if worker.ready else "starting",
                        how)
        elif not worker.started:
            self._queue.appendleft(task)  # it never began: no attempt charged
        elif self._attempts[task.id] > self.max_retries:
            attempts = self._attempts.pop(task.id)
            now = time.time()
            self._ready.append(TaskResult(
                task.id, "failed", FAILED_FITNESS, {},
                f"WorkerDied: the worker evaluating this candidate died {attempts} times "
                f"({how} the last time; out of memory?)", None, now, now, worker_name(),
                attempts))
            log.warning("candidate %d failed: its worker died %d times", task.id, attempts)
        else:
            self.resubmitted.append(task.id)
            self._queue.appendleft(task)
            log.warning("pool worker %d (pid %s) died evaluating candidate %d (%s, attempt %d); "
                        "started another and evaluating it again", worker.slot,
                        worker.process.pid, task.id, how, self._attempts[task.id])
