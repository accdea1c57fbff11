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
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["cache_kernels", "MESSAGE", "NOTE"]

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
