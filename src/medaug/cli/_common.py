"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ParameterError


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet``, which every command has (added by :func:`medaug.cli.main.build_parser`)."""
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print no progress bars or status lines, only the closing summary, results, warnings and "
                             "errors (default: off)")


def say(args: argparse.Namespace, *text: Any) -> None:
    """Print a status line, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(*text, flush=True)


def add_output_argument(parser: argparse.ArgumentParser, what: str, *, kind: str = "folder", default: str | None = None,
                        positional: str | None = None) -> None:
    """``-o/--out``: where a command writes, a ``folder`` or a ``file``; required unless it has a ``default``.

    ``positional`` keeps an older positional form (e.g. ``OUTPUT``) as a deprecated alias of ``-o``.
    """
    when = f"default: {default}" if default is not None else "required"
    parser.add_argument("-o", "--out", default=default, metavar=positional or kind.upper(), help=f"{what} ({when})")
    if positional:
        parser.add_argument("legacy_out", nargs="?", metavar=positional,
                            help=f"deprecated spelling of -o/--out {positional}, kept for old scripts")
    parser.set_defaults(output_kind=kind, output_required=default is None)


def resolve_output(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Settle ``args.out`` (the deprecated positional form too) and refuse an output of the wrong kind.

    Usage errors (missing or doubled) go through ``parser.error``, with the command's usage; an output folder
    that is an existing file, or an output file that is a folder, is a :class:`~medaug.errors.ParameterError`.
    """
    kind = getattr(args, "output_kind", None)
    if kind is None:
        return
    legacy = getattr(args, "legacy_out", None)
    if legacy is not None:
        if args.out is not None and args.out != parser.get_default("out"):
            parser.error(f"the output is given twice ({legacy} and -o {args.out}); give it once, with -o/--out")
        args.out = legacy
    if args.out is None:
        parser.error("the following arguments are required: -o/--out")


def check_output(args: argparse.Namespace) -> None:
    """Refuse an output folder that is an existing file, or an output file that is an existing folder."""
    kind, out = getattr(args, "output_kind", None), getattr(args, "out", None)
    if kind is None or out is None:
        return
    path = Path(out)
    if kind == "folder" and path.exists() and not path.is_dir():
        raise ParameterError("is a file, and -o/--out names the folder this command writes into; give a new or "
                             "existing folder, or remove the file", path=path)
    if kind == "file" and path.is_dir():
        raise ParameterError("is a folder, and -o/--out names the file this command writes; give a file name",
                             path=path)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", metavar="FILE", help="pipeline config (YAML or JSON list of {Transform: {params}}); give this or --preset "
                       "(default: none)")
    group.add_argument("--preset", metavar="NAME", help="modality preset: ct, ct-light, mri, mri-heavy, xray, "
                       "ultrasound, or auto (each channel's modality from the dataset's channel names); see 'medaug "
                       "presets' (default: none)")


def add_channels_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels", choices=("rgb",), default=None,
                        help="rgb: read colour pictures (PNG, JPEG, TIFF, BMP, DICOM) as three channels R, G, B; "
                             "an alpha channel must be fully opaque (default: colour is refused, grey stored as RGB is "
                             "read as grey)")


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
                             "manifest; the map back goes to --id-map (default: off)")
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
