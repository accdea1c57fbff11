"""Phantoms on oblique, anisotropic grids and a medaug pipeline shared by the interop tests."""

from __future__ import annotations

import numpy as np
import pytest

import medaug
from medaug.spatial._axes import rotation_matrix

#: MONAI warns when its DICOM reader cannot use nvImageCodec (a missing GPU codec, harmless here).
NVIMGCODEC = "ignore:NvImgCodecPydicomReader:UserWarning"


def phantom(ndim: int, *, oblique: bool = True, seed: int = 1) -> medaug.Sample:
    """A Shepp–Logan phantom (image + labels 0..4) on an anisotropic, optionally oblique grid off the origin."""
    if ndim == 3:
        s = medaug.shepp_logan_3d((20, 24, 22), seed=seed, spacing=(0.9, 1.3, 2.5),
                                  direction=rotation_matrix([10.0, -15.0, 25.0]) if oblique else None)
        origin = (-50.0, 20.0, 7.5)
    else:
        s = medaug.shepp_logan_2d((30, 26), seed=seed, spacing=(0.8, 1.7),
                                  direction=rotation_matrix([20.0]) if oblique else None)
        origin = (-12.0, 40.0)
    grid = s.grid.with_(origin=origin)
    return medaug.Sample(image=s["image"].with_data(s["image"].array, grid),
                         label=s["label"].with_data(s["label"].array, grid), metadata={"modality": "ct"})


def pipeline() -> medaug.Compose:
    """Affine + elastic + intensity: one fused resampling and point-wise steps."""
    from medaug.intensity import RandomGamma, RandomNoise
    from medaug.spatial import RandomAffine, RandomElastic

    return medaug.Compose([
        RandomAffine(rotation=10, scale=[0.9, 1.1], translation=3),
        RandomElastic(control_points=5, max_displacement=3),
        RandomGamma(log_gamma=0.2),
        RandomNoise(std=[1, 5]),
    ])


def to_xyz(arr: np.ndarray) -> np.ndarray:
    """medaug (z, y, x) -> the (x, y, z) order of MONAI and TorchIO."""
    return np.ascontiguousarray(np.asarray(arr).T)


@pytest.fixture(params=["3d-oblique", "2d-oblique", "3d-axial"])
def case(request) -> medaug.Sample:
    nd, kind = request.param.split("-")
    return phantom(int(nd[0]), oblique=kind == "oblique")
