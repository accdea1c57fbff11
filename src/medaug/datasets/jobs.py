"""What every medaug batch job shares: the output lock, the writability probe, atomic JSON rows.

``medaug expand`` and ``medaug learn-deformations`` write into an output folder
that only one process may own (a lock file naming its PID and host; a stale
lock of a dead process on the same host is taken over), that is probed by
really writing a file before any work (``os.access`` says yes as root, and a
read-only mount or a full disk shows only on a real write), and where every
finished item is committed as a small JSON row written atomically.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import JobError, MedaugError

__all__ = ["OutputLock", "check_writable", "collect_warnings", "naming", "output_path", "reissue_warnings",
           "write_json_atomic", "worker_init"]


def output_path(out: Path, *parts: str) -> Path:
    """``out / parts...``, refused unless it resolves (links followed) inside the output folder ``out``.

    Every file a job writes is named through this function, so no case id,
    pair name or layout can place a file outside OUTPUT, whatever it holds.

    Raises
    ------
    JobError
        Naming the path that would leave the output folder.
    """
    path = out.joinpath(*parts)
    root = out.resolve()
    resolved = path.resolve()
    if resolved == root or not resolved.is_relative_to(root) or any(p in ("", ".", "..") for p in parts):
        raise JobError(f"refusing to write {path}: it resolves to {resolved}, outside the output folder", path=out)
    return path


@contextlib.contextmanager
def naming(path: str | os.PathLike[str], context: str | None = None) -> Iterator[None]:
    """Give a medaug error raised inside that names no file the file it concerns (and, in brackets, ``context``).

    A pipeline step or a registration refuses a sample without knowing where it
    came from ("CropToLabel needs a label map; the sample has none"); the
    command that read the file adds it, and e.g. the pipeline config.
    """
    try:
        yield
    except MedaugError as exc:
        if exc.path is None:
            exc.path = str(path)
            if context:
                exc.message = f"{exc.message} ({context})"
                exc.args = (exc.message,)
        raise


def write_json_atomic(path: Path, obj: Any, *, indent: int | None = None) -> None:
    """Write JSON through a temporary file, fsync and rename; never leave half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=indent)
            if indent is not None:
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # never leave half a row (a full disk, an interrupt)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write() names no file: name it
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


class OutputLock:
    """``with OutputLock(OUT / '.medaug' / 'lock'):`` owns an output folder or raises :class:`JobError` naming the holder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = _read_holder(self.path)
                if holder is None:
                    continue  # released while we looked: try again
                if holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1))):
                    self.path.unlink(missing_ok=True)  # a stale lock from a killed run on this host
                    continue
                if "pid" not in holder:
                    raise JobError(
                        f"output folder is locked but the lock names no process; if no medaug process is writing "
                        f"here, remove {self.path}", path=self.path.parent.parent,
                    ) from None
                raise JobError(
                    f"output folder is in use by another medaug process (PID {holder.get('pid')} on host "
                    f"{holder.get('host')}); wait for it or remove {self.path} if that process is gone",
                    path=self.path.parent.parent,
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            return self
        raise JobError("could not take the output lock", path=self.path)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _read_holder(path: Path, wait: float = 2.0) -> dict[str, Any] | None:
    """The lock's ``{pid, host}`` (None when the lock is gone); waits for a lock just created.

    The lock is created first (``O_EXCL``) and filled next, so a reader may see
    it empty for a moment: it is read again for up to ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            holder = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(holder, dict) and "pid" in holder:
                return holder
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            return {}
        time.sleep(0.05)


def check_writable(out: Path) -> None:
    """Create, write and delete a small file in ``OUTPUT/.medaug/``; raise :class:`JobError` when that fails.

    ``os.access`` is not enough: as root it says yes to a folder whose
    permission bits forbid writing, and a read-only mount or a full disk shows
    only when a file is really written.  Runs before any work.
    """
    probe = out / ".medaug" / f".probe-{os.getpid()}-{secrets.token_hex(3)}.tmp"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.parent.mkdir(exist_ok=True)
        with probe.open("wb") as fh:
            fh.write(b"medaug write test\n")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise JobError(f"the disk is full ({exc.strerror}): no file can be written in the output folder; "
                           "free some space first", path=out) from None
        raise JobError(f"output folder is not writable ({exc.strerror or exc}); choose another folder or make "
                       "this one writable", path=out) from None


def _alive(pid: int) -> bool:
    """Whether a process of this host is running (a lock of a dead one is stale)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_init() -> None:
    """Initialiser of worker processes: one torch thread each (the workers are the parallelism)."""
    import torch

    torch.set_num_threads(1)


@contextlib.contextmanager
def collect_warnings() -> Iterator[list[tuple[type[Warning], str]]]:
    """Keep the warnings issued inside as ``(category, text)``, to travel back with a worker's result.

    A warning issued in a worker process (local or Dask) would reach the
    terminal, if at all, in Python's two-line format and outside the command's
    own handling; the job's main process issues it again with
    :func:`reissue_warnings`, so it is shown as every other warning is.
    Only in a main thread: ``catch_warnings`` changes process-wide state, so
    in a threaded (Dask) worker the warnings stay in that worker's log.
    """
    notes: list[tuple[type[Warning], str]] = []
    if threading.current_thread() is not threading.main_thread():
        yield notes
        return
    with warnings.catch_warnings(record=True) as caught:
        try:
            yield notes
        finally:
            notes.extend((w.category, str(w.message)) for w in caught)


def reissue_warnings(result: dict[str, Any], shown: set[str]) -> None:
    """Issue again, in this process, the warnings a worker collected (:func:`collect_warnings`).

    ``shown`` holds the texts already issued by this job: every case builds the
    pipeline again, and a warning about it is shown once per job.
    """
    for category, text in result.get("warnings") or ():
        if text not in shown:
            shown.add(text)
            warnings.warn(text, category, stacklevel=2)
