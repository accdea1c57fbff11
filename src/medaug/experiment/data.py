"""A small lesion-classification task made from real brain MRI that ships with nibabel (no download).

Base anatomy: axial slices of nibabel's T1 volume (``anatomical.nii``, 2 mm,
a crop inside the brain) and of its EPI series (``example4d.nii.gz``, whole
head, brain mask by thresholding).  Training uses one of the two sources (the
"scanner" ``train_source``); its base slices are split between train and test
(interleaved), so test "patients" are never built on a training slice.  The
other source gives a third split, ``shift``: the same task on another sequence,
resolution and field of view (another scanner), which the training never sees.

Each case ("patient") is one base slice moved by its own smooth B-spline
deformation and affine pose (medaug :class:`ElasticBSpline` and
:class:`Affine`), then, for positives, given one simulated lesion (an ellipse
of random size, elongation, orientation, sign of contrast and position inside
the deformed brain mask, with a soft edge), and finally its own scanner
effects: bias field, gamma and Rician noise (medaug ``RandomBiasField``,
``RandomGamma``, ``RandomNoise``).  Everything is drawn from a generator keyed
by ``(seed, split, index)``: the same seed gives the same data set.

>>> from medaug.experiment.data import LesionTaskConfig
>>> LesionTaskConfig().size
64
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy import ndimage

from ..data.image import Image
from ..data.sample import Sample
from ..errors import ParameterError

__all__ = ["SOURCES", "LesionTaskConfig", "TaskData", "TaskSplits", "base_slices", "load_task", "make_case", "make_task",
           "single_thread"]

#: the two real MRI sources of base slices, by index in :func:`base_slices`
SOURCES: tuple[str, str] = ("t1", "epi")


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (augmenting small images), then restore.

    medaug's pointwise kernels on a 32 x 32 image are microseconds of work; with
    two torch threads on a loaded 2-core machine each tiny operation can wait
    milliseconds for the second thread (measured: ``torch.sqrt`` on 1024 floats
    4.3 ms with 2 threads vs 1.3 us with 1), so augmentation runs single-threaded.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class LesionTaskConfig:
    """The knobs of the synthetic task (sizes in pixels of the output grid are relative to ``size``).

    Parameters
    ----------
    size : int
        Output height and width in pixels.
    n_train, n_test, n_shift : int
        Cases per split: training and test from ``train_source``, shift from the other source (0: no shift split).
    train_source : {"t1", "epi"}
        The source ("scanner") of the training and test base slices.
    positive_fraction : float
        Share of cases with a lesion (rounded down; 1.0 for the segmentation task).
    radius : (float, float)
        Lesion semi-axes as a fraction of ``size`` (uniform in this range, drawn per axis).
    contrast : (float, float)
        Relative intensity change inside the lesion (uniform); the sign is random
        (hyper- or hypo-intense), the change is multiplicative on the local tissue.
    deformation_mm : float
        Largest control-point displacement of the patient's B-spline deformation.
    rotation, scale, translation_mm : float
        Patient pose: rotation in ±degrees, zoom in 1 ± scale, shift in ±mm.
    bias, log_gamma, noise : float
        Scanner effects: bias-field coefficient bound, log-gamma bound, largest Rician noise std (relative).
    """

    size: int = 64
    n_train: int = 500
    n_test: int = 1000
    n_shift: int = 1000
    train_source: Literal["t1", "epi"] = "t1"
    positive_fraction: float = 0.5
    radius: tuple[float, float] = (0.07, 0.14)
    contrast: tuple[float, float] = (0.4, 0.8)
    deformation_mm: float = 4.0
    rotation: float = 12.0
    scale: float = 0.08
    translation_mm: float = 4.0
    bias: float = 0.25
    log_gamma: float = 0.25
    noise: float = 0.04

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskData:
    """One split: images ``(n, size, size)`` float32 in about [0, 1.5], targets, brain and lesion masks."""

    images: np.ndarray
    targets: np.ndarray
    brain: np.ndarray | None = None
    lesion: np.ndarray | None = None
    base: np.ndarray | None = None
    spacing: tuple[float, float] = (1.0, 1.0)
    case_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def masks(self) -> np.ndarray:
        """The lesion label maps ``(n, size, size)`` uint8: 1 where the lesion profile is at least 0.5."""
        if self.lesion is None:
            raise ParameterError("these cases have no lesion maps (user data): the segmentation task needs the built-in task")
        return (self.lesion >= 0.5).astype(np.uint8)

    def samples(self, *, label: bool = False) -> list[Sample]:
        """The cases as medaug Samples (image, target and with ``label`` the lesion map), for pipelines."""
        masks = self.masks if label else None
        out = []
        for i in range(len(self)):
            img = Image(self.images[i], spacing=self.spacing)
            cid = self.case_ids[i] if self.case_ids else f"case{i:04d}"
            extra = {"label": Image(masks[i], spacing=self.spacing, is_label=True)} if masks is not None else {}
            out.append(Sample(image=img, **extra, target=int(self.targets[i]), metadata={"case_id": cid}))
        return out


class TaskSplits(NamedTuple):
    """The training cases, the test cases of the same source, and the shift cases of the other source (or None)."""

    train: TaskData
    test: TaskData
    shift: TaskData | None = None


# --------------------------------------------------------------------------- base anatomy
def _largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, lab, range(1, n + 1))
    return lab == (int(np.argmax(sizes)) + 1)


def _square_crop(arr: np.ndarray, mask: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop a square around the mask's bounding box (padded with zeros if needed)."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min() - margin, ys.max() + 1 + margin, xs.min() - margin, xs.max() + 1 + margin
    side = max(y1 - y0, x1 - x0)
    cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
    y0, x0 = round(cy - side / 2.0), round(cx - side / 2.0)
    pad = side
    a = np.pad(arr, pad)
    m = np.pad(mask, pad)
    return a[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side], m[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]


@lru_cache(maxsize=4)
def base_slices(size: int = 32) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]:
    """Base slices resampled to ``size`` x ``size``: (images, brain masks, source ids, slice ids), spacing in mm.

    Images are normalised to the 99th percentile of their brain.  Source 0 is
    the T1 crop (whole field is brain; the mask keeps a 1-pixel border off),
    source 1 the EPI (thresholded, hole-filled, largest component).
    """
    from ..data.sample_data import anatomical_mri, epi_mri

    images, masks, sources, ids = [], [], [], []
    t1 = anatomical_mri().array.astype(np.float64)  # (25, 41, 33) z, y, x at 2 mm
    ny, nx = t1.shape[1:]
    y0 = (ny - nx) // 2
    for z in range(7, 20):
        sl = t1[z, y0:y0 + nx, :]
        mask = np.ones_like(sl, bool)
        images.append(sl)
        masks.append(mask)
        sources.append(0)
        ids.append(z)
    epi = epi_mri().array.astype(np.float64)  # (24, 96, 128)
    thr = 0.2 * np.percentile(epi, 99)
    for z in range(6, 19):
        sl = epi[z]
        mask = ndimage.binary_opening(ndimage.binary_fill_holes(ndimage.gaussian_filter(sl, 1.0) > thr), iterations=2)
        mask = ndimage.binary_fill_holes(_largest_component(mask))
        sl, mask = _square_crop(sl * mask, mask, margin=3)
        images.append(sl)
        masks.append(mask)
        sources.append(1)
        ids.append(z)
    out_i, out_m = [], []
    for sl, mask in zip(images, masks):
        f = size / sl.shape[0]
        img = ndimage.zoom(sl, f, order=1, grid_mode=True, mode="nearest")[:size, :size]
        m = ndimage.zoom(mask.astype(np.float64), f, order=1, grid_mode=True, mode="nearest")[:size, :size] > 0.5
        if m.all():  # T1 crop: inside the brain everywhere; keep the lesion off the field's edge
            m = np.zeros_like(m)
            m[1:-1, 1:-1] = True
        img = np.clip(img, 0, None)
        img = img / max(np.percentile(img[m], 99), 1e-6)
        out_i.append(img.astype(np.float32))
        out_m.append(m)
    # 66 mm field for the T1 crop; the EPI crops differ, but the transforms only need a plausible mm scale
    spacing = 66.0 / size
    return (np.stack(out_i), np.stack(out_m), np.asarray(sources), np.asarray(ids)), spacing


_SPLITS = ("train", "test", "shift")


def _split_bases(split: str, train_source: str) -> np.ndarray:
    """Base slice indices of a split: the training source's slices interleaved (even train, odd test), or the other source."""
    if train_source not in SOURCES:
        raise ParameterError(f"train_source must be one of {', '.join(SOURCES)}, got {train_source!r}")
    if split not in _SPLITS:
        raise ParameterError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    (_, _, sources, _), _ = base_slices(8)
    src = SOURCES.index(train_source)
    if split == "shift":
        return np.flatnonzero(sources != src)
    own = np.flatnonzero(sources == src)
    return own[np.arange(own.size) % 2 == (0 if split == "train" else 1)]


# --------------------------------------------------------------------------- one case
def _case_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, _SPLITS.index(split), int(index)]))


def _lesion(rng: np.random.Generator, brain: np.ndarray, cfg: LesionTaskConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """A soft ellipse profile in [0, 1] entirely inside ``brain``, and its parameters."""
    size = cfg.size
    a, b = (rng.uniform(*cfg.radius, size=2) * size).tolist()
    theta = float(rng.uniform(0, np.pi))
    contrast = float(rng.uniform(*cfg.contrast)) * (1.0 if rng.random() < 0.5 else -1.0)
    reach = int(np.ceil(max(a, b))) + 1
    inner = ndimage.binary_erosion(brain, structure=np.ones((3, 3), bool), iterations=reach, border_value=0)
    if not inner.any():
        inner = ndimage.binary_erosion(brain, iterations=1, border_value=0)
    if not inner.any():
        inner = brain
    cand = np.flatnonzero(inner)
    cy, cx = np.unravel_index(int(cand[rng.integers(cand.size)]), brain.shape)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    d = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    # 1 inside d < 0.6, a linear soft edge to 0 at the ellipse's boundary d = 1
    profile = np.where(d <= 1.0, np.clip((1.0 - d) / 0.4, 0.0, 1.0), 0.0) * brain
    params = {"center": [int(cy), int(cx)], "radii": [a, b], "angle": theta, "contrast": contrast}
    return profile, params


def make_case(seed: int, split: str, index: int, positive: bool, cfg: LesionTaskConfig | None = None) -> dict[str, Any]:
    """One patient of ``split`` (train, test or shift): ``image``, ``brain``, ``lesion`` (S x S), ``target``, parameters."""
    from ..engine.compose import Compose
    from ..intensity.bias_field import RandomBiasField
    from ..intensity.gamma import RandomGamma
    from ..intensity.noise import RandomNoise
    from ..spatial.affine import Affine
    from ..spatial.elastic import ElasticBSpline

    cfg = cfg or LesionTaskConfig()
    (images, masks, _, _), spacing = base_slices(cfg.size)
    rng = _case_rng(seed, split, index)
    bases = _split_bases(split, cfg.train_source)
    b = int(bases[rng.integers(bases.size)])
    base = Image(images[b], spacing=(spacing, spacing))
    brain0 = Image(masks[b].astype(np.uint8), spacing=(spacing, spacing), is_label=True)
    sample = Sample(image=base, brain=brain0)
    patient = Compose(
        [
            ElasticBSpline(control_points=6, max_displacement=cfg.deformation_mm, seed=int(rng.integers(2**31))),
            Affine(rotation=float(rng.uniform(-cfg.rotation, cfg.rotation)),
                   scale=float(rng.uniform(1 - cfg.scale, 1 + cfg.scale)),
                   translation=rng.uniform(-cfg.translation_mm, cfg.translation_mm, size=2).tolist()),
        ],
        fill=0.0,
    )(sample, seed=0)
    img = patient["image"].array.astype(np.float64)
    brain = patient["brain"].array > 0
    profile, params = _lesion(rng, brain, cfg)  # drawn for every case: negatives differ only by not getting it
    if positive:
        img = img * (1.0 + params["contrast"] * profile)
    else:
        profile = np.zeros_like(profile)
    scanner = Compose(
        [
            RandomBiasField(order=3, coefficients=cfg.bias),
            RandomGamma(log_gamma=cfg.log_gamma),
            RandomNoise(kind="rician", std=[0.0, cfg.noise], relative=True),
        ],
        fill=0.0,
    )
    out = scanner(Sample(image=Image(img.astype(np.float32), spacing=(spacing, spacing))), seed=int(rng.integers(2**31)))
    arr = out["image"].array.astype(np.float64)
    ref = arr[brain] if brain.any() else arr
    arr = np.clip(arr / max(np.percentile(ref, 99), 1e-6), 0.0, 2.0)
    return {
        "image": arr.astype(np.float32),
        "brain": brain,
        "lesion": profile.astype(np.float32),
        "target": int(bool(positive)),
        "base": b,
        "params": params if positive else {},
    }


def make_task(seed: int = 0, cfg: LesionTaskConfig | None = None, *, progress: bool = False) -> TaskSplits:
    """The training, test and shift splits, each with ``positive_fraction`` positives, deterministic in ``seed``."""
    cfg = cfg or LesionTaskConfig()
    if cfg.size % 8:
        raise ParameterError(f"the task size must be divisible by 8, got {cfg.size}")
    if not 0.0 < cfg.positive_fraction <= 1.0:
        raise ParameterError(f"positive_fraction must be in (0, 1], got {cfg.positive_fraction}")
    return TaskSplits(
        _make_split(seed, "train", cfg.n_train, cfg, progress),
        _make_split(seed, "test", cfg.n_test, cfg, progress),
        _make_split(seed, "shift", cfg.n_shift, cfg, progress) if cfg.n_shift else None,
    )


def _make_split(seed: int, split: str, n: int, cfg: LesionTaskConfig, progress: bool) -> TaskData:
    if n < 2:
        raise ParameterError(f"need at least 2 {split} cases, got {n}")
    _, spacing = base_slices(cfg.size)
    order = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 7, _SPLITS.index(split)]))
    labels = np.zeros(n, np.int64)
    labels[: int(n * cfg.positive_fraction)] = 1
    labels = order.permutation(labels)
    cases = []
    it = range(n)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"making {split} cases", leave=False)
    with single_thread():
        for i in it:
            cases.append(make_case(seed, split, i, bool(labels[i]), cfg))
    return TaskData(
        images=np.stack([c["image"] for c in cases]),
        targets=labels,
        brain=np.stack([c["brain"] for c in cases]),
        lesion=np.stack([c["lesion"] for c in cases]),
        base=np.asarray([c["base"] for c in cases]),
        spacing=(spacing, spacing),
        case_ids=[f"{split}{i:04d}" for i in range(n)],
    )


# --------------------------------------------------------------------------- user data
def load_task(source: str | Path, size: int = 64, test_fraction: float = 0.2, seed: int = 0) -> TaskSplits:
    """A user's labelled data (CSV with ``image``,``target`` or a dataset folder) as 2D ``size`` x ``size`` cases.

    3D images give their middle axial slice.  Each image is resized to
    ``size`` x ``size`` and scaled to its 99th percentile.  Targets must be
    0/1; a CSV column ``split`` (``train``/``test``) is honoured, otherwise a
    stratified ``test_fraction`` is held out with ``seed``.
    """
    import csv

    from ..datasets.cases import load_case
    from ..datasets.discover import read_cases

    src = Path(source)
    cases = read_cases(src)
    splits: dict[str, str] = {}
    if src.is_file():
        with src.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if (row.get("split") or "").strip():
                    key = (row.get("case_id") or "").strip() or Path(row["image"].strip()).name
                    splits[key] = row["split"].strip().lower()
    imgs, targets, split_of = [], [], []
    for c in cases:
        if c.target is None:
            raise ParameterError(f"case '{c.case_id}' has no target; the CSV needs a 'target' column of 0/1", path=src)
        try:
            t = int(c.target)
        except (TypeError, ValueError):
            raise ParameterError(f"case '{c.case_id}': target must be 0 or 1, got {c.target!r}", path=src) from None
        if t not in (0, 1):
            raise ParameterError(f"case '{c.case_id}': target must be 0 or 1, got {t}", path=src)
        arr = load_case(c)["image"].array.astype(np.float64)
        if arr.ndim == 3:
            arr = arr[arr.shape[0] // 2]
        side = max(arr.shape)
        padded = np.zeros((side, side))
        oy, ox = (side - arr.shape[0]) // 2, (side - arr.shape[1]) // 2
        padded[oy:oy + arr.shape[0], ox:ox + arr.shape[1]] = arr - arr.min()
        img = ndimage.zoom(padded, size / side, order=1, grid_mode=True, mode="nearest")[:size, :size]
        img = img / max(np.percentile(img, 99), 1e-6)
        imgs.append(np.clip(img, 0, 2).astype(np.float32))
        targets.append(t)
        split_of.append(splits.get(c.case_id) or splits.get(c.image.name))
    targets_a = np.asarray(targets, np.int64)
    if all(s in ("train", "test") for s in split_of):
        test = np.asarray([s == "test" for s in split_of])
    else:
        rng = np.random.default_rng(seed)
        test = np.zeros(len(targets_a), bool)
        for cls in (0, 1):
            idx = np.flatnonzero(targets_a == cls)
            k = round(test_fraction * idx.size)
            test[rng.choice(idx, size=k, replace=False)] = True
    if test.all() or not test.any():
        raise ParameterError("need both training and test cases", path=src)
    stack = np.stack(imgs)
    ids = [c.case_id for c in cases]
    tr = TaskData(stack[~test], targets_a[~test], case_ids=[i for i, t in zip(ids, test) if not t])
    te = TaskData(stack[test], targets_a[test], case_ids=[i for i, t in zip(ids, test) if t])
    return TaskSplits(tr, te, None)
