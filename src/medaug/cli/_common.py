"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ParameterError


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", metavar="FILE", help="pipeline config (YAML or JSON list of {Transform: {params}})")
    group.add_argument("--preset", metavar="NAME", help="modality preset: ct, ct-light, mri, mri-heavy, xray, ultrasound")


def pipeline_from_args(args: argparse.Namespace, default_preset: str | None = None):
    """The pipeline named by ``--config`` or ``--preset`` (or the default preset)."""
    from ..engine.config import pipeline_from_config
    from ..presets import preset

    if getattr(args, "config", None):
        return pipeline_from_config(Path(args.config))
    name = getattr(args, "preset", None) or default_preset
    if name is None:
        raise ParameterError("give a pipeline with --config FILE or --preset NAME (see 'medaug presets')")
    return preset(name)


def pipeline_name(args: argparse.Namespace, default_preset: str | None = None) -> str:
    """How the pipeline was given, for messages: ``pipeline FILE`` or ``preset NAME``."""
    if getattr(args, "config", None):
        return f"pipeline {args.config}"
    return f"preset {getattr(args, 'preset', None) or default_preset}"
