"""Root pytest configuration: skip the doctests of optional integrations whose library is not installed; quiet kernels.

``--doctest-modules`` imports every module under ``src/medaug``; the modules of
``medaug.interop`` import MONAI or TorchIO on purpose (``pip install medaug[monai]``,
``medaug[torchio]``).  Their tests in ``tests/interop`` skip themselves the same way.
"""

from __future__ import annotations

import importlib.util
import os

# the one-line note when kernels compile (first run in a fresh cache) would land in the stderr that CLI tests
# read; tests/engine/test_kernels.py checks it with the variable removed
os.environ.setdefault("MEDAUG_QUIET", "1")

collect_ignore = [
    f"src/medaug/interop/{name}.py" for name in ("monai", "torchio") if importlib.util.find_spec(name) is None
]
