"""nnU-Net v2 datasets: multi-channel import with dataset.json, and ``medaug expand --layout nnunet``."""

from __future__ import annotations

import csv
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import medaug
from medaug.data.io import read_header
from medaug.datasets.cases import load_case
from medaug.datasets.discover import read_cases
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.errors import JobError, ParameterError

PIPE = [{"RandomAffine": {"rotation": 8, "translation": 2}},
        {"RandomElastic": {"control_points": 5, "max_displacement": 2}},
        {"RandomNoise": {"std": [0, 5]}}]
LABELS = {"background": 0, "skull": 1, "brain": 2, "ventricles": 3, "lesion": 4}


def make_nnunet(root: Path, n: int = 3, size: int = 20, labels: dict | None = None, ending: str = ".nii.gz") -> Path:
    """An nnU-Net raw dataset: 2 channels (CT, a T2-like second channel), labels 0..4, dataset.json."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(n):
        s = medaug.shepp_logan_3d(size, seed=i, spacing=(1.0, 1.2, 2.0))
        ct = s["image"].with_data(s["image"].array.astype(np.int16))
        t2 = s["image"].with_data((200.0 - 0.2 * ct.array).astype(np.float32))
        medaug.save(ct, root / "imagesTr" / f"head_{i:03d}_0000{ending}")
        medaug.save(t2, root / "imagesTr" / f"head_{i:03d}_0001{ending}")
        medaug.save(s["label"], root / "labelsTr" / f"head_{i:03d}{ending}")
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT", "1": "T2"}, "labels": labels or LABELS, "numTraining": n,
        "file_ending": ending, "name": "Heads", "licence": "CC0",
    }))
    return root


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".medaug" not in p.parts}


def manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_read_cases_groups_channels_and_checks_labels(tmp_path):
    data = make_nnunet(tmp_path / "in")
    cases = read_cases(data)
    assert [c.case_id for c in cases] == ["head_000", "head_001", "head_002"]
    c = cases[1]
    assert c.image.name == "head_001_0000.nii.gz" and c.label.name == "head_001.nii.gz"
    assert [p.name for p in c.channel_files] == ["head_001_0001.nii.gz"] and c.channel_names == ("CT", "T2")
    assert c.allowed_labels == (0, 1, 2, 3, 4)
    s = load_case(c)  # the channel files are stacked into one two-channel image
    assert list(s) == ["image", "label"] and s["image"].channels == 2 and s["image"].channel_names == ("CT", "T2")
    assert s.metadata["channel_dtypes"] == ["int16", "float32"] and s["image"].dtype == np.float32
    # one pipeline moves the channels together: channel 1 stays a function of channel 0
    from medaug.spatial import RandomAffine

    out = medaug.Compose([RandomAffine(rotation=10)])(s, seed=0)  # background fills per channel: -1000 and 400
    ct, t2 = out["image"].array
    assert not np.array_equal(ct, s["image"].array[0])
    np.testing.assert_allclose(t2, 200.0 - 0.2 * ct, atol=1e-2)


def test_expand_to_nnunet_layout_and_round_trip(tmp_path):
    data = make_nnunet(tmp_path / "in")
    job = ExpandJob(str(data), str(tmp_path / "raw"), PIPE, n=2, seed=3, include_originals=True,
                    layout="nnunet", dataset_name="Dataset501_HeadAug")
    summary = run_expand(job, progress=False)
    out = tmp_path / "raw" / "Dataset501_HeadAug"
    assert summary["output"] == str(out) and summary["rows"] == 9
    stems = [f"head_{i:03d}_{k}" for i in range(3) for k in ("aug000", "aug001", "orig")]
    expected = sorted(f"{s}_{c:04d}.nii.gz" for s in stems for c in (0, 1))
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == expected
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == sorted(f"{s}.nii.gz" for s in stems)
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["channel_names"] == {"0": "CT", "1": "T2"} and doc["labels"] == LABELS
    assert doc["numTraining"] == 9 and doc["file_ending"] == ".nii.gz"
    assert doc["name"] == "HeadAug" and doc["licence"] == "CC0"
    assert json.loads((out / ".medaug" / "job.json").read_text())["layout"] == "nnunet"
    rows = manifest(out)
    assert len(rows) == 9 and all(r["params"] for r in rows)
    assert {r["output_image"] for r in rows} == {f"imagesTr/{s}_0000.nii.gz" for s in stems}
    assert "Affine" in rows[1]["params"] and "output_channels" not in rows[0]
    for s in stems:  # every image/label pair on one grid, labels within 'labels', dtypes kept
        headers = [read_header(out / "imagesTr" / f"{s}_{c:04d}.nii.gz") for c in (0, 1)]
        lab = read_header(out / "labelsTr" / f"{s}.nii.gz")
        for h in headers:
            assert all(np.allclose(h[k], lab[k], atol=1e-5) for k in ("shape", "spacing", "origin", "direction"))
        assert headers[0]["dtype"] == "int16" and headers[1]["dtype"] == "float32"
        values = set(np.unique(medaug.load(out / "labelsTr" / f"{s}.nii.gz", label=True).array).tolist())
        assert values <= set(LABELS.values())
    # the output is itself an nnU-Net dataset medaug reads back
    back = read_cases(out)
    assert sorted(c.case_id for c in back) == sorted(stems)
    assert all(len(c.channel_files) == 1 and c.label is not None for c in back)
    sample = load_case(back[0])
    assert list(sample) == ["image", "label"] and sample["image"].channels == 2
    # the same job resumes with nothing to do; another layout is another job
    assert run_expand(job, progress=False)["written"] == 0
    with pytest.raises(JobError, match="different expansion job"):
        run_expand(ExpandJob(str(data), str(out), PIPE, n=2, seed=3, include_originals=True), progress=False)


def test_interrupted_nnunet_run_resumes_to_the_same_files(tmp_path):
    data = make_nnunet(tmp_path / "in", n=5, size=24)
    cfg = tmp_path / "pipe.json"
    cfg.write_text(json.dumps(PIPE))
    ref = tmp_path / "ref"
    run_expand(ExpandJob(str(data), str(ref), PIPE, n=3, seed=7, layout="nnunet"), progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "medaug.cli", "expand", str(data), str(out), "--config", str(cfg), "-n", "3",
           "--seed", "7", "--layout", "nnunet", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = out / ".medaug" / "rows"
    deadline = time.time() + 120
    while time.time() < deadline and (not rows.exists() or len(list(rows.glob("*.json"))) < 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(rows.glob("*.json")))
    assert 0 < done < 15, "the run should have been killed mid-way"
    assert not (out / "dataset.json").exists()  # written at the end of a run only
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert digest(out) == digest(ref)  # same files, same bytes, no duplicates, same dataset.json
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 15


def test_inferred_dataset_json_and_cli(tmp_path, capsys):
    from medaug.cli.main import main

    src = tmp_path / "plain"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    for i in range(2):
        s = medaug.shepp_logan_2d(32, seed=i)
        medaug.save(s["image"], src / "images" / f"slice{i}.nii.gz")
        lab = s["label"].array.copy()
        lab[lab == 3] = 0  # no value 3 anywhere: the labels still run 0..4, as nnU-Net needs
        medaug.save(s["label"].with_data(lab), src / "labels" / f"slice{i}.nii.gz")
    code = main(["expand", str(src), str(tmp_path / "raw"), "--preset", "ct", "-n", "2", "--layout", "nnunet",
                 "--dataset-name", "Dataset502_Slices", "--quiet"])
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "raw" / "Dataset502_Slices"
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["channel_names"] == {"0": "CT"} and doc["numTraining"] == 4
    assert doc["labels"] == {"background": 0, "label_1": 1, "label_2": 2, "label_3": 3, "label_4": 4}
    assert (out / "imagesTr" / "slice0_aug001_0000.nii.gz").exists()
    assert (out / "labelsTr" / "slice1_aug000.nii.gz").exists()
    assert str(out / "manifest.csv") in capsys.readouterr().out
    code = main(["expand", str(src), str(tmp_path / "x"), "--preset", "ct", "--layout", "nnunet",
                 "--dataset-name", "Heads"])
    assert code == 2 and "DatasetXXX_Name" in capsys.readouterr().err
    code = main(["expand", str(src), str(tmp_path / "y"), "--preset", "ct", "--dataset-name", "Dataset503_X"])
    assert code == 2 and "--layout nnunet" in capsys.readouterr().err


def test_multichannel_cases_in_the_default_layout(tmp_path):
    data = make_nnunet(tmp_path / "in", n=2)
    run_expand(ExpandJob(str(data), str(tmp_path / "out"), PIPE, n=1, seed=0, layout="medaug"), progress=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "head_000_aug000_0000.nii.gz", "head_000_aug000_0001.nii.gz", "head_001_aug000_0000.nii.gz",
        "head_001_aug000_0001.nii.gz"]
    back = read_cases(out)  # images/ without dataset.json: _0000, _0001 are the channels of one case
    assert [(c.case_id, [p.name for p in c.channel_files], c.label.name) for c in back] == [
        ("head_000_aug000", ["head_000_aug000_0001.nii.gz"], "head_000_aug000.nii.gz"),
        ("head_001_aug000", ["head_001_aug000_0001.nii.gz"], "head_001_aug000.nii.gz")]


def test_missing_channel_names_the_file(tmp_path):
    data = make_nnunet(tmp_path / "in")
    (data / "imagesTr" / "head_001_0001.nii.gz").unlink()
    missing = r"head_001_0001\.nii\.gz.*missing: case 'head_001' has channel\(s\) 0000 but not 0001"
    with pytest.raises(ParameterError, match=missing):
        read_cases(data)
    (data / "imagesTr" / "head_001_0001.nii.gz").write_bytes((data / "imagesTr" / "head_000_0001.nii.gz").read_bytes())
    (data / "imagesTr" / "head_002_0002.nii.gz").write_bytes((data / "imagesTr" / "head_000_0001.nii.gz").read_bytes())
    with pytest.raises(ParameterError, match=r"head_002_0002\.nii\.gz: channel 0002 is not in dataset.json"):
        read_cases(data)
    (data / "imagesTr" / "head_002_0002.nii.gz").unlink()
    (data / "labelsTr" / "head_002.nii.gz").unlink()
    with pytest.raises(ParameterError, match=r"head_002_0000\.nii\.gz: case 'head_002' has no label file"):
        read_cases(data)


def test_label_value_outside_labels_names_the_file(tmp_path):
    labels = {k: v for k, v in LABELS.items() if k != "lesion"}  # value 4 is in every phantom
    data = make_nnunet(tmp_path / "in", n=2, labels=labels)
    cases = read_cases(data)
    with pytest.raises(ParameterError, match=r"head_000\.nii\.gz: label value\(s\) \[4\] are not in dataset.json"):
        load_case(cases[0])
    with pytest.raises(JobError, match=r"head_001: .*labelsTr/head_001\.nii\.gz: label value\(s\) \[4\]"):
        run_expand(ExpandJob(str(data), str(tmp_path / "out"), PIPE, n=1, layout="nnunet"), progress=False)


def test_nnunet_export_needs_labels(tmp_path):
    src = tmp_path / "plain"
    (src / "images").mkdir(parents=True)
    s = medaug.shepp_logan_2d(24)
    medaug.save(s["image"], src / "images" / "a.nii.gz")
    with pytest.raises(ParameterError, match="no label map"):
        run_expand(ExpandJob(str(src), str(tmp_path / "o1"), PIPE, n=1, layout="nnunet"), progress=False)
