"""Checks on 2D picture formats before SimpleITK reads them.

SimpleITK reads a multi-page TIFF as a volume sized by its first page: pages
of another size or bit depth come out cropped, cast or filled with whatever
was in memory.  The pages are listed with ``tifffile`` first; a volume is read
only when every page has the same size, samples and type.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import ImageReadError

__all__ = ["check_tiff"]

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
