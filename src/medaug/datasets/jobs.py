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
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import JobError, MedaugError, ParameterError

if TYPE_CHECKING:
    from .cases import Case

__all__ = ["OutputLock", "STATE_DIR", "check_outside_inputs", "check_writable", "claim_job", "dataset_fingerprint",
           "inside_output", "is_medaug_output", "job_identity", "naming", "output_path", "read_rows", "read_state",
           "state_dir", "write_json_atomic"]

#: The first columns of every manifest medaug writes (``augment``, ``demo``, ``expand``).
_MANIFEST_HEAD = "case_id,index,seed,"


def is_medaug_output(folder: Path) -> bool:
    """Whether ``folder`` is the output folder of a medaug job: it holds ``.medaug/`` (the state of ``expand``,
    ``learn-deformations``) or a ``manifest.csv`` with medaug's columns (``augment``, ``demo``).

    Such a folder is never a case of a dataset (a DICOM series folder), even when it lies among the images.
    """
    if (folder / ".medaug").is_dir():
        return True
    try:
        with open(folder / "manifest.csv", encoding="utf-8-sig", errors="replace") as fh:
            return fh.readline(256).startswith(_MANIFEST_HEAD)
    except OSError:
        return False


def check_outside_inputs(out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None],
                         writes: Iterable[str] = ()) -> None:
    """Refuse an output folder that would put a job's files among its inputs, before any work.

    ``out`` may not be an input folder (a dataset, a DICOM series) or lie inside
    one, nor be the folder holding an input file; ``writes`` names the
    sub-folders the job fills (``images``, ``labels``): ``OUT/images`` may not be
    an input file's folder either (``-o data`` for ``data/images/ct.nii.gz``).
    Paths are compared resolved (links followed).  An output folder *beside*
    an input file (``ct.nii.gz -o out/``) is allowed: a later read of a dataset
    skips the output folders of medaug (:func:`is_medaug_output`).

    Raises
    ------
    ParameterError
        One line naming the output folder and the input.
    """
    target = Path(out).resolve()
    for given in inputs:
        if given is None:
            continue
        path = Path(given).resolve()
        if path.is_dir():
            if target == path or target.is_relative_to(path):
                raise ParameterError(f"the output folder {target} is inside the input {path}; medaug never writes "
                                     "into its input: choose an output folder outside it")
            continue
        folder = path.parent
        if target == folder:
            raise ParameterError(f"the output folder {target} is the folder of the input {path}; medaug never "
                                 "writes among its inputs: choose a new folder for the output")
        for sub in writes:
            if target / sub == folder:
                raise ParameterError(f"the output folder {target} would write its {sub}/ into {folder}, the folder "
                                     f"of the input {path}; medaug never writes among its inputs: choose another "
                                     "output folder")


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


#: The folder of OUTPUT where a job keeps its state (job.json, dataset.json, rows/, lock).
STATE_DIR = ".medaug"


def state_dir(out: Path) -> Path:
    """``OUTPUT/.medaug``, refused (:class:`JobError`) when a link makes it lead out of the output folder."""
    return output_path(out, STATE_DIR)


def inside_output(out: Path, folder: Path) -> bool:
    """Whether ``folder`` (a folder of OUTPUT) resolves inside OUTPUT: a job cleans up only there."""
    return folder.resolve().is_relative_to(out.resolve())


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
                if holder["host"] == me["host"] and not _alive(holder["pid"]):
                    self.path.unlink(missing_ok=True)  # a stale lock from a killed run on this host
                    continue
                raise JobError(
                    f"output folder is in use by another medaug process (PID {holder['pid']} on host "
                    f"{holder['host']}); wait for it or remove {self.path} if that process is gone",
                    path=self.path.parent.parent,
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            return self
        raise JobError("could not take the output lock", path=self.path)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


#: Seconds a lock without a valid holder is read again before it is called damaged (a new lock is empty at first).
LOCK_SETTLE = 2.0


class _NotAFile(OSError):
    """A state file that is a FIFO, a device or a socket: not one medaug wrote, and reading it could block forever."""


def _read_text(path: Path, errors: str = "strict") -> str:
    """The text of a state file, opened without blocking and refused unless it is a regular file (:class:`_NotAFile`)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            from ..data.io._paths import file_kind

            raise _NotAFile(f"is {file_kind(mode)}, not a file medaug wrote")
        return fh.read().decode("utf-8", errors)


def _read_holder(path: Path) -> dict[str, Any] | None:
    """The lock's ``{pid, host}`` (None when the lock is gone); waits for a lock just created.

    The lock is created first (``O_EXCL``) and filled next, so a reader may see
    it empty for a moment: it is read again for up to :data:`LOCK_SETTLE` seconds.

    Raises
    ------
    JobError
        Naming the lock file when it still holds no valid holder after that.
    """
    deadline = time.monotonic() + LOCK_SETTLE
    while True:
        text = ""
        try:
            text = _read_text(path, errors="replace")
            holder = json.loads(text)
            pid = holder.get("pid") if isinstance(holder, dict) else None
            if type(pid) is int and 0 < pid < 2**31 and isinstance(holder.get("host"), str):
                return holder
        except FileNotFoundError:
            return None
        except _NotAFile as exc:
            raise JobError(f"the lock file {exc}; if no medaug process is writing in {path.parent.parent}, remove "
                           "the lock file and run the command again", path=path) from None
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise JobError(
                f"the lock file is damaged (it holds {text[:60]!r}, not the PID and host of a medaug process); if no "
                f"medaug process is writing in {path.parent.parent}, remove the lock file and run the command again",
                path=path,
            )
        time.sleep(0.05)


def read_state(path: Path, what: str, recovery: str) -> Any:
    """A JSON object of a job's state (``job.json``, a row): the dict, or None when the file does not exist.

    Raises
    ------
    JobError
        Naming the file when it is empty, cut short or not a JSON object,
        with ``what`` it is and the ``recovery`` step.
    """
    try:
        text = _read_text(path)
    except FileNotFoundError:
        return None
    except _NotAFile as exc:
        raise JobError(f"{what} {exc}; {recovery}", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"{what} cannot be read ({exc}); {recovery}", path=path) from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        problem = "is empty" if not text.strip() else f"is damaged ({exc})"
        raise JobError(f"{what} {problem}; {recovery}", path=path) from None
    if not isinstance(value, dict):
        raise JobError(f"{what} is damaged (it holds {text[:60]!r}, not a JSON object); {recovery}", path=path)
    return value


def dataset_fingerprint(cases: list[Case], digest: Callable[[str], str] | None = None) -> dict[str, list[Any]]:
    """What a job's output depends on in its input: per case id, every file it reads with its size and mtime.

    Each entry is ``[role, path digest, size, mtime_ns]`` (``image``, ``label``,
    further channels; a DICOM folder contributes every file inside it).  Paths
    enter as a digest only (``digest``, SHA-256 by default; a keyed one when
    case ids are pseudonyms), so the fingerprint can be stored in an output
    without the input's names; the case's ``target`` is kept too.
    """
    digest = digest or _digest
    out: dict[str, list[Any]] = {}
    for case in cases:
        files = [("image", case.image), *([("label", case.label)] if case.label else []), *((f"channel_{k:04d}", f) for k, f in enumerate(case.channel_files, 1))]
        entries: list[Any] = [["target", repr(case.target)]] if case.target is not None else []
        for role, path in files:
            for sub, st in _stats(Path(path)):
                entries.append([role + sub, digest(f"{path}{sub}")[:16], *((st.st_size, st.st_mtime_ns) if st else ())])
        out[case.case_id] = entries
    return out


def _stats(path: Path) -> list[tuple[str, os.stat_result | None]]:
    """``[("", stat)]`` of a file (stat None when it cannot be read); ``[("/name", stat), ...]`` of a folder's files."""
    try:
        if not path.is_dir():
            return [("", os.stat(path))]
        with os.scandir(path) as entries:
            return [(f"/{e.name}", e.stat()) for e in sorted(entries, key=lambda e: e.name) if e.is_file()]
    except OSError:
        return [("", None)]


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def job_identity(options: dict[str, Any], inp: Path, pseudonyms: Any = None) -> dict[str, Any]:
    """A job's identity for :func:`claim_job`: its options and resolved input.

    With pseudonyms (a :class:`~medaug.datasets.anonymize.Pseudonyms`) the input enters as a keyed digest (its path may name a
    patient) and the salt as its check, so that only the same salt resumes.
    """
    if pseudonyms is None:
        return {"input": str(inp), **options}
    return {"input": "digest:" + pseudonyms.digest(str(inp))[:32], **options, "pseudonyms": pseudonyms.check()}


def claim_job(out: Path, identity: dict[str, Any], fingerprint: dict[str, list[Any]], kind: str) -> None:
    """Record a new job in ``OUT/.medaug/job.json``, or check that the folder holds this very job (a resume).

    ``identity`` is what defines the job's output (resolved input, pipeline,
    options); the dataset's content enters as the digest of its
    :func:`dataset_fingerprint`, kept whole in ``OUT/.medaug/dataset.json`` so a
    refusal can say what changed.  The same dataset resumes however its path
    is typed; a changed dataset, or another job, is refused.

    Raises
    ------
    JobError
        Naming what differs (the options, or the cases and files that changed),
        or a damaged ``job.json``.
    """
    meta = state_dir(out)
    job_file, data_file = meta / "job.json", meta / "dataset.json"
    ident = json.loads(json.dumps({**identity, "dataset": _digest(json.dumps(fingerprint, sort_keys=True))}))
    previous = read_state(job_file, "the job description", f"if you are running again the command that created "
                          f"{out}, delete {job_file} and run it again (finished items are kept); otherwise choose a "
                          "new output folder")
    if previous is None:
        write_json_atomic(data_file, fingerprint)
        write_json_atomic(job_file, ident, indent=1)
        return
    if previous == ident:
        return
    options = sorted(k for k in ident.keys() | previous.keys() if k != "dataset" and ident.get(k) != previous.get(k))
    if "pseudonyms" in options:  # the input's digest differs too: it is keyed by the salt
        raise JobError(f"output folder holds a {kind} job whose case ids were replaced by pseudonyms with another salt, "
                       "or not at all; give the salt file of its first run (--id-salt), or use a new output folder",
                       path=out)
    if options:
        shown = "; ".join(f"{k}: {_short(previous.get(k))} then, {_short(ident.get(k))} now" for k in options)
        raise JobError(f"output folder holds a different {kind} job ({shown}); use a new output folder, or run "
                       "the command that created it", path=out)
    if "dataset" not in previous:
        raise JobError(f"output folder holds a {kind} job of an older medaug, which did not record the content of "
                       "its dataset, so a resume cannot be checked; use a new output folder", path=out)
    try:
        before = json.loads(_read_text(data_file))
    except (OSError, ValueError):
        before = {}
    raise JobError(f"the input dataset changed since this {kind} job started ({_changes(before, fingerprint)}), so "
                   "resuming would mix outputs of two datasets; restore the dataset, or use a new output folder",
                   path=out)


def _short(value: Any) -> str:
    """A job option for a message: text (e.g. a path) whole, other values as JSON of at most 60 characters."""
    if isinstance(value, str):
        return value
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _changes(before: dict[str, list[Any]], now: dict[str, list[Any]]) -> str:
    """What differs between two fingerprints, in words (a few examples of each kind)."""
    def some(ids: list[str]) -> str:
        return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")

    added = sorted(now.keys() - before.keys())
    removed = sorted(before.keys() - now.keys())
    changed = []
    for cid in sorted(now.keys() & before.keys()):
        old, new = {e[0]: e[1:] for e in before[cid]}, {e[0]: e[1:] for e in now[cid]}
        roles = sorted(r for r in old.keys() | new.keys() if old.get(r) != new.get(r))
        if roles:
            changed.append(f"{cid} ({', '.join(roles[:3])})")
    parts = [f"{len(changed)} case(s) with other files, sizes or modification times: {some(changed)}"] if changed else []
    parts += [f"{len(added)} case(s) added: {some(added)}"] if added else []
    parts += [f"{len(removed)} case(s) removed: {some(removed)}"] if removed else []
    return "; ".join(parts) or "the case list differs"


def read_rows(rows_dir: Path) -> list[dict[str, Any]]:
    """The committed rows of a job (``OUTPUT/.medaug/rows/*.json``), in file name order.

    Raises
    ------
    JobError
        Naming a damaged row and how to recover: delete it, its item is redone.
    """
    if not rows_dir.is_dir():
        return []
    recovery = "delete this file and run the same command again: its item is done again"
    return [read_state(p, "this row of the job's state", recovery) for p in sorted(rows_dir.glob("*.json"))]


def check_writable(out: Path) -> None:
    """Create, write and delete a small file in ``OUTPUT/.medaug/``; raise :class:`JobError` when that fails.

    ``os.access`` is not enough: as root it says yes to a folder whose
    permission bits forbid writing, and a read-only mount or a full disk shows
    only when a file is really written.  Runs before any work.
    """
    probe = output_path(out, STATE_DIR, f".probe-{os.getpid()}-{secrets.token_hex(3)}.tmp")  # .medaug no link out
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
