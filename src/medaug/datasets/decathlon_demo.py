"""Decathlon-style tasks built from the real MRI shipped with nibabel (no download), for tests, docs and demos.

:func:`write_decathlon_task` writes a folder exactly as a Medical Segmentation
Decathlon download looks: ``imagesTr/``, ``labelsTr/``, ``imagesTs/``, the MSD
v1 ``dataset.json`` (``modality``, int-keyed ``labels``, ``training`` pairs,
``test`` list) and the macOS ``._*`` resource files the real archives carry.

* ``"Hippocampus"`` (like Task04): 3D single-channel T1 MRI (nibabel's
  ``anatomical.nii``), labels 0 background, 1 anterior, 2 posterior.
* ``"BrainTumour"`` (like Task01, BraTS): four MRI sequences in one 4D NIfTI
  (FLAIR, T1w, T1gd, T2w) made from the T1 volume by tissue-specific contrasts,
  and a tumour label 0 background, 1 edema, 2 non-enhancing tumour, 3 enhancing
  tumour.

Every case is the real anatomy under its own smooth deformation and pose, so
the cases differ as patients do; the images are not meant for training models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.image import Image
from ..data.io import save
from ..data.sample_data import anatomical_mri
from ..errors import ParameterError

__all__ = ["write_decathlon_task", "TASKS"]

TASKS = {
    "Hippocampus": {
        "prefix": "hippocampus", "modality": {"0": "MRI"},
        "labels": {"0": "background", "1": "Anterior", "2": "Posterior"}, "tensorImageSize": "3D",
    },
    "BrainTumour": {
        "prefix": "BRATS", "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
        "tensorImageSize": "4D",
    },
}


def write_decathlon_task(root: str | Path, task: str = "BrainTumour", *, n_train: int = 4, n_test: int = 2,
                         seed: int = 0, task_id: int | None = None) -> Path:
    """Write a Decathlon-style task folder ``root/TaskXX_Name`` and return its path.

    Parameters
    ----------
    root : str or Path
        Parent folder (created if needed).
    task : {"BrainTumour", "Hippocampus"}
    n_train, n_test : int
        Cases listed in ``training`` (with labels) and ``test`` (images only).
    seed : int
        Seed of the per-case anatomy and pose.
    task_id : int, optional
        The XX of ``TaskXX_Name`` (default 1 for BrainTumour, 4 for Hippocampus).

    Raises
    ------
    ParameterError
        An unknown task or a non-positive number of training cases.
    """
    if task not in TASKS:
        raise ParameterError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if n_train < 1 or n_test < 0:
        raise ParameterError(f"need n_train >= 1 and n_test >= 0, got {n_train} and {n_test}")
    spec = TASKS[task]
    folder = Path(root) / f"Task{task_id or (1 if task == 'BrainTumour' else 4):02d}_{task}"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    base = anatomical_mri()
    rng = np.random.default_rng(seed)
    training, test = [], []
    for i in range(n_train + n_test):
        name = f"{spec['prefix']}_{i + 1:03d}.nii.gz"
        image, label = _case(base, task, rng)
        split = "imagesTr" if i < n_train else "imagesTs"
        save(image, folder / split / name)
        (folder / split / f"._{name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")  # as in the tars
        if i < n_train:
            save(label, folder / "labelsTr" / name)
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        else:
            test.append(f"./imagesTs/{name}")
    doc = {
        "name": task, "description": f"{task}, Decathlon-style, built by medaug from nibabel's anatomical.nii",
        "reference": "medaug (synthetic)", "licence": "CC-BY-SA 4.0", "release": "1.0 04/05/2018",
        "tensorImageSize": spec["tensorImageSize"], "modality": spec["modality"], "labels": spec["labels"],
        "numTraining": n_train, "numTest": n_test, "training": training, "test": test,
    }
    (folder / "dataset.json").write_text(json.dumps(doc, indent=4), encoding="utf-8")
    return folder


def _case(base: Image, task: str, rng: np.random.Generator) -> tuple[Image, Image]:
    """One patient: the real T1 under its own deformation, its images and its label."""
    from ..data.sample import Sample
    from ..engine.compose import Compose
    from ..spatial.affine import Affine
    from ..spatial.elastic import ElasticBSpline

    t1 = base.with_data(np.asarray(base.array, np.float32))
    shape = np.asarray(t1.shape)
    brain = t1.array > np.percentile(t1.array, 40)
    label = np.zeros(t1.shape, np.uint8)
    centre = (shape * rng.uniform(0.35, 0.65, 3)).astype(int)
    zz, yy, xx = np.indices(t1.shape)
    radii = shape * rng.uniform(0.12, 0.2, 3)
    r = np.sqrt(((zz - centre[0]) / radii[0]) ** 2 + ((yy - centre[1]) / radii[1]) ** 2 + ((xx - centre[2]) / radii[2]) ** 2)
    if task == "Hippocampus":
        along = (yy - centre[1]) / radii[1]
        label[(r < 1.0) & brain & (along < 0)] = 1
        label[(r < 1.0) & brain & (along >= 0)] = 2
        image = t1
    else:
        label[(r < 1.6) & brain] = 1
        label[r < 1.0] = 2
        label[(r < 1.0) & (r > 0.6)] = 3
        tissue = t1.array / max(float(np.percentile(t1.array, 99)), 1.0)
        csf = np.clip(1.0 - tissue, 0, 1) * brain
        flair = tissue * 0.8 + 0.9 * (label == 1) + 0.5 * (label >= 2) - 0.4 * csf
        t1w = tissue - 0.2 * (label >= 1)
        t1gd = t1w + 0.9 * (label == 3)
        t2w = 0.6 + 0.8 * csf - 0.3 * tissue + 0.8 * (label >= 1)
        seq = np.stack([flair, t1w, t1gd, t2w]).astype(np.float32) * 1000.0
        image = Image(np.clip(seq, 0, None), grid=t1.grid, channel_names=("FLAIR", "T1w", "t1gd", "T2w"))
    pose = Compose([
        ElasticBSpline(control_points=5, max_displacement=3.0, seed=int(rng.integers(2**31))),
        Affine(rotation=rng.uniform(-8, 8, 3).tolist(), scale=rng.uniform(0.93, 1.07, 3).tolist(),
               translation=rng.uniform(-3, 3, 3).tolist()),
    ], fill=0.0)
    out = pose(Sample(image=image, label=Image(label, grid=t1.grid, is_label=True)), seed=0)
    img = out["image"]
    return img.with_data(np.rint(np.asarray(img.array)).astype(np.int16)), out["label"]
