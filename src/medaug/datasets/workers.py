"""How a batch job runs its items: worker processes, their warnings, and stopping on SIGINT / SIGTERM.

``medaug expand`` and ``medaug learn-deformations`` run one task per case (or
pair), in this process, in local worker processes or on a Dask cluster.

* A task returns its result with the warnings it issued (:func:`run_task`);
  the job issues them again once (:func:`reissue_warnings`), so they reach the
  user as every other warning does.
* While a job runs in the main thread, SIGINT (Ctrl-C) and SIGTERM stop it
  (:func:`stop_on_signals`): the first raises :class:`JobInterrupted` in the
  job, which stops the workers (SIGTERM, then SIGKILL after
  :data:`STOP_GRACE` seconds; an item being written is removed, as it would be
  by a failure), releases the output lock only when they are gone, and says
  that the same command resumes.  A second signal stops at once: the workers
  are killed, the lock released, one line printed, no traceback.
* Workers ignore SIGINT (a terminal sends Ctrl-C to every process of the
  group; only the job decides) and leave on SIGTERM.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.util
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["JobInterrupted", "STOP_GRACE", "dask_stop_requested", "native_callbacks", "reissue_warnings", "run_task",
           "stop_on_signals", "worker_init", "worker_pool"]

#: Seconds workers get to leave after SIGTERM before they are killed.
STOP_GRACE = 3.0


class JobInterrupted(KeyboardInterrupt):
    """A job stopped by SIGINT or SIGTERM; the message says what is kept and how to resume."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message

    def __str__(self) -> str:
        return self.message or f"interrupted by {signal.Signals(self.signum).name}"


class _Stop:
    """The state of the job being stopped (one per process: signal handlers are process-wide)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.lock: Path | None = None
        self.prog = "medaug"
        self.children: Callable[[], list[Any]] = list


_STOP = _Stop()
#: This process: a worker?  running a task?  inside native code that calls back into Python?  a stop deferred?
_STATE: dict[str, Any] = {"worker": False, "busy": False, "native": False, "pending": None}


@contextlib.contextmanager
def stop_on_signals(lock: Path, prog: str) -> Iterator[None]:
    """Within, SIGINT and SIGTERM stop the job (see the module notes); ``prog`` leads the line of a second signal.

    Signal handlers can be set only in the main thread: elsewhere (e.g. a job
    run from a thread) the signals keep their handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _STOP.signum, _STOP.lock, _STOP.prog, _STOP.children = None, lock, prog, list
    _STATE["pending"] = None
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _STOP.lock, _STOP.children = None, list


def _on_signal(signum: int, frame: Any) -> None:
    if _STOP.signum is None:
        _STOP.signum = signum
        if _STATE["native"]:  # raised in a callback of C++ code, it would be printed and swallowed: later
            _STATE["pending"] = signum
            return
        raise JobInterrupted(signum)
    _stop_processes(_STOP.children(), grace=0.0)  # a second signal: stop at once
    if _STOP.lock is not None:
        _STOP.lock.unlink(missing_ok=True)
    os.write(2, f"{_STOP.prog}: interrupted again, stopped at once; run the same command again to resume\n".encode())
    with contextlib.suppress(Exception):  # unlink the pool's named semaphores, or the resource tracker warns of them
        multiprocessing.util._run_finalizers(0)  # type: ignore[attr-defined]
    os._exit(128 + signum)


def _stop_processes(procs: list[Any], grace: float = STOP_GRACE) -> None:
    """SIGTERM ``procs`` (multiprocessing processes), wait up to ``grace`` seconds, SIGKILL the rest; reap them all."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError, OSError):
            p.terminate() if grace > 0 else p.kill()
    deadline = _now() + grace
    for p in procs:
        p.join(max(deadline - _now(), 0.0))
    for p in procs:
        if p.is_alive():
            with contextlib.suppress(ProcessLookupError, OSError):
                p.kill()
            p.join()


def _now() -> float:
    import time

    return time.monotonic()


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[Any]:
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes (:func:`worker_init`).

    When the job is interrupted (:class:`JobInterrupted` leaves the block), its
    processes are stopped before the interruption goes on; a second signal
    meanwhile kills them (:func:`stop_on_signals`).
    """
    from concurrent.futures import ProcessPoolExecutor

    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=worker_init)
    _STOP.children = lambda: [p for p in multiprocessing.active_children() if p not in before]
    try:
        yield pool
    except JobInterrupted:
        _stop_processes(_STOP.children())
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _STOP.children = list


def worker_init() -> None:
    """Initialiser of worker processes: one torch thread each (the workers are the parallelism), signals as above."""
    import torch

    torch.set_num_threads(1)
    _STATE["worker"] = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_worker_stop)


def _on_worker_stop(signum: int, frame: Any) -> None:
    """A worker told to stop: unwind the item being written (its files are removed), or leave at once.

    At once when idle, or inside native code (:func:`native_callbacks`), where
    nothing of the item has been written yet.
    """
    if _STATE["busy"] and not _STATE["native"]:
        raise JobInterrupted(signum)
    os._exit(128 + signum)


@contextlib.contextmanager
def native_callbacks() -> Iterator[None]:
    """Mark native code that calls back into Python (e.g. a SimpleITK registration with an iteration command).

    An exception raised in such a callback is printed by SimpleITK and
    swallowed, so a stop signal does not raise there: a worker leaves at once;
    the job's own process (one worker: ``--workers 1``) stops when the block
    ends.
    """
    _STATE["native"] = True
    try:
        yield
    finally:
        _STATE["native"] = False
    pending, _STATE["pending"] = _STATE["pending"], None
    if pending is not None:
        raise JobInterrupted(pending)


def run_task(task: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``task(*args)`` with the warnings it issues added to its result as ``"warnings"`` (``(category, text)``).

    A warning issued in a worker process would reach the terminal, if at all,
    in Python's two-line format and outside the command's own handling: it
    travels back with the result instead.  Warnings are collected only in a
    main thread (``catch_warnings`` changes process-wide state: in a threaded
    Dask worker they stay in that worker's log).  A worker stopped by SIGTERM
    meanwhile leaves once the item has been unwound.
    """
    notes: list[tuple[type[Warning], str]] = []
    main = threading.current_thread() is threading.main_thread()
    with warnings.catch_warnings(record=True) if main else contextlib.nullcontext([]) as caught:
        _STATE["busy"] = True
        try:
            result = task(*args)
        except JobInterrupted as exc:
            if _STATE["worker"]:
                os._exit(128 + exc.signum)
            raise
        finally:
            _STATE["busy"] = False
            notes.extend((w.category, str(w.message)) for w in caught)
    return {**result, "warnings": notes}


def dask_stop_requested(spec: dict[str, Any]) -> bool:
    """Whether the job a Dask task belongs to was interrupted (its ``stop_event`` is set); False off Dask."""
    name = spec.get("stop_event")
    if not name:
        return False
    from distributed import Event

    return Event(name).is_set()


def reissue_warnings(result: dict[str, Any], shown: set[str]) -> None:
    """Issue again, in this process, the warnings a task collected (:func:`run_task`).

    ``shown`` holds the texts already issued by this job: every case builds the
    pipeline again, and a warning about it is shown once per job.
    """
    for category, text in result.get("warnings") or ():
        if text not in shown:
            shown.add(text)
            warnings.warn(text, category, stacklevel=2)
