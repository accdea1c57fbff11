"""``medaug transforms [NAME] [--modality M]``: the transforms a configuration can name, and what limits them.

Without NAME: every transform with its one-line description, by kind (with
``--modality``, whether that modality's rules allow each).  With NAME: its
parameters (type, default, unit, allowed values), the presets that use it and
the rules of every modality (or of ``--modality`` only).  Everything comes from
:mod:`medaug.presets.catalog`, as the documentation's gallery does.
"""

from __future__ import annotations

import argparse
import json
import textwrap

_KINDS = (("spatial", "Spatial (move voxels; fused into one resampling)"), ("intensity", "Intensity (label maps untouched)"),
          ("group", "Groups"), ("other", "Other"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="one transform, e.g. RandomAffine (default: list all)")
    parser.add_argument("--modality", metavar="M",
                        help="ct, mri, xray or ultrasound: whether its rules allow the transform(s) and the limits they "
                             "set (default: every modality's rules with NAME, none in the list)")


def run(args: argparse.Namespace) -> int:
    from ..presets.catalog import transform_entries, transform_entry
    from ..presets.constraints import MODALITIES, canonical_modality

    modality = canonical_modality(args.modality) if args.modality else None
    if args.name is None:
        _list(transform_entries(), modality)
        return 0
    entry = transform_entry(args.name)
    print(f"{entry.name}  ({entry.kind}{', random' if entry.random else ''})")
    print(_wrapped(entry.summary, "  "))
    print("parameters:")
    for p in entry.parameters:
        facts = [p.type or "any", "required" if p.required else f"default {json.dumps(p.default)}"]
        facts += [f"unit {p.unit}"] if p.unit else []
        facts += [f"allowed {p.allowed}"] if p.allowed else []
        print(f"  {p.name}: {'; '.join(facts)}")
        if p.description:
            print(_wrapped(p.description, "      "))
    print(f"used by presets: {', '.join(entry.presets) if entry.presets else 'none'}")
    print("rules:")
    for m in [modality] if modality else MODALITIES:
        verdict = entry.verdict(m)
        print(f"  {m}: {verdict.status}")
        for line in verdict.limits:
            print(_wrapped(line, "      "))
    return 0


def _list(entries: dict, modality: str | None) -> None:
    width = max(len(n) for n in entries) + 2
    for kind, title in _KINDS:
        chosen = [e for e in entries.values() if e.kind == kind]
        if not chosen:
            continue
        print(f"{title}:" + (f"\n  {'':{width}s}{modality.upper() + ' rules':13s}" if modality else ""))
        for e in chosen:
            status = f"{e.verdict(modality).status:13s}" if modality else ""
            print(f"  {e.name:{width}s}{status}{e.summary}")
    print("\nmedaug transforms NAME: parameters, units, defaults, allowed values, presets and rules")


def _wrapped(text: str, indent: str) -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)
