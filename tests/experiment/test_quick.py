"""The quick path of ``medaug experiment`` end to end, at tiny sizes: every task, strategy and file."""

from __future__ import annotations

import csv
import json

import numpy as np


def test_quick_path_writes_every_result(tmp_path, capsys):
    from medaug.cli.main import main

    out = tmp_path / "exp"
    tiny = ["experiment", "--quick", "--size", "16", "--n-train", "16", "--seg-n-train", "8", "--n-test", "20",
            "--epochs", "1", "--seg-epochs", "2", "--tta-views", "2", "--bootstrap", "200", "--out", str(out),
            "--no-progress"]
    # seed 0 first (an interrupted run), then seeds 0 and 1: the second call resumes and trains seed 1 only
    assert main([*tiny, "--seeds", "0"]) == 0
    with (out / "results.csv").open(encoding="utf-8") as fh:
        first = list(csv.DictReader(fh))
    capsys.readouterr()
    code = main([*tiny, "--seeds", "0,1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "resuming: 8 of 16 runs done" in printed
    # nothing of seed 0 trained again (its TTA only if seed 1 changed which strategy is best)
    assert printed.count("seed 0:") <= 1 and printed.count("seed 1:") >= 8
    assert "scanner shift" in printed and "McNemar" in printed and "+tta" in printed
    with (out / "results.csv").open(encoding="utf-8") as fh:
        runs = list(csv.DictReader(fh))
    # 2 seeds x (4 classification + 4 segmentation strategies + TTA)
    assert len(runs) == 2 * 9
    trained = [r for r in runs if r["seed"] == "0" and not r["strategy"].endswith("+tta")]
    assert trained == [r for r in first if not r["strategy"].endswith("+tta")]  # kept as they were
    assert len(list((out / "models").glob("segmentation__*.pt"))) == 2 * 4  # the U-Nets' weights, for TTA
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

    # the statistics of what the folder holds, without training: the same comparisons
    before = (out / "comparisons.csv").read_text(encoding="utf-8")
    assert main([*tiny, "--seeds", "0,1", "--stats-only"]) == 0
    assert (out / "comparisons.csv").read_text(encoding="utf-8") == before
    assert "resuming" not in capsys.readouterr().out
    # another design in the same folder is refused, naming what differs
    assert main([*tiny, "--seeds", "0", "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "holds a run with other settings (classification differ)" in err and str(out) in err
