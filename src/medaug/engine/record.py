"""The record of a run, and what it is good for: replaying it and inverting its spatial part.

One JSON-serialisable format, a list of entries, describes what happened to a
sample.  It is the sample's ``history``, the ``params`` column of an expansion's
``manifest.csv``, what :func:`replay` and :func:`inverse_of` take and what the
review page summarises.  Its entries, in order:

* a **run** entry, one per pipeline call::

      {"run": {"medaug": "0.2.0", "pipeline": <the pipeline's config, options included>,
               "seed": <the int seed, or {"generator": <state>} for a Generator>,
               "grid": <the input grid: size, spacing, origin, direction>}}

* one entry per applied deterministic transform, ``{"name": ..., "params": {...}}``;
  spatial ones add ``"resampling"``: the index of the fused resampling they
  were part of, its interpolation options and the numeric fill used per image,
  e.g. ``{"index": 0, "fill": {"image": -1000.0}, "interpolation": "linear",
  "label_interpolation": "nearest", "backend": "auto", "tolerance": 0.1}``;
* reports that are not transforms carry ``"check": true`` (e.g. the output
  intensity range check of a pipeline with a modality).

Histories are extended, not replaced: a sample that went through two pipelines
holds two runs.  Entries of earlier versions (no run entry, no ``resampling``)
are still read: they replay with the given options and invert where no grid is
needed (affines, flips).

Examples
--------
>>> import medaug
>>> sample = medaug.shepp_logan_2d(48)
>>> out = medaug.preset("mri")(sample, seed=3)
>>> again = medaug.replay(out.history)(sample)
>>> bool((again.image.array == out.image.array).all())
True
>>> back = medaug.inverse_of(out.history)(out)
>>> back.image.grid.same_as(sample.grid)
True
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ..data.grid import Grid
from ..errors import ParameterError
from .compose import Compose
from .inverse import rebuild, undo
from .transform import SpatialTransform, Transform, _Base

__all__ = ["replay", "inverse_of", "applied", "runs"]


def applied(history: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transform entries of a history: run entries and checks left out."""
    return [e for e in _entries(history) if "name" in e and not e.get("check") and "run" not in e]


def runs(history: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run entries' contents (pipeline config, seed, input grid), one per pipeline call."""
    return [e["run"] for e in _entries(history) if isinstance(e.get("run"), dict)]


def _entries(history: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(history, (str, bytes)) or not isinstance(history, Iterable):
        raise ParameterError(f"a history is a list of entries (a sample's .history), got {type(history).__name__}")
    entries = list(history)
    for e in entries:
        if not isinstance(e, dict):
            raise ParameterError(f"history entries are mappings, got {e!r}")
    return entries


def _walk(history: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Transform | None]]:
    """Each entry with its rebuilt transform (None for run entries and checks)."""
    for e in _entries(history):
        if "run" in e or e.get("check"):
            yield e, None
            continue
        if e.get("replayable") is False:  # e.g. a wrapped MONAI/TorchIO transform (medaug.interop)
            raise ParameterError(
                f"history entry {e.get('name')!r} cannot be rebuilt from its record, so this history cannot be "
                f"replayed or inverted: {e.get('note') or 'it was recorded without replayable parameters'}"
            )
        yield e, rebuild(e)


def replay(history: Iterable[dict[str, Any]], **options: Any) -> Compose:
    """A pipeline that re-applies exactly the transforms recorded in ``history``.

    On the same input it gives the same output bit for bit (CPU; the torch
    backend within float tolerance): each fused resampling of the record is
    repeated with its recorded options and numeric fills.

    Parameters
    ----------
    history : list of dict
        A sample's ``history`` (or the ``params`` column of a manifest, parsed).
    **options
        Pipeline options (``fill``, ``interpolation`` ...).  Given ones replace
        the recorded ones, e.g. ``fill=0.0`` to replay the geometry onto
        another image (a grid pattern, a prediction).
    """
    items: list[_Base] = []
    group: list[Transform] = []
    key: str | None = None
    resampling: dict[str, Any] = {}

    def flush() -> None:
        if group:
            settings: dict[str, Any] = {k: resampling[k] for k in ("fill", "interpolation", "label_interpolation", "backend",
                                                  "tolerance") if k in resampling}
            items.append(Compose(list(group), **{**settings, **_resampling_overrides(options)}))
            group.clear()

    for entry, t in _walk(history):
        if t is not None and isinstance(t, SpatialTransform) and isinstance(entry.get("resampling"), dict):
            this = json.dumps(entry["resampling"], sort_keys=True)
            if this != key:
                flush()
                key, resampling = this, entry["resampling"]
            group.append(t)
            continue
        flush()
        key = None
        if t is not None:
            items.append(t)
    flush()
    return Compose(items, **options)


def _resampling_overrides(options: dict[str, Any]) -> dict[str, Any]:
    keys = ("fill", "interpolation", "label_interpolation", "backend", "tolerance")
    return {k: v for k, v in options.items() if k in keys and v is not None}


def inverse_of(history: Iterable[dict[str, Any]], **options: Any) -> Compose:
    """A pipeline mapping an output back onto its input's grid: the spatial transforms of ``history`` undone.

    Every spatial transform is undone, in reverse order: affines, flips,
    crops, pads, resampling and reorientation exactly; elastic, radial and
    learned deformations numerically (see :mod:`medaug.engine.inverse`), all
    fused into one resampling.  Intensity transforms are skipped.  Points and
    boxes of the sample go through the same inverse.

    Use it for test-time augmentation (:func:`medaug.tta`): map a prediction
    made on an augmented sample back onto the original grid.

    Parameters
    ----------
    history : list of dict
        The history of the output (it must hold the run entries, which give
        the grids that crops, pads and resampling are undone onto).
    **options
        Pipeline options; ``fill`` defaults to 0 (outside what the output covered).

    Raises
    ------
    NotInvertibleError
        When a recorded deformation folds.
    ParameterError
        When the history holds a step that cannot be rebuilt, or misses a grid it needs.
    """
    steps: list[Transform] = []
    grid: Grid | None = None
    for entry, t in _walk(history):
        if "run" in entry:
            recorded = entry["run"].get("grid")
            grid = Grid.from_dict(recorded) if isinstance(recorded, dict) else None
            continue
        if isinstance(t, SpatialTransform):
            steps.append(undo(t, grid))
            grid = t.output_grid(grid) if grid is not None else None
    options.setdefault("fill", 0.0)
    return Compose(steps[::-1], **options)
