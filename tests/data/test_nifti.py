"""NIfTI files judged as the standard says: size from the header, scaling, qform/sform."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pytest

from medaug.data import Image, load, save
from medaug.errors import ImageReadError


def _small(path: Path) -> bytes:
    save(Image(np.arange(6 * 10 * 12, dtype=np.int16).reshape(6, 10, 12)), path)
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_gigabytes_after_the_voxels_are_refused_without_reading_them(tmp_path, dtype):
    """A 4 GiB run of zeros after a 1.4 kB image, 4 MB on disk (concatenated gzip members decompress as one stream)."""
    image = Image(np.ones((6, 10, 12), dtype=dtype))
    save(image, tmp_path / "plain.nii")
    path = tmp_path / "trailing.nii.gz"
    zeros = gzip.compress(bytes(64 * 2**20), compresslevel=1)
    path.write_bytes(gzip.compress((tmp_path / "plain.nii").read_bytes()) + zeros * 64)
    t0 = time.perf_counter()
    with pytest.raises(ImageReadError, match="more than 1 MiB of data after the .* bytes its header describes"):
        load(path)
    assert time.perf_counter() - t0 < 1.0


def test_padding_after_the_voxels_is_accepted(tmp_path):
    raw = _small(tmp_path / "a.nii")
    for name, data in (("pad.nii", raw + bytes(4096)), ("pad.nii.gz", gzip.compress(raw + bytes(4096)))):
        (tmp_path / name).write_bytes(data)
        assert load(tmp_path / name).shape == (6, 10, 12)
