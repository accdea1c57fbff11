"""Where Numba keeps medaug's compiled kernels, and a one-line note when it compiles them.

The kernels are compiled once and cached on disk (``cache=True``).  Numba
writes the cache next to the source when that folder is writable, else under
the user's cache folder; when neither is (a read-only install for a user
without a home), :func:`cache_kernels` points ``NUMBA_CACHE_DIR`` at
``$XDG_CACHE_HOME/medaug/numba`` (or a folder under the temporary directory),
and turns caching off only when no folder at all can be written.

The first call that really compiles (not one loaded from the cache) prints
``medaug: compiling kernels (first run only)...`` once on stderr, unless
``MEDAUG_QUIET`` is set (the CLI's ``--quiet`` sets it).

On a CPU with AVX-512, LLVM's tuning for most Intel models stops its loop
vectoriser at 256-bit vectors.  The sweep's point-wise operations (the
polynomial ``exp``/``log``/``sin``/``cos``, the noise hash) run about twice as
fast with 512-bit vectors, and the whole 2D sweep about 20 % faster, with
bit-identical results (no reassociation is allowed, so the lanes compute
exactly what the scalar code would).  :func:`prefer_wide_vectors` therefore
asks for them (``-prefer-256-bit`` added to the host's features), under these
conditions: ``MEDAUG_WIDE_VECTORS`` is not ``0``, the user has set neither
``NUMBA_CPU_NAME`` nor ``NUMBA_CPU_FEATURES``, the host has ``avx512f``, and
Numba has not compiled anything yet in this process (its code generator is
made once, at the first compile or cache load).  The choice holds for every
Numba function of the process; it changes no result, only the vector width,
and other packages' cached kernels are compiled once more for it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["cache_kernels", "prefer_wide_vectors", "MESSAGE", "NOTE"]

MESSAGE = "medaug: compiling kernels (first run only)..."
_PACKAGE = Path(__file__).resolve().parents[1]
_decided: bool | None = None
#: The compile-note listener (its ``said`` tells whether the note was printed).
NOTE: Any = None


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def cache_kernels() -> bool:
    """Whether kernels are cached on disk; sets up a cache folder that works, and the compile note.

    Returns
    -------
    bool
        True when a writable cache folder exists (the value to pass as ``cache=``).
    """
    global _decided
    if _decided is not None:
        return _decided
    import numba

    _install_note()
    prefer_wide_vectors()
    if os.environ.get("NUMBA_CACHE_DIR") or os.access(_PACKAGE / "engine", os.W_OK):
        _decided = True
        return _decided
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medaug" / "numba"
    for folder in (user, Path(tempfile.gettempdir()) / f"medaug-numba-{os.getuid() if hasattr(os, 'getuid') else 0}"):
        if _writable(folder):
            numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
            _decided = True
            return _decided
    _decided = False
    return _decided


#: Values of ``MEDAUG_WIDE_VECTORS`` that keep LLVM's own vector width.
_OFF = ("0", "false", "no", "off")


def prefer_wide_vectors() -> str | None:
    """Let Numba's code generator use 512-bit vectors on an AVX-512 host (see the module's notes).

    Returns
    -------
    str or None
        The feature string now in ``numba.config.CPU_FEATURES``, or None when
        it was left alone (turned off, chosen by the user, no AVX-512, or Numba
        already compiling with its own choice).
    """
    if os.environ.get("MEDAUG_WIDE_VECTORS", "").strip().lower() in _OFF:
        return None
    import numba
    from numba.core.registry import cpu_target

    config: Any = numba.config
    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return None  # the user chose the target (e.g. a generic one for a shared cache)
    if "_toplevel_target_context" in vars(cpu_target):
        return None  # Numba's code generator exists already: its features are fixed
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    except Exception:  # pragma: no cover - a platform where LLVM cannot tell
        return None
    if "+avx512f" not in features.split(","):
        return None
    config.CPU_FEATURES = features + ",-prefer-256-bit"
    return config.CPU_FEATURES


def _install_note() -> None:
    """Register a listener that prints :data:`MESSAGE` once, when a medaug kernel starts compiling
    (loading one from the disk cache fires no compile event)."""
    from numba.core import event

    class Note(event.Listener):
        said = False

        def on_start(self, ev: event.Event) -> None:
            if self.said or os.environ.get("MEDAUG_QUIET"):
                return
            dispatcher = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            if module.startswith("medaug"):  # the package, and test kernels named medaug_*
                self.said = True
                print(MESSAGE, file=sys.stderr, flush=True)

        def on_end(self, ev: event.Event) -> None:
            pass

    global NOTE
    NOTE = Note()
    event.register("numba:compile", NOTE)
