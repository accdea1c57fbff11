"""``medaug info FILE``: geometry and value range of an image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ._common import add_channels_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="image file, or a folder holding a DICOM series")
    parser.add_argument("--label", action="store_true", help="read as a label map and list its label values (default: off)")
    parser.add_argument("--volume", type=int, default=None, help="volume index of a 4D image (default: every volume, "
                        "as channels)")
    add_channels_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text (default: off)")


def describe(image) -> dict:
    arr = image.array
    info = {
        "path": image.path,
        "dimensions": image.ndim,
        "size": list(image.grid.size_xyz),
        "spacing": [round(s, 6) for s in image.spacing],
        "origin": [round(o, 6) for o in image.origin],
        "direction": np.round(image.direction, 6).tolist(),
        "channels": image.channels,
        "dtype": str(arr.dtype),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
    }
    if image.channel_names is not None:
        info["channel_names"] = list(image.channel_names)
    if image.channel_axis:
        info["channel_ranges"] = [[float(c.min()), float(c.max())] for c in arr]
    if image.is_label:
        info["labels"] = [int(v) for v in np.unique(arr)]
    return info


def _named_by_dataset(image, path: Path):
    """The image with the channel names of the dataset.json of its dataset folder (``imagesTr/..``), if any."""
    from ..data.image import Image
    from ..datasets.nnunet import read_dataset_json
    from ..errors import MedaugError

    try:
        info = read_dataset_json(path.resolve().parent.parent)
    except MedaugError:
        return image
    if info is None or info.n_channels != image.channels:
        return image
    names = [info.channel_names[str(k)] for k in range(info.n_channels)]
    return Image(image.data, grid=image.grid, path=image.path, channel_names=names, metadata=image.metadata)


def run(args: argparse.Namespace) -> int:
    from ..data.io import load

    image = load(args.file, label=args.label, volume=args.volume, channels=args.channels)
    if image.channel_axis and image.channel_names is None:
        image = _named_by_dataset(image, Path(args.file))
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
    if image.channel_axis:
        names = info.get("channel_names") or [str(k) for k in range(image.channels)]
        ranges = ", ".join(f"{n} [{lo:g}, {hi:g}]" for n, (lo, hi) in zip(names, info["channel_ranges"]))
        print(f"channels:  {image.channels}: {ranges}")
    print(f"range:     [{info['min']:g}, {info['max']:g}], mean {info['mean']:.4g}")
    if image.is_label:
        print(f"labels:    {info['labels']}")
    return 0
