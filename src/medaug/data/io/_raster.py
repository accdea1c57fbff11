"""Checks on 2D picture formats before SimpleITK reads them, and the PNGs it cannot read.

SimpleITK reads a multi-page TIFF as a volume sized by its first page: pages
of another size or bit depth come out cropped, cast or filled with whatever
was in memory.  The pages are listed with ``tifffile`` first; a volume is read
only when every page has the same size, samples and type.

SimpleITK's BMP reader reads the rows a BMP header describes whether or not the
file holds them, and fills what a run-length encoded bitmap skips with nothing:
both came out as uninitialised memory.  Its JPEG reader fills what a cut JPEG
lacks with grey.  Both formats are sized from their headers first.

SimpleITK's PNG reader refuses grey + alpha PNGs (colour type 4) as an
"unknown pixel type": 8-bit ones are read here with Pillow, as grey (alpha is
a display mask), on the same unit grid SimpleITK gives a grey PNG.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ...errors import ImageReadError

__all__ = ["check_bmp", "check_jpeg", "check_tiff", "png_colour", "read_grey_alpha_png"]

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


#: BMP compression codes medaug's reader cannot take safely, in words.
_BMP_COMPRESSION = {1: "run-length encoded (RLE8)", 2: "run-length encoded (RLE4)", 4: "JPEG-compressed",
                    5: "PNG-compressed"}


def check_bmp(p: Path) -> None:
    """Refuse a BMP shorter than its rows, or compressed (ITK leaves what it does not read as uninitialised memory).

    Raises
    ------
    ImageReadError
        Naming the file, with the bytes described and present.
    """
    where = str(p)
    try:
        with p.open("rb") as fh:
            head = fh.read(54)
        size = p.stat().st_size
    except OSError:
        return  # the reader reports it
    if len(head) < 26 or head[:2] != b"BM":
        return  # not a BMP: the reader says so
    offset, dib = struct.unpack("<II", head[10:18])
    if dib == 12:  # OS/2 BITMAPCOREHEADER
        width, height, bits = struct.unpack("<HH2xH", head[18:26])
        compression = 0
    elif dib >= 40 and len(head) >= 34:
        width, height, bits, compression = struct.unpack("<ii2xHI", head[18:34])
    else:
        return
    if compression in _BMP_COMPRESSION:
        raise ImageReadError(
            f"is a {_BMP_COMPRESSION[compression]} BMP, which medaug's reader cannot read safely (it leaves the "
            "pixels it skips as uninitialised memory); save it as an uncompressed BMP, or as PNG",
            path=where,
        )
    needed = offset + (abs(width) * bits + 31) // 32 * 4 * abs(height)
    if compression in (0, 3) and size < needed:
        raise ImageReadError(
            f"is truncated: its header describes {needed} bytes (rows of {abs(width)} x {bits}-bit pixels from byte "
            f"{offset}) but the file holds only {size} ({100 * size / needed:.0f}%); copy or export the image again",
            path=where,
        )


def check_jpeg(p: Path) -> None:
    """Refuse a JPEG that ends before its end-of-image marker (the reader would fill the rest with grey).

    The markers are followed from the start of the file: segments by their
    length, entropy-coded data up to the next marker (``FF 00`` and restart
    markers belong to the data), scans after scans (progressive JPEG), until
    ``EOI``.  A file this walk cannot follow is left to the reader.

    Raises
    ------
    ImageReadError
        Naming the file.
    """
    try:
        data = p.read_bytes()
    except OSError:
        return
    if data[:2] != b"\xff\xd8":
        return
    i, n = 2, len(data)
    while True:
        while i < n and data[i] != 0xFF:  # between segments (or inside entropy-coded data): look for a marker
            i += 1
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:
            return  # end of image
        if marker == 0x00 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # a stuffed FF in the data, a restart marker, TEM: no length
        if i + 2 > n:
            break
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            return  # not a JPEG this walk understands: the reader reports it
        i += length
        if i > n:
            break
    raise ImageReadError(
        f"is truncated: its JPEG data end (at byte {n}) before the end-of-image marker; copy or export the image again",
        path=str(p),
    )


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
