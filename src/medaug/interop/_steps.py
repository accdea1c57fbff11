"""Foreign transforms as steps of a medaug pipeline: the shared machinery.

A :class:`ForeignStep` is a medaug :class:`~medaug.engine.transform.RandomTransform`:
its ``sample`` draws one integer seed from the pipeline's generator and returns
a :class:`ForeignApplied`, a deterministic transform with ``apply_sample``.
That one seeds the global random generators (PyTorch's CPU and initialised
CUDA generators, NumPy's legacy global state and Python's ``random``) inside a
fork, so that the same medaug seed gives the same result and the caller's
random state is left as it was.

The engine resamples the spatial transforms before such a step, runs the
step, and resamples the spatial transforms after it separately: fusion does
not cross a foreign step.

A foreign transform is a Python object: its history record keeps a text
description and the seed, which is enough to read but not to rebuild it, so
a history holding one cannot be replayed or inverted (:func:`medaug.replay`
raises a :class:`~medaug.errors.ParameterError` saying so).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.sample import Sample
from ..engine.compose import Compose
from ..engine.transform import Context, RandomTransform, Transform, _Base
from ..errors import ParameterError

__all__ = ["ForeignStep", "ForeignApplied", "seeded", "describe", "as_pipeline", "MAX_SEED"]

#: Seeds drawn for foreign steps and wrappers are in [0, MAX_SEED).
MAX_SEED = 2**31 - 1

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_EMPTY_CALL = re.compile(r"\w\(\)")  # e.g. TorchIO's "RandomNoise()": its repr hides the parameters


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with every global random generator seeded, then restore them.

    Forks PyTorch's CPU generator (and the CUDA ones when CUDA is already
    initialised, never initialising it), NumPy's global ``RandomState`` and
    Python's ``random``.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    np_state = np.random.get_state()
    py_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.default_generator.manual_seed(int(seed))
            if devices:
                torch.cuda.manual_seed_all(int(seed))
            np.random.seed(int(seed) % 2**32)
            random.seed(int(seed))
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def describe(obj: Any, depth: int = 2) -> str:
    """A stable one-line description of a foreign transform (no memory addresses).

    Uses the object's own ``repr`` when it defines one; otherwise its class and
    its public attributes of simple types (numbers, strings, short sequences),
    nested transforms described to ``depth`` levels.
    """
    cls = type(obj)
    text = repr(obj)
    if not _ADDRESS.search(text) and "\n" not in text and not (_EMPTY_CALL.search(text) and vars_of(obj)):
        return text
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(describe(o, depth) for o in obj) + "]"
    name = f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"
    if depth <= 0:
        return name
    parts = []
    for key, value in vars_of(obj):
        if isinstance(value, (bool, int, float, str)) or value is None:
            parts.append(f"{key}={value!r}")
        elif isinstance(value, (tuple, list)) and len(value) <= 8 and all(
            isinstance(v, (bool, int, float, str)) or v is None for v in value
        ):
            parts.append(f"{key}={tuple(value)!r}")
        elif isinstance(value, (list, tuple)) and value and all(callable(v) and hasattr(v, "__dict__") for v in value):
            parts.append(f"{key}=[{', '.join(describe(v, depth - 1) for v in value)}]")
        elif callable(value) and hasattr(value, "__dict__") and not isinstance(value, type):
            parts.append(f"{key}={describe(value, depth - 1)}")
    return f"{name}({', '.join(parts)})"


def vars_of(obj: Any) -> list[tuple[str, Any]]:
    """Public attributes of an object, sorted (without MONAI's random state ``R``)."""
    if not hasattr(obj, "__dict__"):
        return []
    return [(k, v) for k, v in sorted(vars(obj).items())
            if not k.startswith("_") and k not in ("R", "args_names") and v is not None]


def as_pipeline(pipeline: Any) -> Compose:
    """A medaug pipeline from a Compose, a single transform, a config list/dict or a config file path."""
    if isinstance(pipeline, Compose):
        return pipeline
    if isinstance(pipeline, _Base):
        return Compose([pipeline])
    if isinstance(pipeline, (list, dict, str, Path)):
        from ..engine.config import pipeline_from_config

        return pipeline_from_config(pipeline)
    raise ParameterError(
        "expected a medaug pipeline (Compose, a transform, a config list or a config file), "
        f"got {type(pipeline).__name__}"
    )


class ForeignApplied(Transform):
    """A foreign transform with a fixed seed: applied to a whole sample by :meth:`apply_sample`.

    Subclasses implement :meth:`apply_sample` and set :attr:`library`.
    """

    __abstract__ = True

    #: "MONAI" or "TorchIO", for messages.
    library: str = ""
    #: the step class to name in messages.
    step_name: str = ""

    def __init__(self, transform: Any, seed: int, *, spatial: bool = True, **options: Any) -> None:
        if isinstance(transform, str):
            raise ParameterError(
                f"{type(self).__name__} wraps a {self.library} transform object, but got its description "
                f"{transform!r}: a history record or config file keeps only that text and the seed, so a "
                f"{self.library} step cannot be rebuilt from it; build the pipeline in Python with "
                f"medaug.interop.{self.library.lower()}.{self.step_name}(<the transform>) and use the same seed"
            )
        self.transform = transform
        self.seed = int(seed)
        self.spatial = bool(spatial)
        self.options = dict(options)

    def config_params(self) -> dict[str, Any]:
        from ..engine.transform import to_jsonable

        return {"transform": describe(self.transform), "seed": self.seed, "spatial": self.spatial,
                **to_jsonable(self.options)}

    def record(self) -> dict[str, Any]:
        return {
            "name": type(self).__name__,
            "params": self.config_params(),
            "replayable": False,
            "note": f"a {self.library} transform is recorded by its description and seed only; rebuild the pipeline "
                    f"in Python with {self.step_name}(...) and call it with the same seed to reproduce it",
        }

    def short(self) -> str:
        return f"{self.library} {type(self.transform).__name__}"

    def apply_sample(self, sample: Sample) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self, before: Sample, images: Mapping[str, Any]) -> Sample:
        """The result sample: new images; points and boxes dropped after a spatial foreign step."""
        from ..data.sample import Sample as _Sample

        out = _Sample(
            **images,
            points=None if self.spatial else before.points,
            boxes=None if self.spatial else before.boxes,
            target=before.target,
            metadata=before.metadata,
            history=before.history,
        )
        if self.spatial and (before.points or before.boxes):
            out.metadata["dropped"] = sorted({*out.metadata.get("dropped", []), *before.points, *before.boxes})
        return out


class ForeignStep(RandomTransform):
    """A foreign transform as a random step of a medaug pipeline (draws the seed it runs with).

    Subclasses set :attr:`applied_class` and check the transform in ``__init__``.
    """

    __abstract__ = True

    applied_class: type[ForeignApplied]
    library: str = ""

    def __init__(self, transform: Any, *, p: float = 1.0, spatial: bool | None = None, **options: Any) -> None:
        if isinstance(transform, str):
            raise ParameterError(
                f"{type(self).__name__} needs a {self.library} transform object; a config file cannot hold one "
                f"(got the description {transform!r}): build this pipeline in Python"
            )
        self.transform = transform
        self.p = self.check_p(p)
        self.spatial = self.is_spatial(transform) if spatial is None else bool(spatial)
        self.options = dict(options)

    @staticmethod
    def is_spatial(transform: Any) -> bool:
        """Whether the transform may move voxels (then landmarks and boxes cannot follow it)."""
        return True

    def sample(self, rng: np.random.Generator, ctx: Context) -> Transform:
        seed = int(rng.integers(0, MAX_SEED))
        return self.applied_class(self.transform, seed, spatial=self.spatial, **self.options)

    def config_params(self) -> dict[str, Any]:
        from ..engine.transform import to_jsonable

        return {"transform": describe(self.transform), "p": self.p, "spatial": self.spatial,
                **to_jsonable(self.options)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe(self.transform)}, p={self.p})"
