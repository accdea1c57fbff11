"""What the layers above the engine plug into it: transform classes and modality constraints.

The engine imports nothing above itself.  Every transform class registers
itself here when its module is imported (:meth:`~medaug.engine.transform._Base.__init_subclass__`);
the package root names the modules that define transforms and the constraint
checker (:func:`add_providers`), which are imported on first use, so that
``import medaug`` stays fast and a configuration naming ``RandomAffine`` works
without the user importing :mod:`medaug.spatial`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import ParameterError, did_you_mean

__all__ = [
    "register", "add_providers", "transform_class", "transform_classes", "renamed", "unknown_name_hint",
    "ConstraintChecker", "set_constraint_checker", "constraint_checker",
]

_CLASSES: dict[str, type] = {}
_RENAMED: dict[str, str] = {}
_PROVIDERS: list[str] = []
_loaded: set[str] = set()


class ConstraintChecker(Protocol):
    """The modality constraints, as :mod:`medaug.presets.constraints` provides them."""

    def canonical(self, modality: str) -> str:
        """The modality's canonical name (``"MR"`` -> ``"mri"``); ParameterError when unknown."""

    def enforce(self, pipeline: Any, modality: str, *, on_violation: str = "error") -> list[Any]:
        """Raise on errors and warn on warnings of ``pipeline`` for ``modality``."""

    def output_range_check(
        self, modality: str, values: Mapping[str, tuple[float, float]], inputs: Mapping[str, tuple[float, float]]
    ) -> dict[str, Any]:
        """The history record of an output intensity range check."""


_CHECKER: list[ConstraintChecker] = []


def register(cls: type) -> None:
    """Make ``cls`` usable by name in configurations and records (called for every concrete transform class).

    A class that was renamed lists its old names in ``renamed_from``; they are
    not accepted, but a configuration or record using one is told the new name.
    """
    _CLASSES[cls.__name__] = cls
    for old in cls.__dict__.get("renamed_from", ()):
        _RENAMED[old] = cls.__name__


def add_providers(*modules: str) -> None:
    """Name modules (dotted paths) whose import registers transforms or the constraint checker."""
    for m in modules:
        if m not in _PROVIDERS:
            _PROVIDERS.append(m)


def _load() -> None:
    for m in list(_PROVIDERS):
        if m not in _loaded:
            importlib.import_module(m)
            _loaded.add(m)


def transform_class(name: str) -> type | None:
    """The registered class called ``name``, or None."""
    if name not in _CLASSES:
        _load()
    return _CLASSES.get(name)


def renamed(name: str) -> str | None:
    """The current name of a transform that was called ``name`` in an earlier version, or None."""
    if name not in _RENAMED:
        _load()
    return _RENAMED.get(name)


def unknown_name_hint(name: str) -> str:
    """What to tell about an unknown transform name: its new name when it was renamed, else a "did you mean"."""
    new = renamed(name)
    if new is not None:
        return f" (renamed '{new}' in medaug 0.2.0; see CHANGELOG.md)"
    return did_you_mean(name, [n for n in transform_classes() if not n.startswith("_")])


def transform_classes() -> dict[str, type]:
    """Every registered transform class by name (providers imported first)."""
    _load()
    return dict(_CLASSES)


def set_constraint_checker(checker: ConstraintChecker) -> None:
    """Install the modality constraints (done by :mod:`medaug.presets.constraints` when imported)."""
    _CHECKER[:] = [checker]


def constraint_checker() -> ConstraintChecker:
    """The installed constraint checker.

    Raises
    ------
    ParameterError
        When no provider installs one (the engine used without the package root).
    """
    if not _CHECKER:
        _load()
    if not _CHECKER:
        raise ParameterError("no modality constraints are installed; import medaug (not only medaug.engine)")
    return _CHECKER[0]

