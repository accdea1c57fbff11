"""The quick path of ``medaug experiment`` end to end, at tiny sizes: every task, strategy and file."""

from __future__ import annotations

import csv
import json

import numpy as np


def test_quick_path_writes_every_result(tmp_path, capsys):
    from medaug.cli.main import main

    out = tmp_path / "exp"
    code = main(["experiment", "--quick", "--size", "16", "--n-train", "16", "--seg-n-train", "8", "--n-test", "20",
                 "--epochs", "1", "--seg-epochs", "2", "--tta-views", "2", "--bootstrap", "200", "--seeds", "0,1",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "scanner shift" in printed and "McNemar" in printed and "+tta" in printed
    with (out / "results.csv").open(encoding="utf-8") as fh:
        runs = list(csv.DictReader(fh))
    # 2 seeds x (4 classification + 4 segmentation strategies + TTA)
    assert len(runs) == 2 * 9
    with (out / "comparisons.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    tasks = {(r["task"], r["test_set"], r["metric"]) for r in rows}
    assert tasks == {(t, s, m) for t, ms in (("classification", ["acc"]), ("segmentation", ["dice", "hd95"]))
                     for s in ("test", "shift") for m in ms}
    for r in rows:
        assert float(r["ci_lo"]) <= float(r["diff"]) <= float(r["ci_hi"]) and r["seeds"] == "2"
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["settings"]["seeds"] == [0, 1] and doc["machine"]["cores"] >= 1 and doc["seconds"] > 0
    with np.load(out / "cases.npz") as cases:
        assert cases["classification__none__0__test_correct"].shape == (20,)
    for png in ("curves.png", "summary.png"):
        assert (out / png).stat().st_size > 5000
    assert (out / "learned" / "seed0" / "fields" / "manifest.csv").exists()
