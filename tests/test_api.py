"""The top-level names: the core at ``import medaug``, the rest (transforms, sub-packages, AugmentedDataset) on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import medaug

#: Loaded on first use only: importing them with ``medaug`` would slow ``import medaug`` and ``medaug --help``.
NOT_AT_IMPORT = ("matplotlib", "scipy", "skimage", "numba", "nibabel", "pydicom", "PIL", "monai", "torchio", "pandas",
                 "medaug.spatial", "medaug.intensity", "medaug.datasets", "medaug.registration", "medaug.preview")


def test_import_medaug_loads_no_transform_module_or_heavy_library():
    code = f"import sys, medaug\nprint([m for m in {NOT_AT_IMPORT!r} if m in sys.modules])"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("name, module", [
    ("AugmentedDataset", "medaug.datasets.torch_dataset"), ("RandomAffine", "medaug.spatial.affine"),
    ("RandomGhosting", "medaug.intensity.mri_artifacts"), ("Resample", "medaug.spatial.resample"),
])
def test_main_names_are_top_level_attributes(name, module):
    assert getattr(medaug, name).__module__ == module
    assert name in dir(medaug)


def test_sub_packages_are_attributes():
    assert medaug.spatial.RandomFlip is medaug.RandomFlip
    assert medaug.intensity.RandomGamma is medaug.RandomGamma
    assert {"spatial", "intensity", "datasets", "registration"} <= set(dir(medaug))


def test_every_transform_is_a_top_level_name():
    from medaug.engine.config import transform_names
    from medaug.engine.registry import transform_class

    public = set(dir(medaug))
    missing = [n for n in transform_names() if transform_class(n).__module__.startswith(("medaug.spatial",
               "medaug.intensity")) and n not in public]
    assert missing == []


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'medaug' has no attribute 'RandomAfine'"):
        medaug.RandomAfine  # noqa: B018
    assert not hasattr(medaug, "_private")
