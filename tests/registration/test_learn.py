"""``medaug learn-deformations``: fields of a dataset, resumable, bad pairs reported."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import medaug
from medaug.cli.main import main
from medaug.engine.compose import Compose
from medaug.errors import JobError, ParameterError
from medaug.registration.learn import LearnJob, plan_pairs, run_learn
from medaug.spatial import RandomElastic


def _dataset(root, n=4, size=48):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        s = medaug.shepp_logan_2d(size, seed=i)
        s = Compose([RandomElastic(control_points=5, max_displacement=4.0)])(s, seed=i)
        medaug.save(s.image, root / "images" / f"case{i}.nii.gz")
        medaug.save(s.label, root / "labels" / f"case{i}.nii.gz")
    return root


def _manifest(out):
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_reference_mode_writes_usable_fields(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    out = tmp_path / "fields"
    assert main(["learn-deformations", str(data), str(out), "--reference", "case0", "--quiet"]) == 0
    rows = _manifest(out)
    assert sorted(r["pair"] for r in rows) == ["case1__to__case0", "case2__to__case0", "case3__to__case0"]
    for r in rows:
        assert r["usable"] == "True" and float(r["jacobian_min"]) > 0
        assert float(r["ncc_after"]) >= float(r["ncc_before"])
        assert (out / r["field"]).is_file()
        assert len(json.loads(r["affine"])) == 3  # 2D homogeneous matrix
    assert "3 usable" in capsys.readouterr().out
    # the fields drive augmentation of a new case; mixing works (one reference grid)
    third = medaug.shepp_logan_2d(40, seed=9)
    pipe = medaug.pipeline_from_config([{"RandomLearnedDeformation": {"fields": str(out), "mix": True}}])
    res = pipe(third, seed=0)
    assert res.history[1]["params"]["mix_with"] is not None
    assert set(res.label.label_values()) <= set(third.label.label_values())


def test_resume_after_interruption_registers_each_pair_once(tmp_path):
    data = _dataset(tmp_path / "data", n=3)
    out = tmp_path / "fields"
    job = LearnJob(str(data), str(out), pairs=4, seed=1)
    seen = []

    def stop_after_two(result):
        seen.append(result["pair"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_learn(job, progress=False, on_result=stop_after_two)
    assert not (out / ".medaug" / "lock").exists()
    summary = run_learn(job, progress=False)
    assert summary["registered"] == 2 and summary["rows"] == 4
    rows = _manifest(out)
    assert len({r["pair"] for r in rows}) == 4 == len(rows)
    assert len(list((out / "fields").glob("*.nii.gz"))) == 4
    assert run_learn(job, progress=False)["registered"] == 0  # nothing left to do
    with pytest.raises(JobError, match="different learn-deformations job"):
        run_learn(LearnJob(str(data), str(out), pairs=2, seed=1), progress=False)


def test_bad_case_is_reported_and_the_rest_done(tmp_path, capsys):
    data = _dataset(tmp_path / "data", n=3)
    (data / "images" / "case2.nii.gz").write_bytes(b"not a nifti at all")
    out = tmp_path / "fields"
    code = main(["learn-deformations", str(data), str(out), "--reference", "case0", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "case2__to__case0" in err and "1 of 2 pair(s) failed" in err
    assert [r["pair"] for r in _manifest(out)] == ["case1__to__case0"]


def test_plan_pairs():
    from pathlib import Path

    from medaug.datasets.cases import Case

    cases = [Case(f"c{i}", Path(f"/x/c{i}.nii.gz")) for i in range(5)]
    assert plan_pairs(cases, "c2", None, 0) == [("c2", c) for c in ("c0", "c1", "c3", "c4")]
    assert len(plan_pairs(cases, "c2", 2, 0)) == 2
    pairs = plan_pairs(cases, None, None, 0)
    assert len(pairs) == 10 and len(set(pairs)) == 10 and all(a != b for a, b in pairs)
    assert plan_pairs(cases, None, 7, 3) == plan_pairs(cases, None, 7, 3)
    with pytest.raises(ParameterError, match="did you mean 'c1'"):
        plan_pairs(cases, "c11", None, 0)
    with pytest.raises(ParameterError, match="at least two"):
        plan_pairs(cases[:1], None, None, 0)


def test_register_cli_carries_a_label_map(tmp_path, capsys):
    fixed = medaug.shepp_logan_2d(48, seed=1)
    moving = Compose([RandomElastic(control_points=5, max_displacement=4.0)])(medaug.shepp_logan_2d(48, seed=2), seed=5)
    medaug.save(fixed.image, tmp_path / "fixed.nii.gz")
    medaug.save(moving.image, tmp_path / "moving.nii.gz")
    medaug.save(moving.label, tmp_path / "atlas.nii.gz")
    out = tmp_path / "reg"
    assert main(["register", str(tmp_path / "fixed.nii.gz"), str(tmp_path / "moving.nii.gz"), "--out", str(out),
                 "--apply", str(tmp_path / "atlas.nii.gz")]) == 0
    carried = medaug.load(out / "atlas_on_fixed.nii.gz", label=True)
    assert carried.grid.same_as(fixed.grid)
    assert set(carried.label_values()) <= set(moving.label.label_values())
    brain = lambda a: np.isin(a, (2, 3, 4))  # noqa: E731
    dice = lambda a, b: 2 * (a & b).sum() / (a.sum() + b.sum())  # noqa: E731
    assert dice(brain(carried.array), brain(fixed.label.array)) > dice(brain(moving.label.array), brain(fixed.label.array))
    assert "usable" in capsys.readouterr().out


def test_workers_give_the_same_fields(tmp_path):
    from medaug.registration import load_field

    data = _dataset(tmp_path / "data", n=3, size=40)
    one, two = tmp_path / "one", tmp_path / "two"
    run_learn(LearnJob(str(data), str(one), reference="case1"), progress=False)
    run_learn(LearnJob(str(data), str(two), reference="case1"), workers=2, progress=False)
    a, b = _manifest(one), _manifest(two)
    assert [r["pair"] for r in a] == [r["pair"] for r in b]
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(load_field(one / ra["field"]).data, load_field(two / rb["field"]).data, atol=1e-3)
