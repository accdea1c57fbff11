"""The augmentation experiment (issue 9): the task generator, one step of each strategy, the CLI arguments.

The experiment itself is not a test; these stay small (a few seconds).
"""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest
import torch

from medaug.experiment.data import LesionTaskConfig, TaskData, load_task, make_case, make_task
from medaug.experiment.model import NamozovCNN
from medaug.experiment.train import (
    STRATEGIES,
    TrainConfig,
    auc,
    format_table,
    summarize,
    train_run,
    training_source,
    write_results,
)

SMALL = LesionTaskConfig(n_train=12, n_test=6)


@pytest.fixture(scope="module")
def small_task():
    return make_task(3, SMALL)


def test_task_is_balanced_and_shaped(small_task):
    tr, te = small_task
    assert tr.images.shape == (12, 32, 32) and te.images.shape == (6, 32, 32)
    assert tr.images.dtype == np.float32 and np.isfinite(tr.images).all()
    assert tr.targets.sum() == 6 and te.targets.sum() == 3
    assert set(np.unique(tr.targets)) == {0, 1}


def test_task_is_deterministic_by_seed(small_task):
    tr, te = small_task
    tr2, te2 = make_task(3, SMALL)
    np.testing.assert_array_equal(tr.images, tr2.images)
    np.testing.assert_array_equal(te.targets, te2.targets)
    tr3, _ = make_task(4, SMALL)
    assert not np.array_equal(tr.images, tr3.images)


def test_lesions_only_in_positives_and_inside_the_brain(small_task):
    for split in small_task:
        for i in range(len(split)):
            lesion, brain = split.lesion[i], split.brain[i]
            if split.targets[i]:
                assert lesion.max() == pytest.approx(1.0, abs=1e-6) and (lesion > 0).sum() >= 4
                assert not (lesion[~brain] > 0).any(), "lesion outside the brain mask"
            else:
                assert not lesion.any()


def test_lesion_changes_only_its_own_region():
    # same patient with and without the lesion: identical anatomy, the difference is local
    pos = make_case(5, "train", 2, True, SMALL)
    neg = make_case(5, "train", 2, False, SMALL)
    np.testing.assert_array_equal(pos["brain"], neg["brain"])
    diff = np.abs(pos["image"].astype(float) - neg["image"].astype(float))
    inside = pos["lesion"] > 0.5
    assert diff[inside].mean() > 3 * diff[~inside].mean()


def test_train_and_test_use_different_base_slices(small_task):
    tr, te = small_task
    assert not set(tr.base.tolist()) & set(te.base.tolist())


def test_model_shapes():
    m = NamozovCNN(32)
    assert m(torch.zeros(2, 1, 32, 32)).shape == (2, 2)
    assert m.classifier[1].in_features == 128 * 4 * 4
    assert NamozovCNN(64).classifier[1].in_features == 128 * 8 * 8


def test_auc_rank_formula_with_ties():
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    rng = np.random.default_rng(0)
    s, y = rng.random(60).round(1), rng.integers(0, 2, 60)
    pairs = [(a > b) + 0.5 * (a == b) for a, ya in zip(s, y) for b, yb in zip(s, y) if ya == 1 and yb == 0]
    assert auc(s, y) == pytest.approx(np.mean(pairs))


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_one_training_step_of_each_strategy(small_task, strategy):
    tr, te = small_task
    tiny = TaskData(tr.images[:8], tr.targets[:8], spacing=tr.spacing)
    cfg = TrainConfig(epochs=1, batch_size=8, max_steps=1, hidden=64, progress=False, copies=1)
    source = training_source(strategy, tiny, 0, cfg)
    x, y = next(iter(source.epoch(0, 8)))
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32 and y.shape == (8,)
    r = train_run(strategy, tiny, te, 0, cfg)
    assert r.strategy == strategy and 0 <= r.train_acc <= 1 and 0 <= r.test_acc <= 1
    assert r.curves["epoch"] == [1]


def test_offline4x_pool_holds_flips_and_rotation(small_task):
    tr, _ = small_task
    tiny = TaskData(tr.images[:4], tr.targets[:4], spacing=tr.spacing)
    pool = training_source("offline4x", tiny, 0, TrainConfig(progress=False))
    imgs = pool.images[:, 0].numpy()
    assert len(pool) == 16
    np.testing.assert_allclose(imgs[4:8], tiny.images[:, :, ::-1], atol=1e-4)
    np.testing.assert_allclose(imgs[8:12], tiny.images[:, ::-1, :], atol=1e-4)
    rotated = [np.rot90(tiny.images[0], k) for k in (1, 3)]
    assert min(np.abs(imgs[12] - r).max() for r in rotated) < 1e-3


def test_onthefly_changes_every_epoch(small_task):
    tr, _ = small_task
    tiny = TaskData(tr.images[:4], tr.targets[:4], spacing=tr.spacing)
    source = training_source("onthefly", tiny, 0, TrainConfig(progress=False))
    a = source.dataset.augment(0, epoch=0)["image"].array
    b = source.dataset.augment(0, epoch=1)["image"].array
    assert not np.allclose(a, b)


def test_results_files(tmp_path, small_task):
    tr, te = small_task
    tiny = TaskData(tr.images[:8], tr.targets[:8], spacing=tr.spacing)
    cfg = TrainConfig(epochs=1, batch_size=8, max_steps=1, hidden=32, progress=False)
    results = [train_run("none", tiny, te, s, cfg) for s in (0, 1)]
    paths = write_results(tmp_path, results, {"command": "test"})
    with paths["csv"].open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["strategy", "seed", "train_acc", "test_acc", "auc"] and rows[0]["strategy"] == "none"
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["summary"]["none"]["seeds"] == [0, 1] and paths["png"].stat().st_size > 1000
    assert "72.6" in format_table(summarize(results))


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
    tr, te = load_task(tmp_path / "data.csv", size=16, test_fraction=0.2)
    assert len(tr) == 8 and len(te) == 2 and tr.images.shape[1:] == (16, 16)
    assert te.targets.sum() == 1


def test_cli_arguments_parse():
    from medaug.cli.experiment import add_arguments, resolve
    from medaug.cli.main import build_parser

    parser, chosen = build_parser(["experiment", "--quick"])
    assert chosen == "experiment"
    args = parser.parse_args(["experiment", "--quick", "--strategies", "none,onthefly", "--seeds", "0,1",
                              "--out", "x", "--data", "d.csv"])
    assert args.quick and args.strategies == ["none", "onthefly"] and args.seeds == [0, 1]
    assert args.out == "x" and args.data == "d.csv"
    strategies, seeds, epochs = resolve(args)
    assert strategies == ["none", "onthefly"] and seeds == [0, 1] and epochs >= 1
    p = argparse.ArgumentParser()
    add_arguments(p)
    full = p.parse_args([])
    s, seeds, e = resolve(full)
    assert s == ["none", "offline4x", "onthefly", "offline_random"] and seeds == [0, 1, 2]
    quick = p.parse_args(["--quick"])
    assert resolve(quick)[2] < e


def test_cli_rejects_unknown_strategy(capsys):
    from medaug.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["experiment", "--strategies", "none,magic"])
    assert exc.value.code == 2 and "magic" in capsys.readouterr().err
