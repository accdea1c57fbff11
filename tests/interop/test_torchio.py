"""medaug inside TorchIO pipelines, and TorchIO transforms inside medaug pipelines."""

from __future__ import annotations

import json

import numpy as np
import pytest

tio = pytest.importorskip("torchio")
import torch  # noqa: E402

import medaug  # noqa: E402
from medaug.engine.record import applied  # noqa: E402
from medaug.interop.geometry import affine_from_grid, embed_affine  # noqa: E402
from medaug.interop.torchio import MedaugTransform, TorchioStep, sample_from_subject  # noqa: E402
from medaug.spatial import RandomAffine  # noqa: E402

from .conftest import phantom, pipeline, to_xyz  # noqa: E402


def subject_of(s: medaug.Sample) -> tio.Subject:
    """A TorchIO subject holding the sample: (C, W, H, D) tensors, RAS affines, 2D as D == 1."""
    affine = embed_affine(affine_from_grid(s.grid, "RAS"), size=4)
    img = to_xyz(s["image"].array)
    lab = to_xyz(s["label"].array)
    if s.ndim == 2:
        img, lab = img[..., None], lab[..., None]
    return tio.Subject(
        ct=tio.ScalarImage(tensor=torch.from_numpy(img)[None], affine=affine, scanner="A"),
        seg=tio.LabelMap(tensor=torch.from_numpy(lab)[None], affine=affine),
        age=42,
    )


def check_same(out: tio.Subject, ref: medaug.Sample, *, atol: float = 0.0) -> None:
    expected = embed_affine(affine_from_grid(ref.grid, "RAS"), size=4)
    for name, medaug_name in (("ct", "image"), ("seg", "label")):
        image = out[name]
        np.testing.assert_allclose(image.affine, expected, atol=1e-9 if atol == 0 else 1e-4)
        got = image.data[0].numpy()
        got = got[..., 0] if ref.ndim == 2 else got
        if medaug_name == "label" or atol == 0:
            frac = (got.T == ref[medaug_name].array).mean()
            assert frac == 1.0 if atol == 0 else frac > 0.999
        else:
            np.testing.assert_allclose(got.T, ref[medaug_name].array, atol=atol)


def test_subject_matches_medaug(case):
    subject = subject_of(case)
    before = subject["ct"].data.clone()
    out = MedaugTransform(pipeline(), seed=3)(subject)
    assert isinstance(out, tio.Subject) and out is not subject
    assert type(out["ct"]) is tio.ScalarImage and type(out["seg"]) is tio.LabelMap
    assert out["ct"]["scanner"] == "A" and out["age"] == 42 and out.age == 42
    assert out["seg"].data.dtype == torch.uint8 and out["ct"].data.dtype == torch.float32
    assert torch.equal(subject["ct"].data, before)  # the input is not modified
    call = json.loads(out["medaug_history"])[0]
    ref = pipeline()(case, seed=call["seed"])
    check_same(out, ref)
    assert set(out["seg"].data.unique().tolist()) <= set(case["label"].label_values().tolist())
    assert out["ct"].data.shape[-1] == (1 if case.ndim == 2 else out["ct"].data.shape[-1])


def test_compose_dataset_and_history(tmp_path):
    s = phantom(3)
    medaug.save(s["image"], tmp_path / "ct.nii.gz")
    medaug.save(s["label"], tmp_path / "seg.nii.gz")
    subjects = [tio.Subject(ct=tio.ScalarImage(tmp_path / "ct.nii.gz"), seg=tio.LabelMap(tmp_path / "seg.nii.gz"))
                for _ in range(3)]
    transform = tio.Compose([tio.RescaleIntensity(out_min_max=(0, 1), percentiles=(0, 100)),
                             MedaugTransform(pipeline())])
    torch.manual_seed(0)
    out = transform(subjects[0])
    torch.manual_seed(0)
    again = transform(subjects[0])
    assert torch.equal(out["ct"].data, again["ct"].data)  # seed=None: follows torch.manual_seed, like TorchIO
    # equals medaug on the rescaled image (files read by TorchIO vs SimpleITK: float32 header precision)
    call = json.loads(out["medaug_history"])[0]
    arr = s["image"].array.astype(np.float64)
    unit = ((arr - arr.min()) / (arr.max() - arr.min())).astype(np.float32)
    rescaled = s.replace({"image": s["image"].with_data(unit)})
    check_same(out, pipeline()(rescaled, seed=call["seed"]), atol=1e-4)
    # TorchIO's own history: rebuilds the deterministic pipeline and reproduces the result
    names = [name for name, _ in out.applied_transforms]
    assert names == ["RescaleIntensity", "MedaugTransform"]
    replay = out.get_composed_history()
    rerun = replay(subjects[0])
    assert torch.equal(rerun["ct"].data, out["ct"].data) and torch.equal(rerun["seg"].data, out["seg"].data)
    # SubjectsDataset + DataLoader
    loader = torch.utils.data.DataLoader(tio.SubjectsDataset(subjects, transform=transform), batch_size=3)
    batch = next(iter(loader))
    assert batch["ct"][tio.DATA].shape == (3, 1, 22, 24, 20) and len(batch["medaug_history"]) == 3
    assert len({json.loads(h)[0]["seed"] for h in batch["medaug_history"]}) == 3


def test_inverse_for_test_time_augmentation():
    s = phantom(3, oblique=False)
    subject = subject_of(s)
    out = MedaugTransform(medaug.Compose([RandomAffine(rotation=8, translation=2)]), seed=1)(subject)
    inverse = out.get_inverse_transform(warn=False)
    back = inverse(out)
    assert back["seg"].shape == subject["seg"].shape
    np.testing.assert_allclose(back["seg"].affine, subject["seg"].affine, atol=1e-9)
    assert (back["seg"].data == subject["seg"].data).float().mean() > 0.97
    # an elastic deformation is inverted numerically
    elastic = MedaugTransform(pipeline(), seed=1)(subject)
    assert len(elastic.get_inverse_transform(warn=False).transforms) == 1
    back = elastic.get_inverse_transform(warn=False)(elastic)
    assert (back["seg"].data == subject["seg"].data).float().mean() > 0.97


def test_multichannel_include_and_errors():
    s = phantom(2)
    subject = subject_of(s)
    both = torch.cat([subject["ct"].data, -subject["ct"].data])
    subject = tio.Subject(ct=tio.ScalarImage(tensor=both, affine=subject["ct"].affine), seg=subject["seg"])
    sample, groups = sample_from_subject(subject)
    assert groups == {"ct": ["ct"], "seg": ["seg"]} and sample.ndim == 2 and sample["ct"].channels == 2
    out = MedaugTransform(medaug.Compose([RandomAffine(rotation=10)]), seed=0)(subject)
    assert out["ct"].data.shape == (2, 26, 30, 1)
    np.testing.assert_allclose(out["ct"].data[1], -out["ct"].data[0], atol=1e-3)
    # include: only the selected images move
    only = MedaugTransform(medaug.Compose([RandomAffine(rotation=10)]), seed=0, include=["ct"])(subject)
    assert torch.equal(only["seg"].data, subject["seg"].data)
    with pytest.raises(medaug.GeometryError, match="shear"):
        affine = np.eye(4)
        affine[0, 1] = 0.3
        MedaugTransform(pipeline())(tio.Subject(ct=tio.ScalarImage(tensor=torch.zeros(1, 8, 8, 8), affine=affine)))


def test_torchio_steps_in_a_medaug_pipeline():
    s = phantom(3)
    s.points["landmarks"] = np.zeros((1, 3))
    p = medaug.Compose([
        RandomAffine(rotation=5),
        TorchioStep(tio.RandomNoise(std=(5, 10))),
        TorchioStep(tio.RandomFlip(axes=(0,), flip_probability=0.5)),
        RandomAffine(scale=[0.95, 1.05]),
    ])
    torch.manual_seed(7)
    a, b, c = p(s, seed=11), p(s, seed=11), p(s, seed=12)
    assert torch.equal(torch.rand(2), (torch.manual_seed(7), torch.rand(2))[1])  # global state untouched
    np.testing.assert_array_equal(a["image"].array, b["image"].array)
    np.testing.assert_array_equal(a["label"].array, b["label"].array)
    assert not np.array_equal(a["image"].array, c["image"].array)
    assert [r["name"] for r in applied(a.history)] == ["Affine", "TorchioApplied", "TorchioApplied", "Affine"]
    rec = a.history[2]
    assert "RandomNoise" in rec["params"]["transform"] and "0x" not in rec["params"]["transform"]
    assert rec["params"]["spatial"] is False and a.history[3]["params"]["spatial"] is True
    json.dumps(a.history)
    assert set(a["label"].label_values().tolist()) <= {0, 1, 2, 3, 4} and a["label"].dtype == np.uint8
    assert not a.points
    with pytest.raises(medaug.ParameterError, match="cannot be rebuilt"):
        medaug.replay(a.history)
    # a flip step on 2D: the image stays 2D and moves with its label
    s2 = phantom(2, oblique=False)
    out = medaug.Compose([TorchioStep(tio.Flip(axes=(0,)))])(s2, seed=0)
    np.testing.assert_array_equal(out["image"].array, s2["image"].array[:, ::-1])
    np.testing.assert_array_equal(out["label"].array, s2["label"].array[:, ::-1])
    assert out.grid.same_as(s2.grid)
