"""medaug inside MONAI dictionary pipelines, and MONAI transforms inside medaug pipelines."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("monai")
import torch  # noqa: E402
from monai.data import MetaTensor  # noqa: E402
from monai.transforms import Compose as MonaiCompose  # noqa: E402
from monai.transforms import (  # noqa: E402
    EnsureChannelFirstd,
    LoadImaged,
    RandFlipd,
    RandGaussianNoised,
    ScaleIntensityRanged,
)

import medaug  # noqa: E402
from medaug.engine.record import applied
from medaug.interop.geometry import affine_from_grid, embed_affine, grid_from_affine  # noqa: E402
from medaug.interop.monai import MedaugD, MonaiStep, sample_from_dict  # noqa: E402
from medaug.spatial import RandomAffine  # noqa: E402

from .conftest import NVIMGCODEC, phantom, pipeline, to_xyz  # noqa: E402


def monai_dict(s: medaug.Sample, *, extra_meta: dict | None = None) -> dict:
    """A MONAI dictionary as LoadImaged + EnsureChannelFirstd would give it (float32, 4x4 RAS affine)."""
    affine = torch.as_tensor(embed_affine(affine_from_grid(s.grid, "RAS"), size=4), dtype=torch.float64)
    meta = {"filename_or_obj": "in-memory", **(extra_meta or {})}
    return {
        "image": MetaTensor(torch.from_numpy(to_xyz(s["image"].array.astype(np.float32)))[None], affine=affine,
                            meta=dict(meta)),
        "label": MetaTensor(torch.from_numpy(to_xyz(s["label"].array.astype(np.float32)))[None], affine=affine,
                            meta=dict(meta)),
        "subject": "p001",
    }


def check_same(out: dict, ref: medaug.Sample, *, exact: bool = True) -> None:
    """The MONAI result equals medaug's own result: voxels (after the axis order change) and RAS affine."""
    nd = ref.ndim
    img, lab = out["image"], out["label"]
    assert isinstance(img, MetaTensor) and img.shape == (1, *reversed(ref.grid.shape))
    expected = embed_affine(affine_from_grid(ref.grid, "RAS"), size=4)
    np.testing.assert_allclose(img.affine.numpy(), expected, atol=1e-9 if exact else 1e-4)
    np.testing.assert_allclose(lab.affine.numpy(), expected, atol=1e-9 if exact else 1e-4)
    got = img[0].numpy().T
    if exact:
        np.testing.assert_array_equal(got, ref["image"].array)
        np.testing.assert_array_equal(lab[0].numpy().T, ref["label"].array)
    else:  # a file read by NiBabel (MONAI) and by SimpleITK (medaug): geometry equal to float32 precision
        np.testing.assert_allclose(got, ref["image"].array, atol=0.01)
        assert (lab[0].numpy().T == ref["label"].array).mean() > 0.999
    assert lab.dtype == torch.float32 and set(np.unique(lab.numpy())) <= {0, 1, 2, 3, 4}
    assert grid_from_affine(img.affine.numpy(), img.shape[1:]).same_as(ref.grid) and ref.grid.ndim == nd


def test_dict_matches_medaug(case):
    d = monai_dict(case, extra_meta={"patient": "x"})
    t = MedaugD(pipeline(), keys="image", label_keys="label", seed=3)
    out = t(d)
    calls = json.loads(out["medaug_history"])
    assert len(calls) == 1 and [r["name"] for r in applied(calls[0]["history"])][:2] == ["Affine", "ElasticBSpline"]
    ref = pipeline()(case, seed=calls[0]["seed"])
    check_same(out, ref)
    assert set(np.unique(out["label"].numpy())) <= set(case["label"].label_values().tolist())
    assert out["image"].meta["patient"] == "x" and out["image"].meta["filename_or_obj"] == "in-memory"
    assert out["subject"] == "p001" and d["image"].shape == out["image"].shape  # input dict not modified
    assert torch.equal(d["image"], monai_dict(case)["image"])
    # the recorded history replays on medaug's side
    again = medaug.replay(calls[0]["history"])(case)
    np.testing.assert_array_equal(again["image"].array, ref["image"].array)
    # a second call appends to the history and draws another seed
    out2 = t(out)
    calls2 = json.loads(out2["medaug_history"])
    assert len(calls2) == 2 and calls2[0] == calls[0] and calls2[1]["seed"] != calls[0]["seed"]


@pytest.mark.filterwarnings(NVIMGCODEC)
def test_loadimaged_compose_matches_medaug(tmp_path):
    s = phantom(3)
    medaug.save(s["image"], tmp_path / "ct.nii.gz")
    medaug.save(s["label"], tmp_path / "seg.nii.gz")
    aug = MedaugD(pipeline(), keys=("image",), label_keys=("label",), seed=0)
    chain = MonaiCompose([
        LoadImaged(keys=["image", "label"], image_only=True),
        EnsureChannelFirstd(keys=["image", "label"]),
        aug,
        ScaleIntensityRanged(keys="image", a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True),
    ])
    chain.set_random_state(seed=7)
    files = {"image": str(tmp_path / "ct.nii.gz"), "label": str(tmp_path / "seg.nii.gz")}
    out = chain(dict(files))
    seed = json.loads(out["medaug_history"])[0]["seed"]
    from medaug.datasets.cases import Case, load_case

    ref = pipeline()(load_case(Case("ct", tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz")), seed=seed)
    scaled = dict(out, image=out["image"] * 2000.0 - 1000.0)
    ref_clipped = ref.replace({"image": ref["image"].with_data(np.clip(ref["image"].array, -1000, 1000))})
    check_same(scaled, ref_clipped, exact=False)
    assert out["image"].meta["filename_or_obj"].endswith("ct.nii.gz")
    # MONAI's set_random_state makes the whole chain reproducible
    chain.set_random_state(seed=7)
    again = chain(dict(files))
    assert torch.equal(again["image"], out["image"]) and again["medaug_history"] == out["medaug_history"]


def test_dataloader_batches_and_workers():
    from monai.data import DataLoader, Dataset

    s = phantom(3, oblique=False)
    items = [monai_dict(s) for _ in range(4)]
    aug = MedaugD(medaug.Compose([RandomAffine(rotation=10)]), seed=0)
    loader = DataLoader(Dataset(items, transform=aug), batch_size=2, num_workers=0)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 1, 22, 24, 20) and batch["image"].affine.shape == (2, 4, 4)
    assert len(batch["medaug_history"]) == 2
    # monai.data.DataLoader re-seeds MedaugD in each worker: no two workers repeat an augmentation
    loader = DataLoader(Dataset(items, transform=aug), batch_size=1, num_workers=2)
    seeds = [json.loads(b["medaug_history"][0])[0]["seed"] for b in loader]
    assert len(set(seeds)) == 4


def test_multichannel_and_errors():
    s = phantom(2)
    d = monai_dict(s)
    d["image"] = MetaTensor(torch.cat([d["image"].as_tensor(), 2 * d["image"].as_tensor()]), affine=d["image"].affine)
    sample, names = sample_from_dict(d, ["image"], ["label"])
    assert names == {"image": ["image"], "label": ["label"]}  # one image with two channels
    assert sample["image"].channels == 2 and not sample["image"].array.flags["C_CONTIGUOUS"]  # a view, not a copy
    out = MedaugD(medaug.Compose([RandomAffine(rotation=10)]), seed=1)(d)
    assert out["image"].shape[0] == 2
    np.testing.assert_allclose(out["image"][1].numpy(), 2 * out["image"][0].numpy(), rtol=1e-5, atol=1e-2)
    # not channel-first
    d3 = monai_dict(phantom(3))
    d3["image"] = MetaTensor(d3["image"].as_tensor()[0], affine=d3["image"].affine,
                             meta={"original_channel_dim": "no_channel"})
    if getattr(d3["image"], "spatial_ndim", None) == 3:
        with pytest.raises(medaug.ParameterError, match="EnsureChannelFirstd"):
            MedaugD(pipeline())(d3)
    # sheared affine
    d = monai_dict(phantom(3, oblique=False))
    sheared = d["image"].affine.clone()
    sheared[0, 1] = 0.5
    d["image"] = MetaTensor(d["image"].as_tensor(), affine=sheared)
    with pytest.raises(medaug.GeometryError, match="shear"):
        MedaugD(pipeline())(d)
    # non-integer labels
    d = monai_dict(phantom(3, oblique=False))
    d["label"] = d["label"] + 0.5
    with pytest.raises(medaug.InvalidImageError, match="non-integer"):
        MedaugD(pipeline())(d)
    with pytest.raises(medaug.ParameterError, match="both"):
        MedaugD(pipeline(), keys="image", label_keys="image")


def test_lps_space_and_plain_tensors():
    s = phantom(3)
    d = monai_dict(s)
    lps = torch.as_tensor(embed_affine(affine_from_grid(s.grid, "LPS"), size=4))
    d["image"] = MetaTensor(d["image"].as_tensor(), affine=lps, meta={"space": "LPS"})
    d["label"] = MetaTensor(d["label"].as_tensor(), affine=lps, meta={"space": "LPS"})
    out = MedaugD(pipeline(), seed=2)(d)
    ref = pipeline()(s, seed=json.loads(out["medaug_history"])[0]["seed"])
    expected = embed_affine(affine_from_grid(ref.grid, "LPS"), size=4)
    np.testing.assert_allclose(out["image"].affine.numpy(), expected, atol=1e-9)
    np.testing.assert_array_equal(out["image"][0].numpy().T, ref["image"].array)
    # plain tensors and arrays: MONAI's default geometry (identity), same types back
    plain = {"image": torch.zeros(1, 12, 12, 12), "label": np.zeros((1, 12, 12, 12), np.uint8)}
    res = MedaugD(pipeline(), seed=0)(plain)
    assert type(res["image"]) is torch.Tensor
    assert isinstance(res["label"], np.ndarray) and res["label"].dtype == np.uint8


def test_monai_steps_in_a_medaug_pipeline():
    s = phantom(3)
    s.points["landmarks"] = np.zeros((1, 3))
    noise = MonaiStep(RandGaussianNoised(keys="image", prob=1.0, std=20.0))
    flip = MonaiStep(RandFlipd(keys=["image", "label"], prob=0.5, spatial_axis=0))
    p = medaug.Compose([RandomAffine(rotation=5), noise, flip, RandomAffine(scale=[0.9, 1.1])])
    torch.manual_seed(123)
    np.random.seed(5)
    a, b, c = p(s, seed=4), p(s, seed=4), p(s, seed=5)
    # the caller's global random state is left alone
    assert torch.equal(torch.rand(3), (torch.manual_seed(123), torch.rand(3))[1])
    np.testing.assert_array_equal(a["image"].array, b["image"].array)
    assert not np.array_equal(a["image"].array, c["image"].array)
    names = [r["name"] for r in applied(a.history)]
    assert names == ["Affine", "MonaiApplied", "MonaiApplied", "Affine"]
    rec = a.history[2]
    assert rec["replayable"] is False and "RandGaussianNoised" in rec["params"]["transform"]
    assert isinstance(rec["params"]["seed"], int) and rec["params"]["spatial"] is False
    assert a.history[3]["params"]["spatial"] is True
    json.dumps(a.history)
    assert set(a["label"].label_values().tolist()) <= {0, 1, 2, 3, 4} and a["label"].dtype == np.uint8
    assert not a.points and "landmarks" in a.metadata["dropped"]  # a spatial foreign step drops landmarks
    with pytest.raises(medaug.ParameterError, match="cannot be rebuilt"):
        medaug.replay(a.history)
    with pytest.raises(medaug.ParameterError, match="MonaiStep"):
        medaug.pipeline_from_config(p.to_config())
    # the noise step alone keeps landmarks and leaves labels untouched
    only = medaug.Compose([noise])(s, seed=0)
    assert "landmarks" in only.points
    np.testing.assert_array_equal(only["label"].array, s["label"].array)


def test_monai_step_inside_medaugd_inside_monai():
    s = phantom(2)
    inner = medaug.Compose([RandomAffine(rotation=5), MonaiStep(RandGaussianNoised(keys="image", prob=1.0, std=5.0))])
    out = MonaiCompose([MedaugD(inner, seed=0)])(monai_dict(s))
    call = json.loads(out["medaug_history"])[0]
    assert [r["name"] for r in applied(call["history"])] == ["Affine", "MonaiApplied"]
    ref = inner(s, seed=call["seed"])
    np.testing.assert_array_equal(out["image"][0].numpy().T, ref["image"].array)
