"""The augmentation experiment: the tasks, the networks, the strategies' sources, one run of each task, reporting, CLI.

The experiment itself is not a test; these stay small (seconds).  The quick
path end to end is in test_quick.py, the statistics in test_stats.py.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest
import torch

from medaug.errors import ParameterError
from medaug.experiment.data import SOURCES, LesionTaskConfig, TaskData, base_slices, load_task, make_case, make_task
from medaug.experiment.model import NamozovCNN, UNet2D
from medaug.experiment.report import compare, format_tables, summarize
from medaug.experiment.sources import STRATEGIES, learn_fields, learned_pipeline, training_source
from medaug.experiment.train import RunResult, TrainConfig, auc, segmentation_scores, train_run

SMALL = LesionTaskConfig(size=32, n_train=12, n_test=6, n_shift=6)


@pytest.fixture(scope="module")
def small_task():
    return make_task(3, SMALL)


@pytest.fixture(scope="module")
def seg_task():
    return make_task(3, LesionTaskConfig(size=32, n_train=8, n_test=6, n_shift=6, positive_fraction=1.0))


# --------------------------------------------------------------------------- data
def test_task_is_balanced_and_shaped(small_task):
    tr, te, sh = small_task
    assert tr.images.shape == (12, 32, 32) and te.images.shape == (6, 32, 32) and sh.images.shape == (6, 32, 32)
    assert tr.images.dtype == np.float32 and np.isfinite(tr.images).all()
    assert tr.targets.sum() == 6 and te.targets.sum() == 3 and sh.targets.sum() == 3


def test_task_is_deterministic_by_seed(small_task):
    again = make_task(3, SMALL)
    for a, b in zip(small_task, again):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(small_task.train.images, make_task(4, SMALL).train.images)


def test_splits_use_disjoint_slices_and_the_shift_comes_from_the_other_source(small_task):
    (_, _, sources, _), _ = base_slices(8)
    tr, te, sh = small_task
    assert not set(tr.base.tolist()) & set(te.base.tolist())
    assert set(sources[tr.base].tolist()) == set(sources[te.base].tolist()) == {SOURCES.index("t1")}
    assert set(sources[sh.base].tolist()) == {SOURCES.index("epi")}
    epi = make_task(3, LesionTaskConfig(size=32, n_train=4, n_test=2, n_shift=0, train_source="epi"))
    assert epi.shift is None and set(sources[epi.train.base].tolist()) == {SOURCES.index("epi")}
    with pytest.raises(ParameterError, match="train_source"):
        make_task(0, LesionTaskConfig(size=32, n_train=4, n_test=2, n_shift=2, train_source="ct"))  # type: ignore[arg-type]


def test_lesions_only_in_positives_and_inside_the_brain(small_task):
    for split in small_task:
        for i in range(len(split)):
            lesion, brain = split.lesion[i], split.brain[i]
            if split.targets[i]:
                assert lesion.max() == pytest.approx(1.0, abs=1e-6) and (lesion > 0).sum() >= 4
                assert not (lesion[~brain] > 0).any(), "lesion outside the brain mask"
            else:
                assert not lesion.any()


def test_segmentation_task_has_a_lesion_map_in_every_case(seg_task):
    for split in seg_task:
        assert split.targets.all()
        m = split.masks
        assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 1} and (m.reshape(len(split), -1).sum(1) >= 2).all()
        s = split.samples(label=True)[0]
        np.testing.assert_array_equal(s["label"].array, m[0])
    with pytest.raises(ParameterError, match="no lesion maps"):
        _ = TaskData(np.zeros((2, 8, 8), np.float32), np.zeros(2, np.int64)).masks


def test_lesion_changes_only_its_own_region():
    pos = make_case(5, "train", 2, True, SMALL)
    neg = make_case(5, "train", 2, False, SMALL)
    np.testing.assert_array_equal(pos["brain"], neg["brain"])
    diff = np.abs(pos["image"].astype(float) - neg["image"].astype(float))
    inside = pos["lesion"] > 0.5
    assert diff[inside].mean() > 3 * diff[~inside].mean()


# --------------------------------------------------------------------------- networks and metrics
def test_model_shapes():
    assert NamozovCNN(32)(torch.zeros(2, 1, 32, 32)).shape == (2, 2)
    assert NamozovCNN(64).classifier[1].in_features == 128 * 8 * 8
    net = UNet2D(width=8)
    assert net(torch.zeros(2, 1, 32, 32).contiguous(memory_format=torch.channels_last)).shape == (2, 1, 32, 32)


def test_auc_rank_formula_with_ties():
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    rng = np.random.default_rng(0)
    s, y = rng.random(60).round(1), rng.integers(0, 2, 60)
    pairs = [(a > b) + 0.5 * (a == b) for a, ya in zip(s, y) for b, yb in zip(s, y) if ya == 1 and yb == 0]
    assert auc(s, y) == pytest.approx(np.mean(pairs))


def test_segmentation_scores_by_hand():
    t = np.zeros((4, 10, 10), np.uint8)
    t[:, 2:6, 2:6] = 1
    p = np.zeros((4, 10, 10))
    p[0] = t[0]                      # perfect
    p[1, 2:6, 4:8] = 1               # shifted by 2 px (2 mm): overlap 8 of 16 + 16
    # p[2] empty, p[3] the whole field
    p[3] = 1
    d, h = segmentation_scores(t, p, (1.0, 1.0))
    assert d[0] == 1.0 and h[0] == 0.0
    assert d[1] == pytest.approx(0.5) and h[1] == pytest.approx(2.0)
    diagonal = np.hypot(10, 10)
    assert d[2] == 0.0 and h[2] == pytest.approx(diagonal)
    # the whole field is measured like any prediction: its surface is the field's border (brute force here)
    from scipy.ndimage import binary_erosion

    def surface(m):
        return np.argwhere(m & ~binary_erosion(m, border_value=0)).astype(float)

    sa, sb = surface(t[3].astype(bool)), surface(np.ones((10, 10), bool))
    dist = np.sqrt(((sa[:, None] - sb[None]) ** 2).sum(-1))
    hd95 = max(np.percentile(dist.min(1), 95), np.percentile(dist.min(0), 95))
    assert d[3] == pytest.approx(2 * 16 / (16 + 100)) and h[3] == pytest.approx(hd95) and h[3] < diagonal


# --------------------------------------------------------------------------- strategies
@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "learned"])
@pytest.mark.parametrize("segment", [False, True])
def test_each_source_yields_channels_last_batches(small_task, seg_task, strategy, segment):
    train = (seg_task if segment else small_task).train
    tiny = TaskData(train.images[:8], train.targets[:8], lesion=train.lesion[:8], spacing=train.spacing)
    source = training_source(strategy, tiny, 0, segment=segment, copies=1, workers=0)
    x, y = next(iter(source.epoch(0, 8)))
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    if segment:
        assert y.shape == (8, 1, 32, 32) and y.dtype == torch.float32 and set(torch.unique(y).tolist()) <= {0.0, 1.0}
    else:
        assert y.shape == (8,) and y.dtype == torch.int64


def test_offline4x_flips_and_rotates_image_and_label_together(seg_task):
    tr = seg_task.train
    tiny = TaskData(tr.images[:4], tr.targets[:4], lesion=tr.lesion[:4], spacing=tr.spacing)
    pool = training_source("offline4x", tiny, 0, segment=True)
    imgs, labels = pool.images[:, 0].numpy(), pool.targets[:, 0].numpy()
    assert len(pool) == 16
    np.testing.assert_allclose(imgs[4:8], tiny.images[:, :, ::-1], atol=1e-4)
    np.testing.assert_array_equal(labels[4:8], tiny.masks[:, :, ::-1])
    np.testing.assert_array_equal(labels[8:12], tiny.masks[:, ::-1, :])


def test_onthefly_changes_every_epoch_and_workers_give_the_same_batches(small_task):
    tr = small_task.train
    tiny = TaskData(tr.images[:8], tr.targets[:8], spacing=tr.spacing)
    src0 = training_source("onthefly", tiny, 0, segment=False, workers=0)
    src1 = training_source("onthefly", tiny, 0, segment=False, workers=1)
    a = src0.dataset.augment(0, epoch=0)["image"].array
    assert not np.allclose(a, src0.dataset.augment(0, epoch=1)["image"].array)
    x0, y0 = next(iter(src0.epoch(2, 4)))
    x1, y1 = next(iter(src1.epoch(2, 4)))
    torch.testing.assert_close(x0, x1)
    torch.testing.assert_close(y0, y1)


def test_learned_strategy_uses_fields_from_learn_deformations(tmp_path, seg_task):
    fields = learn_fields(seg_task.train, tmp_path / "learned", cases=4)
    with (tmp_path / "learned" / "fields" / "manifest.csv").open(encoding="utf-8") as fh:
        rows = {r["field"]: r for r in csv.DictReader(fh)}
    assert len(rows) == 3 and 1 <= len(fields) <= 3
    for f in fields:  # only fold-free registrations that improved the match are kept
        r = rows[f"fields/{f.name}"]
        assert r["usable"] == "True" and float(r["ncc_after"]) > float(r["ncc_before"])
    pipeline = learned_pipeline("mri", fields)
    names = [type(t).__name__ for t in pipeline.transforms]
    assert "RandomLearnedDeformation" in names and "RandomElastic" not in names
    src = training_source("learned", seg_task.train, 0, segment=True, fields=fields, workers=0)
    x, y = next(iter(src.epoch(0, 4)))
    assert x.shape == (4, 1, 32, 32) and set(torch.unique(y).tolist()) <= {0.0, 1.0}
    with pytest.raises(ParameterError, match="learned fields"):
        training_source("learned", seg_task.train, 0, segment=True)
    with pytest.raises(ParameterError, match="no RandomElastic"):
        learned_pipeline("ct-light", fields)


# --------------------------------------------------------------------------- runs and reporting
@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_one_run_of_each_task(small_task, seg_task, task):
    splits = small_task if task == "classification" else seg_task
    cfg = TrainConfig(epochs=1, batch_size=4, max_steps=2, hidden=32, width=4, workers=0, progress=False)
    r = train_run(task, "none", splits, 0, cfg, keep_state=True)
    assert r.curves["epoch"] == [1] and r.state is not None
    if task == "classification":
        assert set(r.metrics) == {"train_acc", "test_acc", "test_auc", "shift_acc", "shift_auc"}
        assert r.cases["test_correct"].shape == (6,) and r.cases["shift_prob"].shape == (6,)
    else:
        assert set(r.metrics) == {"test_dice", "test_hd95", "shift_dice", "shift_hd95"}
        assert r.cases["test_dice"].shape == (6,) and np.isfinite(r.cases["shift_hd95"]).all()
    with pytest.raises(ParameterError, match="task"):
        train_run("detection", "none", splits, 0, cfg)  # type: ignore[arg-type]


def _result(task: str, strategy: str, seed: int, values: dict[str, np.ndarray]) -> RunResult:
    metrics = {k.replace("_correct", "_acc"): float(np.mean(v)) for k, v in values.items()}
    return RunResult(task, strategy, seed, 1.0, metrics, values)


def test_comparisons_and_table():
    n = 200
    results = []
    for seed in (0, 1):
        ref = np.zeros(n, bool)
        ref[: n // 2] = True
        better = ref.copy()
        better[n // 2: n // 2 + 40] = True  # 40 more right answers per seed
        results += [_result("classification", "none", seed, {"test_correct": ref, "shift_correct": ref}),
                    _result("classification", "onthefly", seed, {"test_correct": better, "shift_correct": ref})]
    rows = compare(results, [("classification", "onthefly", "none")], n_boot=500)
    by = {r["test_set"]: r for r in rows}
    assert by["test"]["diff"] == pytest.approx(20.0) and by["test"]["outside_noise"]
    assert by["test"]["mcnemar_b"] == 80 and by["test"]["mcnemar_c"] == 0 and by["test"]["p_exact"] < 1e-20
    assert by["shift"]["diff"] == 0.0 and not by["shift"]["outside_noise"] and by["shift"]["p_exact"] == 1.0
    table = format_tables(summarize(results), rows)
    assert "outside the noise, better" in table and "within the noise" in table and "scanner shift" in table


def test_user_csv_data(tmp_path):
    import medaug

    rows = []
    for i in range(10):
        arr = np.full((20, 24), 10.0, np.float32)
        if i % 2:
            arr[8:12, 8:12] = 40.0
        medaug.save(medaug.Image(arr, spacing=(1.0, 1.0)), tmp_path / f"c{i}.nii.gz")
        rows.append({"image": f"c{i}.nii.gz", "target": i % 2})
    with (tmp_path / "data.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "target"])
        w.writeheader()
        w.writerows(rows)
    tr, te, sh = load_task(tmp_path / "data.csv", size=16, test_fraction=0.2)
    assert len(tr) == 8 and len(te) == 2 and tr.images.shape[1:] == (16, 16) and sh is None
    assert te.targets.sum() == 1


# --------------------------------------------------------------------------- CLI
def test_cli_arguments_parse():
    from medaug.cli.experiment import add_arguments, resolve

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--quick", "--strategies", "none,onthefly", "--seeds", "0,1", "--tasks", "segmentation"])
    v = resolve(args)
    assert v.classification == ["none", "onthefly"] and v.seeds == [0, 1] and v.tasks == ["segmentation"]
    full, quick = resolve(p.parse_args([])), resolve(p.parse_args(["--quick"]))
    assert full.seeds == [0, 1, 2, 3, 4] and full.size >= 64 and full.n_test >= 1000
    assert full.segmentation == ["none", "offline_random", "onthefly", "learned"]
    assert quick.epochs < full.epochs and quick.n_test < full.n_test


@pytest.mark.parametrize(("argv", "needle"), [
    (["--strategies", "none,magic"], "magic"),
    (["--strategies", "onthefly"], "must include 'none'"),
    (["--tasks", "detection"], "detection"),
    (["--size", "36"], "multiple of 8"),
    (["--seg-lr", "-1"], "learning rate"),
    (["--data", "x.csv"], "--tasks classification"),
])
def test_cli_errors_are_one_error_line_exit_2(capsys, tmp_path, argv, needle):
    from medaug.cli.main import main

    code = None
    try:
        code = main(["experiment", "--out", str(tmp_path / "o"), "--no-progress", *argv])
    except SystemExit as exc:
        code = exc.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and needle in lines[-1] and sum("error" in line for line in lines) == 1
