"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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


def pipeline_name(args: argparse.Namespace, default_preset: str | None = None) -> str:
    """How the pipeline was given, for messages: ``pipeline FILE`` or ``preset NAME``."""
    if getattr(args, "config", None):
        return f"pipeline {args.config}"
    return f"preset {getattr(args, 'preset', None) or default_preset}"


def add_anonymize_arguments(parser: argparse.ArgumentParser, output: str = "OUTPUT") -> None:
    """``--anonymize-ids``, ``--id-salt``, ``--id-map`` (see :mod:`medaug.datasets.anonymize`)."""
    parser.add_argument("--anonymize-ids", action="store_true",
                        help="replace case ids (which come from file and folder names) by pseudonyms, case-<12 hex>, "
                             "in output names, the manifest and the job's files; leave source paths out of the "
                             "manifest; the map back goes to --id-map")
    parser.add_argument("--id-salt", metavar="FILE", help=f"secret key of the pseudonyms, made if missing; the same "
                        f"file gives the same pseudonyms in every command (default: {output}.id-salt, next to "
                        f"{output}, never inside)")
    parser.add_argument("--id-map", metavar="FILE", help=f"where the map from pseudonyms to case ids and source files "
                        f"goes, mode 0600 (default: {output}.id-map.csv, next to {output}, never inside)")


def one_case(args: argparse.Namespace, output: str) -> Any:
    """The case of ``args.image`` (and ``--label``), under its pseudonym with ``--anonymize-ids``, else checked for names."""
    from ..datasets.anonymize import anonymize_cases, warn_if_identifying
    from ..datasets.cases import Case, case_id_from_path

    image = Path(args.image)
    case = Case(case_id_from_path(image), image.resolve(), Path(args.label).resolve() if args.label else None)
    if args.anonymize_ids:
        (case,), _ = anonymize_cases([case], output, salt=args.id_salt, id_map=args.id_map)
    else:
        warn_if_identifying([case], case.image.parent)
    return case
