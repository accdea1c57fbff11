"""``medaug presets [NAME] [--yaml]``: the modality presets, their transforms and ranges."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one preset (default: all)")
    parser.add_argument("--yaml", action="store_true", help="print the preset as a YAML config file (default: off)")


def _fmt(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def run(args: argparse.Namespace) -> int:
    import yaml

    from ..presets import PRESETS, preset_config

    names = [args.name] if args.name else list(PRESETS)
    for name in names:
        cfg = preset_config(name)
        if args.yaml:
            print(yaml.safe_dump(cfg, sort_keys=False).rstrip())
            continue
        modality, description = PRESETS[name][0], PRESETS[name][1]
        print(f"{name}  (modality {modality}, fill {cfg['fill']})")
        print(f"  {description}")
        for item in cfg["transforms"]:
            ((tname, params),) = item.items()
            print(f"  - {tname}: {_fmt(params)}")
        print()
    return 0
