"""Offline expansion: bad cases survive, interrupted runs resume, Dask equals local."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import medaug
from medaug.datasets.expand import ExpandJob, parse_grid, run_expand
from medaug.engine.record import applied
from medaug.errors import JobError, ParameterError

from ..faults._util import digest, read_manifest

PIPE = [{"RandomAffine": {"rotation": 8, "translation": 2}}, {"RandomNoise": {"std": [0, 5]}}]


def make_dataset(root: Path, n: int = 4, corrupt: bool = False, size: int = 20) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        s = medaug.shepp_logan_3d(size, seed=i)
        medaug.save(s["image"].with_data(s["image"].array.astype("int16")), root / "images" / f"case{i:02d}.nii.gz")
        medaug.save(s["label"], root / "labels" / f"case{i:02d}.nii.gz")
    if corrupt:
        (root / "images" / "broken.nii.gz").write_bytes(b"\x1f\x8b" + os.urandom(200))
    return root


def test_parse_grid_counts():
    combos = parse_grid("scale=0.9:1.1:3,rotation=-10:10:3,translation_x=-5|0|5")
    assert len(combos) == 27 and combos[0] == {"scale": 0.9, "rotation": -10.0, "translation_x": -5.0}
    with pytest.raises(ParameterError, match="did you mean 'rotation'"):
        parse_grid("rotaton=-1:1:2")


def test_expand_writes_manifest_and_keeps_dtype(tmp_path):
    data = make_dataset(tmp_path / "in", n=2)
    job = ExpandJob(str(data), str(tmp_path / "out"), PIPE, n=3, seed=1, include_originals=True)
    summary = run_expand(job, progress=False)
    rows = read_manifest(tmp_path / "out")
    assert summary["rows"] == len(rows) == 2 * 4
    assert list(rows[0]) == ["case_id", "index", "seed", "source_image", "source_label", "output_image", "output_label", "params"]
    aug = [r for r in rows if r["index"] != "-1"]
    img = medaug.load(tmp_path / "out" / aug[0]["output_image"])
    assert img.dtype == "int16"
    assert applied(json.loads(aug[0]["params"]))[0]["name"] == "Affine"
    assert digest(data) == digest(data)  # inputs untouched (no files added)
    assert not any(p.name.startswith(".") for p in (data / "images").iterdir())


def test_bad_case_is_skipped_named_and_fails_the_job(tmp_path):
    data = make_dataset(tmp_path / "in", n=3, corrupt=True)
    job = ExpandJob(str(data), str(tmp_path / "out"), PIPE, n=2, seed=0)
    with pytest.raises(JobError, match="broken") as info:
        run_expand(job, progress=False)
    assert "1 of 4 case(s) failed" in str(info.value)
    assert len(read_manifest(tmp_path / "out")) == 6


def test_cli_exit_code_and_refusals(tmp_path, capsys):
    from medaug.cli.main import main

    data = make_dataset(tmp_path / "in", n=1, corrupt=True)
    code = main(["expand", str(data), str(tmp_path / "out"), "--config", _config(tmp_path), "-n", "1", "--quiet"])
    assert code == 1 and "broken.nii.gz" in capsys.readouterr().err
    code = main(["expand", str(data), str(data / "sub"), "--config", _config(tmp_path), "-n", "1"])
    assert code == 2 and "never writes into its input" in capsys.readouterr().err
    code = main(["expand", str(data), str(tmp_path / "o2"), "--grid", "rotation=-10:10:11,scale=0.9:1.1:50"])
    assert code == 2 and "--yes" in capsys.readouterr().err


def _config(tmp_path: Path) -> str:
    p = tmp_path / "pipe.json"
    p.write_text(json.dumps(PIPE))
    return str(p)


def test_grid_expansion(tmp_path):
    data = make_dataset(tmp_path / "in", n=1)
    job = ExpandJob(str(data), str(tmp_path / "out"), None, grid=parse_grid("rotation=-10:10:3,flip=0|1"), seed=0)
    run_expand(job, progress=False)
    rows = read_manifest(tmp_path / "out")
    assert len(rows) == 6
    params = [applied(json.loads(r["params"])) for r in rows]
    assert [round(p[0]["params"]["rotation"][2]) for p in params] == [-10, -10, 0, 0, 10, 10]
    assert [len(p) for p in params] == [1, 2, 1, 2, 1, 2]


def test_grid_expansion_with_a_preset_records_the_output_range_check(tmp_path):
    """A grid with a modality preset records the same OutputRangeCheck as random copies of that preset."""
    from medaug.presets import preset_config

    data = make_dataset(tmp_path / "in", n=1)
    config = preset_config("ct")
    for grid, name in ((parse_grid("rotation=-10:10:2"), "grid"), ([], "random")):
        job = ExpandJob(str(data), str(tmp_path / name), config, n=0 if grid else 2, grid=grid, seed=0)
        run_expand(job, progress=False)
        for row in read_manifest(tmp_path / name):
            names = [h.get("name") for h in json.loads(row["params"])]
            assert names[-1] == "OutputRangeCheck", (name, names)


def test_interrupted_run_resumes_to_the_same_files(tmp_path):
    data = make_dataset(tmp_path / "in", n=6, size=28)
    cfg = _config(tmp_path)
    ref = tmp_path / "ref"
    run_expand(ExpandJob(str(data), str(ref), json.loads(Path(cfg).read_text()), n=3, seed=7), progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "medaug.cli", "expand", str(data), str(out), "--config", cfg, "-n", "3", "--seed", "7", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = out / ".medaug" / "rows"
    deadline = time.time() + 120
    while time.time() < deadline and (not rows.exists() or len(list(rows.glob("*.json"))) < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(rows.glob("*.json")))
    assert 0 < done < 18, "the run should have been killed mid-way"
    code = subprocess.run(cmd, capture_output=True, text=True)
    assert code.returncode == 0, code.stderr
    assert digest(out) == digest(ref)
    assert len(read_manifest(out)) == 18


def test_lock_names_the_holder(tmp_path):
    data = make_dataset(tmp_path / "in", n=1)
    out = tmp_path / "out"
    (out / ".medaug").mkdir(parents=True)
    (out / ".medaug" / "lock").write_text(json.dumps({"pid": os.getpid(), "host": __import__("socket").gethostname()}))
    with pytest.raises(JobError, match=f"PID {os.getpid()}"):
        run_expand(ExpandJob(str(data), str(out), PIPE, n=1), progress=False)


def test_workers_and_dask_equal_local(tmp_path):
    distributed = pytest.importorskip("distributed")
    data = make_dataset(tmp_path / "in", n=3)
    local = tmp_path / "local"
    run_expand(ExpandJob(str(data), str(local), PIPE, n=2, seed=3), progress=False)
    two = tmp_path / "two"
    run_expand(ExpandJob(str(data), str(two), PIPE, n=2, seed=3), workers=2, progress=False)
    assert digest(two) == digest(local)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                                  processes=True) as cluster, distributed.Client(cluster) as client:
        dask_out = tmp_path / "dask"
        run_expand(ExpandJob(str(data), str(dask_out), PIPE, n=2, seed=3), scheduler=client, progress=False)
    assert digest(dask_out) == digest(local)


def test_a_case_the_pipeline_refuses_is_named_by_its_file(tmp_path):
    data = make_dataset(tmp_path / "in", n=1)
    (data / "labels" / "case00.nii.gz").unlink()
    with pytest.raises(JobError) as info:
        run_expand(ExpandJob(str(data), str(tmp_path / "out"), [{"CropToLabel": {}}], n=1), progress=False)
    assert f"case00: {data / 'images' / 'case00.nii.gz'}: CropToLabel needs a label map" in str(info.value)
