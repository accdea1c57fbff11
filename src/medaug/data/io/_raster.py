"""Checks on 2D picture formats before SimpleITK reads them, and the PNGs it cannot read.

SimpleITK reads a multi-page TIFF as a volume sized by its first page: pages
of another size or bit depth come out cropped, cast or filled with whatever
was in memory.  The pages are listed with ``tifffile`` first; a volume is read
only when every page has the same size, samples and type.

SimpleITK's PNG reader refuses grey + alpha PNGs (colour type 4) as an
"unknown pixel type": 8-bit ones are read here with Pillow, as grey (alpha is
a display mask), on the same unit grid SimpleITK gives a grey PNG.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ...errors import ImageReadError

__all__ = ["check_tiff", "png_colour", "read_grey_alpha_png"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type 4: grey with alpha.
GREY_ALPHA = 4

_MAX_PAGES = 65_536


def check_tiff(p: Path) -> None:
    """Refuse a TIFF whose pages differ in size or type, or that ``tifffile`` cannot parse.

    Raises
    ------
    ImageReadError
        Naming the file and the first page that differs from page 0.
    """
    import tifffile

    where = str(p)
    try:
        with tifffile.TiffFile(p) as tif:
            first = None
            for i, page in enumerate(tif.pages):
                if i >= _MAX_PAGES:
                    raise ImageReadError(f"has more than {_MAX_PAGES} pages; split it into smaller files", path=where)
                layout = (tuple(page.shape), str(page.dtype))
                if first is None:
                    first = layout
                elif layout != first:
                    raise ImageReadError(
                        f"is a multi-page TIFF whose pages differ (page 0: {_text(first)}, page {i}: {_text(layout)}); "
                        "medaug reads a multi-page TIFF as a volume only when every page has the same size and type: "
                        "save the pages as separate files",
                        path=where,
                    )
    except ImageReadError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse failure of a hostile file is one clear line
        raise ImageReadError(
            f"cannot be read as TIFF: {str(err).splitlines()[0][:200] if str(err) else type(err).__name__}; the "
            "file is corrupt or not really TIFF: check it in a viewer, or export it again",
            path=where,
        ) from None


def _text(layout: tuple[tuple[int, ...], str]) -> str:
    shape, dtype = layout
    return f"{' x '.join(str(s) for s in shape)} {dtype}"


def png_colour(p: Path) -> tuple[int, int] | None:
    """``(colour type, bit depth)`` from a PNG's IHDR chunk, or None when the file does not start as a PNG."""
    try:
        with p.open("rb") as fh:
            head = fh.read(33)
    except OSError:
        return None
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    depth, colour = struct.unpack(">BB", head[24:26])
    return colour, depth


def read_grey_alpha_png(p: Path) -> np.ndarray | None:
    """The grey values (y, x) of an 8-bit grey + alpha PNG; None for any other PNG (SimpleITK reads those).

    Raises
    ------
    ImageReadError
        For a 16-bit grey + alpha PNG (Pillow would reduce it to 8 bits), or one Pillow cannot decode.
    """
    found = png_colour(p)
    if found is None or found[0] != GREY_ALPHA:
        return None
    if found[1] != 8:
        raise ImageReadError(
            f"is a {found[1]}-bit grey + alpha PNG, which medaug cannot read without losing precision; save it as "
            "greyscale without alpha (e.g. a 16-bit grey PNG or NIfTI)",
            path=str(p),
        )
    from PIL import Image as PILImage

    try:
        with PILImage.open(p) as pic:
            pic.load()
            return np.asarray(pic.getchannel("L"))
    except Exception as err:  # noqa: BLE001 - a damaged file is one clear line
        raise ImageReadError(
            f"is a grey + alpha PNG that cannot be decoded ({str(err).splitlines()[0][:200] if str(err) else type(err).__name__}); "
            "the file is corrupt or truncated: check it in a viewer, or export it again",
            path=str(p),
        ) from None
