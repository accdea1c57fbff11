"""``medaug check CONFIG|--preset NAME --modality M``: validate a pipeline against a modality's constraints.

Errors print one line each and exit 1; warnings print ``warning:`` lines and
exit 0 unless ``--strict``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="pipeline config file (YAML or JSON)")
    parser.add_argument("--preset", help="check a preset instead of a file (default: none)")
    parser.add_argument("--modality", help="ct, mri, xray or ultrasound (default: the config's or preset's own)")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors (default: off)")


def run(args: argparse.Namespace) -> int:
    from ..engine.config import load_config_file, pipeline_from_config
    from ..errors import ParameterError, plural
    from ..presets import preset_config
    from ..presets.constraints import check_pipeline

    if bool(args.config) == bool(args.preset):
        raise ParameterError("give either a CONFIG file or --preset NAME")
    cfg = load_config_file(args.config) if args.config else preset_config(args.preset)
    modality = args.modality or (cfg.get("modality") if isinstance(cfg, dict) else None)
    if modality is None:
        raise ParameterError("give --modality (ct, mri, xray or ultrasound): the config does not name one")
    where = args.config or f"preset {args.preset}"
    # modality=None: the violations are listed below, not raised while building; errors name the file and lines
    pipeline = pipeline_from_config(Path(args.config) if args.config else cfg, modality=None, channel_modalities=None)
    found = check_pipeline(pipeline, modality)
    errors = [v for v in found if v.severity == "error" or args.strict]
    for v in found:
        prefix = "error" if v in errors else "warning"
        print(f"{prefix}: {where}: {v}", file=sys.stderr if prefix == "error" else sys.stdout)
    if errors:
        print(f"{where}: {len(errors)} error(s), {len(found) - len(errors)} warning(s) for {modality.upper()}", file=sys.stderr)
        return 1
    n = len(pipeline.transforms)
    print(f"{where}: OK for {modality.upper()} ({plural(n, 'transform')}, {len(found)} warning(s))")
    return 0
