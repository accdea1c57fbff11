"""Root pytest configuration: skip the doctests of optional integrations whose library is not installed.

``--doctest-modules`` imports every module under ``src/medaug``; the modules of
``medaug.interop`` import MONAI or TorchIO on purpose (``pip install medaug[monai]``,
``medaug[torchio]``).  Their tests in ``tests/interop`` skip themselves the same way.
"""

from __future__ import annotations

import importlib.util

collect_ignore = [
    f"src/medaug/interop/{name}.py" for name in ("monai", "torchio") if importlib.util.find_spec(name) is None
]
