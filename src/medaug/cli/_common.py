"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ParameterError


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", metavar="FILE", help="pipeline config (YAML or JSON list of {Transform: {params}})")
    group.add_argument("--preset", metavar="NAME", help="modality preset: ct, ct-light, mri, mri-heavy, xray, "
                       "ultrasound, or auto (each channel's modality from the dataset's channel names)")


def add_channels_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels", choices=("rgb",), default=None,
                        help="rgb: read colour pictures (PNG, JPEG, TIFF, BMP, DICOM) as three channels R, G, B "
                             "(default: colour is refused, grey stored as RGB is read as grey)")


def pipeline_config_from_args(args: argparse.Namespace, channel_names=None, *, where=None):
    """The config form of the pipeline named by ``--config`` or ``--preset`` (``auto``: from ``channel_names``)."""
    from ..engine.config import load_config_file
    from ..presets import preset_config

    if getattr(args, "config", None):
        return load_config_file(args.config)
    name = getattr(args, "preset", None)
    if name is None:
        raise ParameterError("give a pipeline with --config FILE or --preset NAME (see 'medaug presets')")
    if name == "auto":
        from ..presets.auto import preset_for_channels

        return preset_for_channels(channel_names, where=where)
    return preset_config(name)


def pipeline_from_args(args: argparse.Namespace, channel_names=None, *, where=None):
    """The pipeline named by ``--config`` or ``--preset`` (errors name the config file)."""
    from ..engine.config import pipeline_from_config

    if getattr(args, "config", None):
        return pipeline_from_config(Path(args.config))
    return pipeline_from_config(pipeline_config_from_args(args, channel_names, where=where))
