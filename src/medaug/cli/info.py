"""``medaug info FILE``: geometry and value range of an image."""

from __future__ import annotations

import argparse
import json

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="image file, or a folder holding a DICOM series")
    parser.add_argument("--label", action="store_true", help="read as a label map (lists the label values)")
    parser.add_argument("--volume", type=int, default=None, help="volume index of a 4D image")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def describe(image) -> dict:
    arr = image.array
    info = {
        "path": image.path,
        "dimensions": image.ndim,
        "size": list(image.grid.size_xyz),
        "spacing": [round(s, 6) for s in image.spacing],
        "origin": [round(o, 6) for o in image.origin],
        "direction": np.round(image.direction, 6).tolist(),
        "dtype": str(arr.dtype),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
    }
    if image.is_label:
        info["labels"] = [int(v) for v in np.unique(arr)]
    return info


def run(args: argparse.Namespace) -> int:
    from ..data.io import load

    image = load(args.file, label=args.label, volume=args.volume)
    info = describe(image)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    fmt = lambda v: "(" + ", ".join(f"{x:g}" for x in v) + ")"  # noqa: E731
    print(f"file:      {info['path']}")
    print(f"size:      {fmt(info['size'])} voxels (x, y{', z' if image.ndim == 3 else ''})")
    print(f"spacing:   {fmt(info['spacing'])} mm")
    print(f"origin:    {fmt(info['origin'])} mm")
    print("direction: " + "; ".join(fmt(row) for row in info["direction"]))
    print(f"dtype:     {info['dtype']}")
    print(f"range:     [{info['min']:g}, {info['max']:g}], mean {info['mean']:.4g}")
    if image.is_label:
        print(f"labels:    {info['labels']}")
    return 0
