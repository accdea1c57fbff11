"""``python -m medaug``: the same command line as ``medaug``."""

from __future__ import annotations

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
