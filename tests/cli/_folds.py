"""Test helper: every registration reports folds (the warning of a folded field, without making one)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def fold_every_registration() -> Callable[[], None]:
    """Patch ``medaug.registration.register.register`` so that each result has 3 folded voxels; return the undo."""
    module = importlib.import_module("medaug.registration.register")  # the package exports a function of that name
    real = module.register

    def folded(*args, **kwargs):
        result = real(*args, **kwargs)
        result.report.folds = 3
        return result

    module.register = folded
    return lambda: setattr(module, "register", real)
