"""Native (C/C++) readers: memory checks before allocation, the allocation cap, stderr diversion.

ITK, niftilib, libpng, GDCM and VNL print their own complaints straight to file
descriptor 2 and allocate what a header claims; medaug checks sizes first and
reports problems itself, in one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import SimpleITK as sitk

from ...errors import InvalidImageError

# ITK prints C++ warnings (with build paths) straight to stderr; medaug checks what matters itself
# (slice gaps, spacing, sizes) and reports it as one clear error or warning instead.
sitk.ProcessObject_SetGlobalWarningDisplay(False)

def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation, if known.

    The smallest of the system's MemAvailable, the room left under a container
    (cgroup) memory limit, and the room left under this process's address-space
    limit (``ulimit -v``, RLIMIT_AS).
    """
    known = [v for v in (_system_available(), _cgroup_available(), _rlimit_available()) if v is not None]
    return min(known) if known else None


def _system_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # missing, or "max"


def _cgroup_available() -> int | None:
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            return max(limit - usage, 0)
    return None


def _rlimit_available() -> int | None:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        return None
    used = _vm_size()
    if soft == resource.RLIM_INFINITY or used is None:
        return None
    return max(soft - used, 0)


#: Address space GDCM may take beyond the image itself (headers, per-file buffers) while reading DICOM.
_HEADER_ROOM = 256 * 2**20


def _vm_size() -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, ValueError, StopIteration):
        return None


_NATIVE_STDERR: dict[str, Any] = {"depth": 0, "saved": None, "file": None, "show": None, "held": []}
_NATIVE_STDERR_LOCK = threading.Lock()
_log = logging.getLogger("medaug.io")


@contextlib.contextmanager
def _native_stderr_to_log() -> Iterator[None]:
    """Send what C/C++ code writes to file descriptors 1 and 2 meanwhile to the ``medaug.io`` debug log.

    niftilib, libpng, GDCM and VNL print their own complaints about a broken
    file straight to stderr, libjpeg to stdout; medaug reports the problem
    itself, in one line.
    Nested and concurrent uses share one redirection (reference counted).

    Python warnings issued meanwhile (e.g. a folder holding two DICOM series)
    are held back and shown when file descriptor 2 is restored: shown at once
    they would be written into the diversion and never reach the user.
    """
    with _NATIVE_STDERR_LOCK:
        if _NATIVE_STDERR["depth"] == 0:
            saved: list[tuple[int, int]] = []
            try:
                tmp = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the last user leaves
                for fd, stream in ((1, sys.stdout), (2, sys.stderr)):  # libjpeg's warnings come on stdout
                    with contextlib.suppress(OSError, ValueError, AttributeError):
                        stream.flush()
                        copy = os.dup(fd)
                        os.dup2(tmp.fileno(), fd)
                        saved.append((fd, copy))
                _NATIVE_STDERR.update(saved=saved, file=tmp)
            except OSError:
                _NATIVE_STDERR.update(saved=None, file=None)
            held: list[tuple[Any, ...]] = []
            _NATIVE_STDERR.update(show=warnings.showwarning, held=held)
            warnings.showwarning = lambda *args: held.append(args)
        _NATIVE_STDERR["depth"] += 1
    try:
        yield
    finally:
        with _NATIVE_STDERR_LOCK:
            _NATIVE_STDERR["depth"] -= 1
            if _NATIVE_STDERR["depth"] == 0:
                _restore_stderr()


def _restore_stderr() -> None:
    """Put file descriptors 1 and 2 back, log what native code wrote, then show the warnings held back."""
    saved, tmp, show, held = (_NATIVE_STDERR[k] for k in ("saved", "file", "show", "held"))
    if saved is not None and tmp is not None:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", "replace").strip()
        tmp.close()
        if text:
            _log.debug("native reader output: %s", text)
    _NATIVE_STDERR.update(saved=None, file=None, show=None, held=[])
    warnings.showwarning = show
    for args in held:
        show(*args)


@contextlib.contextmanager
def _native_read(room: int | None) -> Iterator[None]:
    """Around every SimpleITK/GDCM read: native stderr to the log, and (for ``room``) the allocation cap."""
    with _native_stderr_to_log(), _allocation_cap(room):
        yield


@contextlib.contextmanager
def _allocation_cap(room: int | None) -> Iterator[None]:
    """Cap the address space at its current size + ``room`` bytes while a C++ reader runs (Linux).

    GDCM allocates whatever a corrupt DICOM length field claims (up to 4 GiB per
    element) and does not free it when the read then fails: under the cap the
    allocation fails instead, GDCM reports an unreadable file, and nothing is
    lost.  The limit is only ever lowered, and restored afterwards; it applies
    to the whole process for the duration of the read.  ``room=None``: no cap.
    """
    limits = None
    if room is not None and os.environ.get("MEDAUG_NO_ALLOCATION_CAP") is None:
        try:
            import resource

            used = _vm_size()
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            cap = None if used is None else used + int(room)
            if cap is not None and (soft == resource.RLIM_INFINITY or cap < soft):
                if hard != resource.RLIM_INFINITY:
                    cap = min(cap, hard)
                resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
                limits = (resource, soft, hard)
        except (ImportError, OSError, ValueError):
            limits = None
    try:
        yield
    finally:
        if limits is not None:
            resource_mod, soft, hard = limits
            resource_mod.setrlimit(resource_mod.RLIMIT_AS, (soft, hard))


def _check_memory(nbytes: int, size: Any, where: str) -> None:
    available = _available_memory()
    if available is not None and nbytes > available:
        raise InvalidImageError(
            f"the header describes an image of {nbytes / 2**30:.3g} GiB (size {tuple(size)}), more than "
            f"the {available / 2**30:.3g} GiB of memory available; check that the file is not corrupt, "
            "or crop it / use a machine with more memory",
            path=where,
        )
