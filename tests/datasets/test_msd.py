"""The Medical Segmentation Decathlon as downloaded, and 4-channel (BraTS-style) cases, end to end.

The tasks are written at test time from nibabel's real MRI
(:func:`medaug.datasets.decathlon_demo.write_decathlon_task`): MSD v1
``dataset.json`` with ``modality``, int-keyed ``labels``, ``training`` pairs and
a ``test`` list, 4D NIfTI images for BrainTumour, macOS ``._*`` files.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import medaug
from medaug.cli.main import main
from medaug.datasets.cases import load_case
from medaug.datasets.decathlon_demo import write_decathlon_task
from medaug.datasets.discover import read_cases
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.errors import ParameterError

PIPE = [{"RandomAffine": {"rotation": 8, "translation": 2}},
        {"RandomElastic": {"control_points": 5, "max_displacement": 2}},
        {"RandomGamma": {"log_gamma": 0.2}}, {"RandomNoise": {"std": [0, 5]}}]
SEQUENCES = ("FLAIR", "T1w", "t1gd", "T2w")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("msd")
    return {"brats": write_decathlon_task(root, "BrainTumour", n_train=3, n_test=1),
            "hippo": write_decathlon_task(root, "Hippocampus", n_train=3, n_test=1)}


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".medaug" not in p.parts}


def test_a_task_is_read_as_downloaded(tasks):
    cases = read_cases(tasks["brats"])
    assert [c.case_id for c in cases] == ["BRATS_001", "BRATS_002", "BRATS_003"]  # training only, no ._ files
    assert cases[0].channel_names == SEQUENCES and cases[0].allowed_labels == (0, 1, 2, 3)
    sample = load_case(cases[0])
    assert sample["image"].channels == 4 and sample["image"].channel_names == SEQUENCES
    assert set(sample["label"].label_values().tolist()) <= {0, 1, 2, 3}
    with_test = read_cases(tasks["brats"], include_test=True)
    assert [c.case_id for c in with_test][-1] == "BRATS_004" and with_test[-1].label is None


@pytest.mark.parametrize("task", ["brats", "hippo"])
def test_expand_keeps_the_decathlon_layout(tasks, tmp_path, task):
    out = tmp_path / "out"
    run_expand(ExpandJob(str(tasks[task]), str(out), PIPE, n=2, seed=1), progress=False)
    doc = json.loads((out / "dataset.json").read_text())
    source = json.loads((tasks[task] / "dataset.json").read_text())
    assert doc["modality"] == source["modality"] and doc["labels"] == source["labels"]
    assert doc["numTraining"] == 6 and doc["numTest"] == 0 and doc["test"] == []
    assert doc["tensorImageSize"] == ("4D" if task == "brats" else "3D")
    for entry in doc["training"]:
        assert (out / entry["image"]).is_file() and (out / entry["label"]).is_file()
        assert entry["image"].startswith("./imagesTr/") and "_aug00" in entry["image"]
    back = read_cases(out)  # the output is itself a Decathlon task
    assert len(back) == 6
    image = medaug.load(out / doc["training"][0]["image"])
    assert image.channels == (4 if task == "brats" else 1) and image.dtype == np.int16


def test_expand_to_nnunet_names_channels_from_modality(tasks, tmp_path):
    out = tmp_path / "nn"
    run_expand(ExpandJob(str(tasks["brats"]), str(out), PIPE, n=1, seed=1, layout="nnunet"), progress=False)
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["channel_names"] == {str(k): n for k, n in enumerate(SEQUENCES)}
    assert doc["labels"] == {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3}
    assert sorted(p.name for p in (out / "imagesTr").iterdir())[:4] == [
        f"BRATS_001_aug000_{k:04d}.nii.gz" for k in range(4)]
    back = load_case(read_cases(out)[0])
    assert back["image"].channels == 4 and back["image"].channel_names == SEQUENCES


def test_test_images_are_augmented_only_when_asked(tasks, tmp_path):
    out = tmp_path / "t"
    run_expand(ExpandJob(str(tasks["hippo"]), str(out), PIPE, n=1, include_test=True), progress=False)
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["test"] == ["./imagesTs/hippocampus_004_aug000.nii.gz"] and doc["numTraining"] == 3


def test_each_channel_moves_exactly_as_it_would_alone(tasks):
    """A 4-channel case resampled once equals each sequence resampled on its own by the same recorded transforms."""
    sample = load_case(read_cases(tasks["brats"])[0])
    out = medaug.pipeline_from_config(PIPE[:2], fill=0.0)(sample, seed=3)
    from medaug.engine.registry import transform_class

    steps = [transform_class(h["name"])(**h["params"]) for h in out.history if h.get("name") in ("Affine", "ElasticBSpline")]
    again = medaug.Compose(steps, fill=0.0)
    for k in range(4):
        alone = again(medaug.Sample(image=sample["image"].channel(k), label=sample["label"]))
        np.testing.assert_allclose(np.asarray(alone["image"].array), np.asarray(out["image"].array[k]), atol=1e-3)
        np.testing.assert_array_equal(np.asarray(alone["label"].array), np.asarray(out["label"].array))


def test_interrupted_run_resumes_to_the_same_files(tasks, tmp_path):
    cfg = tmp_path / "pipe.json"
    cfg.write_text(json.dumps(PIPE))
    ref = tmp_path / "ref"
    run_expand(ExpandJob(str(tasks["brats"]), str(ref), PIPE, n=4, seed=7), progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "medaug.cli", "expand", str(tasks["brats"]), str(out), "--config", str(cfg), "-n",
           "4", "--seed", "7", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = out / ".medaug" / "rows"
    deadline = time.time() + 120
    while time.time() < deadline and (not rows.exists() or len(list(rows.glob("*.json"))) < 2):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(rows.glob("*.json"))) < 12, "the run should have been killed mid-way"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert digest(out) == digest(ref)


def test_a_label_value_not_listed_names_the_file_and_value(tasks, tmp_path):
    import shutil

    bad = tmp_path / "Task01_BrainTumour"
    shutil.copytree(tasks["brats"], bad)
    label_file = bad / "labelsTr" / "BRATS_002.nii.gz"
    lab = medaug.load(label_file, label=True)
    arr = np.asarray(lab.array).copy()
    arr[0, 0, 0] = 7
    medaug.save(lab.with_data(arr), label_file)
    with pytest.raises(medaug.JobError, match=r"BRATS_002\.nii\.gz: label value\(s\) \[7\] are not in dataset.json"):
        run_expand(ExpandJob(str(bad), str(tmp_path / "o"), PIPE, n=1), progress=False)


def test_dataset_json_may_name_only_files_inside_the_task(tasks, tmp_path):
    import shutil

    bad = tmp_path / "Task01_BrainTumour"
    shutil.copytree(tasks["brats"], bad)
    doc = json.loads((bad / "dataset.json").read_text())
    doc["training"][0]["image"] = "../../../etc/passwd"
    (bad / "dataset.json").write_text(json.dumps(doc))
    with pytest.raises(ParameterError, match=r"training\[0\]: '../../../etc/passwd' lies outside the task folder"):
        read_cases(bad)


def test_an_unknown_layout_says_what_medaug_reads(tmp_path, capsys):
    (tmp_path / "scans").mkdir()
    assert main(["expand", str(tmp_path), str(tmp_path / ".." / "o"), "--preset", "mri"]) == 2
    err = capsys.readouterr().err
    assert "Decathlon" in err and "nnU-Net" in err and "CSV" in err and len(err.strip().splitlines()) == 1


def test_preset_auto_and_the_cli_on_a_task(tasks, tmp_path, capsys):
    out = tmp_path / "auto"
    assert main(["expand", str(tasks["brats"]), str(out), "--preset", "auto", "-n", "1", "--quiet"]) == 0
    rows = (out / "manifest.csv").read_text()
    assert "Gamma" in rows or "BiasField" in rows or "Noise" in rows  # the MRI preset, drawn per sequence
    capsys.readouterr()
    assert main(["info", str(tasks["brats"] / "imagesTr" / "BRATS_001.nii.gz")]) == 0
    assert "channels:  4: FLAIR" in capsys.readouterr().out
    png = tmp_path / "p.png"
    assert main(["preview", str(tasks["brats"]), "--case", "BRATS_002", "--preset", "auto", "-n", "2", "-o",
                 str(png)]) == 0
    assert png.stat().st_size > 10_000


def test_mixed_modalities_get_each_their_preset():
    from medaug.presets.auto import preset_for_channels

    cfg = preset_for_channels(["CT", "T2"])
    noise = [p for item in cfg["transforms"] for n, p in item.items() if n == "RandomNoise"]
    assert {tuple(p["channels"]) for p in noise} == {(0,), (1,)}  # HU noise on CT, Rician on the MR sequence
    assert next(p for p in noise if p["channels"] == [1])["kind"] == "rician"
    with pytest.raises(ParameterError, match="cannot tell the modality of channel"):
        preset_for_channels(["R", "G", "B"])


def test_augmented_dataset_batches_channels(tasks):
    from torch.utils.data import DataLoader

    from medaug.datasets.torch_dataset import AugmentedDataset, collate

    ds = AugmentedDataset(tasks["brats"], medaug.pipeline_from_config(PIPE), seed=0, patch_size=(16, 24, 24))
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate)))
    assert batch["image"].shape == (2, 4, 16, 24, 24) and batch["label"].shape == (2, 1, 16, 24, 24)
    assert batch["image"].dtype == torch.float32 and batch["label"].dtype == torch.int64
