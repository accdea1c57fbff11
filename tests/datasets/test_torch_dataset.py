"""On-the-fly dataset: distinct per worker and epoch, reproducible, patches, caching."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import medaug
from medaug.datasets.torch_dataset import AugmentedDataset, collate
from medaug.engine.record import applied

PIPE = [{"RandomAffine": {"rotation": 10, "translation": 2}}, {"RandomNoise": {"std": [0, 5]}}]


@pytest.fixture(scope="module")
def cases():
    return [medaug.shepp_logan_3d(24, seed=i) for i in range(6)]


def _histories(ds, workers, epoch=0):
    ds.set_epoch(epoch)
    dl = DataLoader(ds, batch_size=2, num_workers=workers, collate_fn=collate)
    return [h for b in dl for h in b["history"]]


def test_workers_differ_and_reruns_reproduce(cases):
    ds = AugmentedDataset(cases, medaug.pipeline_from_config(PIPE), seed=3)
    two = _histories(ds, 2)
    assert len(set(two)) == len(two)  # every item, whichever worker, got its own augmentation
    assert two == _histories(ds, 2)  # same seed, same epoch: identical
    assert two == _histories(ds, 0)  # independent of the number of workers
    assert _histories(ds, 2, epoch=1) != two  # a new epoch, new augmentations
    other = AugmentedDataset(cases, medaug.pipeline_from_config(PIPE), seed=4)
    assert _histories(other, 0) != two


def test_items_carry_tensors_geometry_and_history(cases):
    ds = AugmentedDataset(cases, medaug.pipeline_from_config(PIPE), seed=0)
    item = ds[1]
    assert item["image"].shape == (1, 24, 24, 24) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.int64
    assert set(item["label"].unique().tolist()) <= {0, 1, 2, 3, 4}
    assert item["spacing"].tolist() == [1.0, 1.0, 1.0]
    assert applied(json.loads(item["history"]))[0]["name"] == "Affine"


def test_patch_sampling_hits_foreground_at_requested_rate():
    s = medaug.shepp_logan_3d(48, seed=0)
    lab = s["label"].array
    small = (lab == 3)  # ventricles: a small share of the volume
    s = s.replace({"label": s["label"].with_data(small.astype(np.uint8))})
    uniform_rate = small.mean()
    ds = AugmentedDataset([s], None, seed=1, patch_size=(9, 9, 9), foreground_fraction=0.5)
    n = 300
    hits = 0
    for epoch in range(n):
        ds.set_epoch(epoch)
        hits += int(ds[0]["label"][0, 4, 4, 4] > 0)
    expected = 0.5 + 0.5 * uniform_rate
    sd = np.sqrt(expected * (1 - expected) / n)
    assert abs(hits / n - expected) < 4 * sd


def test_patch_pipeline_samples_only_the_patch_region(cases):
    ds = AugmentedDataset(cases, medaug.pipeline_from_config(PIPE), seed=0, patch_size=(8, 10, 12))
    item = ds[0]
    assert item["image"].shape == (1, 8, 10, 12)
    assert applied(json.loads(item["history"]))[0]["name"] == "Crop"


def test_disk_cache_gives_the_same_items(cases, tmp_path):
    plain = AugmentedDataset(cases[:2], medaug.pipeline_from_config(PIPE), seed=0)
    cached = AugmentedDataset(cases[:2], medaug.pipeline_from_config(PIPE), seed=0, cache=tmp_path / "cache")
    first = cached[1]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    again = AugmentedDataset(cases[:2], medaug.pipeline_from_config(PIPE), seed=0, cache=tmp_path / "cache")[1]
    torch.testing.assert_close(first["image"], plain[1]["image"])
    torch.testing.assert_close(again["image"], plain[1]["image"])


def test_reads_a_csv_of_files(tmp_path):
    s = medaug.shepp_logan_2d(32, seed=0)
    medaug.save(s["image"], tmp_path / "a.nii.gz")
    medaug.save(s["label"], tmp_path / "a_seg.nii.gz")
    (tmp_path / "list.csv").write_text("image,label,target\na.nii.gz,a_seg.nii.gz,1\n")
    ds = AugmentedDataset(tmp_path / "list.csv", medaug.pipeline_from_config(PIPE), seed=0)
    item = ds[0]
    assert item["target"].item() == 1 and item["image"].shape == (1, 32, 32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pipeline_runs_on_cuda_tensors():
    s = medaug.shepp_logan_3d(24, seed=0)
    gpu = medaug.Sample(image=medaug.Image(s["image"].tensor.cuda(), grid=s["image"].grid),
                        label=medaug.Image(s["label"].tensor.cuda(), grid=s["label"].grid, is_label=True))
    pipe = medaug.pipeline_from_config(PIPE, backend="torch")
    out_gpu, out_cpu = pipe(gpu, seed=1), pipe(s, seed=1)
    assert out_gpu["image"].data.is_cuda
    np.testing.assert_allclose(out_gpu["image"].array, out_cpu["image"].array, atol=1e-2)


def test_batch_augmenter_draws_what_the_dataset_would(cases):
    from medaug.datasets.torch_dataset import BatchAugmenter

    pipe = medaug.pipeline_from_config(PIPE, backend="torch")
    per_item = AugmentedDataset(cases, pipe, seed=5)
    plain = AugmentedDataset(cases, None, seed=5)
    per_item.set_epoch(2)
    batch = collate([plain[0], plain[3]])
    out = BatchAugmenter(pipe, device="cpu", seed=5)(batch, epoch=2)
    expected = collate([per_item[0], per_item[3]])
    assert out["history"] == expected["history"]
    torch.testing.assert_close(out["image"], expected["image"], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(out["label"], expected["label"])


def test_batch_augmenter_refuses_missing_cuda():
    from medaug.datasets.torch_dataset import BatchAugmenter

    if torch.cuda.is_available():
        assert BatchAugmenter(medaug.pipeline_from_config(PIPE), device="cuda").device.type == "cuda"
    else:
        with pytest.raises(medaug.ParameterError, match="CUDA"):
            BatchAugmenter(medaug.pipeline_from_config(PIPE), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batch_augmenter_on_cuda_matches_cpu(cases):
    from medaug.datasets.torch_dataset import BatchAugmenter

    pipe = medaug.pipeline_from_config(PIPE, backend="torch")
    plain = AugmentedDataset(cases, None, seed=1)
    batch = collate([plain[0], plain[1]])
    gpu = BatchAugmenter(pipe, device="cuda", seed=1)(batch)
    cpu = BatchAugmenter(pipe, device="cpu", seed=1)(batch)
    assert gpu["image"].is_cuda
    torch.testing.assert_close(gpu["image"].cpu(), cpu["image"], atol=1e-2, rtol=1e-3)


def test_a_dataloader_batch_is_augmented_in_one_call_with_the_items_of_one_by_one(cases):
    ds = AugmentedDataset(cases, medaug.pipeline_from_config(PIPE), seed=4)
    together = ds.__getitems__([0, 3, 5])
    for item, index in zip(together, [0, 3, 5]):
        alone = ds[index]
        assert item["history"] == alone["history"]
        assert torch.equal(item["image"], alone["image"]) and torch.equal(item["label"], alone["label"])
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate)))
    assert torch.equal(batch["image"][1], ds[1]["image"])
