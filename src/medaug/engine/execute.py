"""Executing resolved transforms: fused resampling runs, fills, step-wise intensity transforms.

Each run of consecutive spatial transforms is composed into one warp and every
image is resampled once, with the point-wise intensity transforms that follow
the run applied in the same sweep; other intensity transforms run on the
result.  The applied transforms are appended to the sample's history.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.grid import Grid
from ..data.image import Image
from ..data.sample import Sample
from ..errors import MedaugError, ParameterError
from .pointwise import FusedOps
from .resample import ResampleJob, ResampleOptions, plan_coordinates, resample_batch
from .transform import IntensityTransform, SpatialTransform, Transform
from .warp import ChainWarp, compose

__all__ = [
    "execute", "execute_batch", "name_sample", "apply_intensity", "one_thread_if_small", "SMALL_VOXELS", "channel_layout", "applies_to", "resolve_fill", "border_median",
    "check_output_size", "FillSpec", "Resampling", "Step",
]

FillSpec = float | str | dict[str, float | str] | None


@dataclass(frozen=True, eq=False)
class Resampling:
    """The options of a fused resampling: interpolation, backend, tolerance, and the fill outside the field of view.

    Consecutive spatial transforms that share one ``Resampling`` object are
    resampled together, once (a nested ``Compose`` with options of its own
    brings its own object, so its transforms are resampled on their own).
    """

    options: ResampleOptions = field(default_factory=ResampleOptions)
    fill: FillSpec = "background"

    def with_settings(self, settings: dict[str, Any]) -> Resampling:
        """This resampling with some of ``fill`` and the :class:`ResampleOptions` fields replaced; itself when none are."""
        if not settings:
            return self
        options = dataclasses.replace(self.options, **{k: v for k, v in settings.items() if k != "fill"})
        return Resampling(options, settings.get("fill", self.fill))

    def record(self, index: int, fills: dict[str, float]) -> dict[str, Any]:
        """What the history keeps of one run: enough to repeat it bit for bit (numeric fills per image)."""
        o = self.options
        return {"index": index, "fill": dict(fills), "interpolation": o.interpolation,
                "label_interpolation": o.label_interpolation, "backend": o.backend, "tolerance": o.tolerance}


#: A deterministic transform, alone (default options) or with the resampling options of its pipeline.
Step = Transform | tuple[Transform, Resampling]


def execute(sample: Sample, transforms: Sequence[Step], options: ResampleOptions | None = None, fill: FillSpec = "background") -> Sample:
    """Apply deterministic transforms, fusing spatial runs and the point-wise ops after them.

    Each spatial transform's history record gets a ``"resampling"`` entry: the
    run's index, its options and the numeric fill used per image.
    """
    return execute_batch([sample], [transforms], options, fill, named=False)[0]


def execute_batch(
    samples: Sequence[Sample],
    transforms: Sequence[Sequence[Step]],
    options: ResampleOptions | None = None,
    fill: FillSpec = "background",
    *,
    named: bool = True,
) -> list[Sample]:
    """:func:`execute` for several samples, each with its own transforms, their resampling sweeps run together.

    The samples advance stage by stage (a stage is a fused spatial run, or one
    other transform); at each stage the spatial runs of samples with the same
    layout and options go to :func:`~medaug.engine.resample.resample_batch`
    in one launch.  Each sample's result and history are those of
    :func:`execute` on it alone.

    Raises
    ------
    MedaugError or other exceptions
        From the sample that failed, its message led by ``batch sample i``
        (and its ``case_id``), see :func:`name_sample`; as raised when not ``named``
        (one sample's own call: no batch to name).
    """
    where = name_sample if named else _as_raised
    default = Resampling(options or ResampleOptions(), fill)
    steps = [[(s, default) if isinstance(s, Transform) else s for s in listed] for listed in transforms]
    curs = [s.replace() for s in samples]
    runs = [0] * len(curs)
    pos = [0] * len(curs)
    while any(p < len(st) for p, st in zip(pos, steps)):
        planned: list[tuple[int, _SpatialPlan]] = []
        for i, cur in enumerate(curs):
            if pos[i] >= len(steps[i]):
                continue
            with where(i, cur):
                stage, pos[i] = _next_stage(steps[i], pos[i], cur.grid)
                if isinstance(stage, _SpatialStage):
                    planned.append((i, _plan_spatial(cur, stage)))
                else:
                    curs[i] = _apply_other(cur, stage)
        groups: dict[tuple, list[tuple[int, _SpatialPlan]]] = {}
        for i, plan in planned:
            groups.setdefault((plan.job.layout(), _options_key(plan.stage.resampling.options)), []).append((i, plan))
        for members in groups.values():
            if len(members) == 1:
                with where(members[0][0], curs[members[0][0]]):
                    results = resample_batch([members[0][1].job], 0, members[0][1].stage.resampling.options)
            else:
                results = resample_batch([p.job for _, p in members], 0, members[0][1].stage.resampling.options)
            for (i, plan), (outs, louts) in zip(members, results):
                curs[i] = _finish_spatial(curs[i], plan, outs, louts, runs[i])
                runs[i] += 1
    return curs


def _as_raised(index: int, sample: Sample) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


@contextlib.contextmanager
def name_sample(index: int, sample: Sample) -> Iterator[None]:
    """Lead an error raised inside by the batch position (and case id) of ``sample``.

    A :class:`~medaug.errors.MedaugError` keeps its type and gets the prefix
    in its message; any other exception gets it as a note (and an attribute
    ``batch_index``).
    """
    try:
        yield
    except Exception as exc:
        case = sample.metadata.get("case_id")
        where = f"batch sample {index}" + (f" (case {case!r})" if case is not None else "")
        exc.batch_index = index  # type: ignore[attr-defined]
        if isinstance(exc, MedaugError):
            if not exc.message.startswith("batch sample"):
                exc.message = f"{where}: {exc.message}"
                exc.args = (exc.message, *exc.args[1:])
        elif hasattr(exc, "add_note"):
            exc.add_note(where)
        raise


def _options_key(options: ResampleOptions) -> tuple:
    return (options.interpolation, options.label_interpolation, options.backend, options.tolerance)


@dataclass
class _SpatialStage:
    """A run of spatial transforms sharing one resampling, and the point-wise intensity transforms fused after it."""

    run: list[SpatialTransform]
    fused: list[tuple[IntensityTransform, FusedOps]]
    resampling: Resampling
    grid: Grid  # the output grid


@dataclass
class _SpatialPlan:
    """A spatial stage made concrete for one sample: its sweep job, grid, chain, fills and metadata."""

    stage: _SpatialStage
    job: ResampleJob
    grid: Grid
    chain: ChainWarp
    names_i: list[str]
    names_l: list[str]
    metadata: dict[str, Any]
    started: float


def _next_stage(steps: list[tuple[Transform, Resampling]], i: int, grid: Grid) -> tuple[_SpatialStage | Transform, int]:
    """The stage starting at step ``i`` of a sample now on ``grid``, and where the next one starts.

    A stage is a run of spatial transforms sharing one resampling with the
    point-wise intensity transforms right after it (fused into its sweep), or
    one other transform.
    """
    t = steps[i][0]
    if not isinstance(t, SpatialTransform):
        return t, i + 1
    resampling = steps[i][1]
    run: list[SpatialTransform] = []
    while i < len(steps) and isinstance(nxt := steps[i][0], SpatialTransform) and steps[i][1] is resampling:
        run.append(nxt)
        grid = nxt.output_grid(grid)
        i += 1
    fused: list[tuple[IntensityTransform, FusedOps]] = []
    while i < len(steps) and isinstance(nxt := steps[i][0], IntensityTransform):
        ops = nxt.fused_ops(grid)
        if ops is None:
            break
        fused.append((nxt, ops))
        i += 1
    return _SpatialStage(run, fused, resampling, grid), i


def _apply_other(cur: Sample, t: Transform) -> Sample:
    """A stage that is not a fused spatial run: an intensity transform step-wise, or a sample-level transform."""
    if isinstance(t, IntensityTransform):
        cur = apply_intensity(cur, t)
    else:
        apply = getattr(t, "apply_sample", None)
        if apply is None:
            raise ParameterError(f"{type(t).__name__} cannot be applied to a sample")
        cur = apply(cur)
    cur.history.append(t.record())
    return cur


def channel_layout(sample: Sample) -> list[tuple[str, int]]:
    """``(image name, channel)`` of every intensity channel of ``sample``, in the order the engine stacks them.

    The position in this list is the channel's number for counter-based noise,
    so fused and step-wise application draw the same values.
    """
    return [(name, k) for name, img in sample.intensity_images.items() for k in range(img.channels)]


def applies_to(t: IntensityTransform, sample: Sample, name: str, channel: int,
               targets: Collection[str] | None = None) -> bool:
    """Whether ``t`` changes channel ``channel`` of image ``name`` (its targets and its ``channels``).

    ``targets``: ``t.targets(sample)`` when the caller already has it (asked once for many channels).
    """
    chosen = getattr(t, "channels", None)
    return name in (t.targets(sample) if targets is None else targets) and (chosen is None or channel in chosen)


def _programs(sample: Sample, fused: list[tuple[IntensityTransform, FusedOps]]) -> list[FusedOps]:
    """Each intensity channel's fused operations, in :func:`channel_layout` order."""
    layout = channel_layout(sample)
    programs = [FusedOps() for _ in layout]
    for t, ops in fused:
        targets = set(t.targets(sample))
        for g, (name, k) in enumerate(layout):
            if applies_to(t, sample, name, k, targets):
                programs[g].extend(ops)
    return programs


def resolve_fill(spec: FillSpec, name: str, image: Image, metadata: dict[str, Any] | None = None) -> list[float]:
    """The numeric fill value of each channel of one intensity image.

    ``"background"`` uses ``metadata["background"][name]`` (a number, or one
    per channel) when an earlier step measured it (e.g. a foreground crop),
    else the median of each channel's outer shell.
    """
    if isinstance(spec, dict):
        spec = spec.get(name, "background")
    if spec is None:
        spec = "background"
    if isinstance(spec, (int, float, np.number)) and not isinstance(spec, bool):
        return [float(spec)] * image.channels
    if isinstance(spec, (list, tuple)):  # one number per channel, as a record holds them
        if len(spec) != image.channels:
            raise ParameterError(f"fill for '{name}' lists {len(spec)} value(s) but the image has {image.channels} "
                                 "channel(s)")
        return [float(v) for v in spec]
    if spec not in ("min", "background"):
        raise ParameterError(f"fill must be a number, 'min' or 'background', got {spec!r} for '{name}'")
    known = (metadata or {}).get("background", {}).get(name) if spec == "background" else None
    fills = []
    for k in range(image.channels):
        arr = image.channel(k).array
        if spec == "min":
            fills.append(float(arr.min()))
        elif known is not None:
            fills.append(float(known[k] if isinstance(known, (list, tuple)) else known))
        else:
            fills.append(border_median(arr))
    return fills


#: Largest output grid the engine allocates, in voxels (2**31: the kernels' index range).
MAX_VOXELS = 1 << 31


def check_output_size(grid: Grid, itemsizes: Sequence[int]) -> None:
    """Refuse, before anything is allocated, an output grid that cannot fit in memory.

    The budget is the memory available now (Linux ``MemAvailable``), the room
    left under the process's address-space limit (``RLIMIT_AS``), and
    ``MEDAUG_MAX_OUTPUT_BYTES`` when set (e.g. for data-loader workers), whichever is least.

    Parameters
    ----------
    grid : Grid
        The grid the images would be resampled onto.
    itemsizes : list of int
        Bytes per voxel of each output image.

    Raises
    ------
    ParameterError
        Naming the grid's size and the memory it would need.
    """
    voxels = math.prod(int(s) for s in grid.shape)
    need = voxels * max(sum(itemsizes), 1)
    # below _UNCHECKED bytes only the explicit cap is looked at (reading /proc on every 2D sample costs more than it guards)
    available = _available_memory(read_system=need >= _UNCHECKED)
    if voxels > MAX_VOXELS or need > available:
        why = (f"above the {MAX_VOXELS}-voxel limit" if voxels > MAX_VOXELS
               else f"more than the {_size(available)} of memory available")
        raise ParameterError(
            f"the output grid of size {tuple(grid.size_xyz)} (spacing {tuple(round(v, 6) for v in grid.spacing)} mm) "
            f"has {voxels:.3g} voxels and would need {_size(need)} for {len(itemsizes)} image(s), {why}; "
            "choose a coarser spacing or a smaller size"
        )


#: Outputs smaller than this (bytes) are checked against ``MEDAUG_MAX_OUTPUT_BYTES`` only.
_UNCHECKED = 16 << 20


def _available_memory(read_system: bool = True) -> int:
    """Bytes the engine may allocate now (see :func:`check_output_size`); only the explicit cap unless ``read_system``."""
    budget = [1 << 62]
    cap = os.environ.get("MEDAUG_MAX_OUTPUT_BYTES", "").strip()
    if cap:
        try:
            budget.append(int(float(cap)))
        except ValueError:
            raise ParameterError(f"MEDAUG_MAX_OUTPUT_BYTES must be a number of bytes, got {cap!r}") from None
    if not read_system:
        return min(budget)
    budget.append(_meminfo("MemAvailable") or _physical_memory())
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            budget.append(max(soft - (_meminfo("VmSize", "/proc/self/status") or 0), 0))
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        pass
    return min(budget)


def _meminfo(key: str, path: str = "/proc/meminfo") -> int | None:
    """A ``key: <n> kB`` line of a Linux /proc file, in bytes (None when absent)."""
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        return None
    return None  # pragma: no cover


def _physical_memory() -> int:  # pragma: no cover - not Linux
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def border_median(arr: np.ndarray) -> float:
    """Median of the voxels on the outer faces of an array (the background, e.g. air); NaN if any is NaN."""
    whole = (slice(None),) * arr.ndim
    faces = np.concatenate([arr[whole[:axis] + (end,)].ravel() for axis in range(arr.ndim) for end in (0, -1)])
    if faces.dtype.kind == "f" and np.isnan(faces).any():
        return float("nan")
    k = faces.size // 2
    if faces.size % 2:
        return float(np.partition(faces, k)[k])
    part = np.partition(faces, (k - 1, k))
    return float(part[k - 1 : k + 1].mean())  # as np.median: the mean of the two middle values, in the array's dtype


def _plan_spatial(cur: Sample, stage: _SpatialStage) -> _SpatialPlan:
    """The sweep job of one sample's spatial stage: composed map, coordinates, fills, programs."""
    run = stage.run
    grids = [cur.grid]
    for s in run:
        grids.append(s.output_grid(grids[-1]))
    grid = grids[-1]
    check_output_size(grid, [4] * len(cur.intensity_images) + [img.array.itemsize for img in cur.label_maps.values()])
    chain = compose([s.warp(a, b) for s, a, b in zip(run, grids, grids[1:])])
    started = time.perf_counter()
    coords = plan_coordinates(chain, grids[0], grid, stage.resampling.options.tolerance)
    names_i = list(cur.intensity_images)
    names_l = list(cur.label_maps)
    metadata = dict(cur.metadata)
    for s in run:
        s.update_metadata(metadata)
    fills = [resolve_fill(stage.resampling.fill, n, cur[n], metadata) for n in names_i]
    job = ResampleJob(
        coords,
        [cur[n].data if cur[n].channel_axis else cur[n].data[None] for n in names_i],
        fills,
        [cur[n].data for n in names_l],
        _programs(cur, stage.fused),
    )
    return _SpatialPlan(stage, job, grid, chain, names_i, names_l, metadata, started)


def _finish_spatial(cur: Sample, plan: _SpatialPlan, outs: list, louts: list, index: int) -> Sample:
    """The sample after its spatial stage: resampled images, moved points and boxes, metadata and history."""
    grid = plan.grid
    images: dict[str, Image] = {}
    for n, arr in zip(plan.names_i, outs):
        images[n] = cur[n].with_data(arr if cur[n].channel_axis else arr[0], grid)
    for n, arr in zip(plan.names_l, louts):
        images[n] = cur[n].with_data(arr, grid)
    new = cur.replace(images, metadata=plan.metadata)
    new.points = {k: plan.chain.forward(v) for k, v in cur.points.items()}
    new.boxes = {k: _map_boxes(plan.chain, v) for k, v in cur.boxes.items()}
    fills = plan.job.fills
    new.metadata["resampling"] = {
        "fill": {n: (f if cur[n].channel_axis else f[0]) for n, f in zip(plan.names_i, fills)},
        "seconds": round(time.perf_counter() - plan.started, 4),
        "lattice_error_voxels": round(plan.job.coords.lattice_error, 5),
    }
    info = plan.stage.resampling.record(index, new.metadata["resampling"]["fill"])
    new.history.extend({**s.record(), "resampling": info} for s in plan.stage.run)
    new.history.extend(f.record() for f, _ in plan.stage.fused)
    return new


def _map_boxes(chain, boxes: np.ndarray) -> np.ndarray:
    if boxes.size == 0:
        return boxes
    n = boxes.shape[1] // 2
    out = np.empty_like(boxes)
    bits = np.array(np.meshgrid(*([[0, 1]] * n), indexing="ij")).reshape(n, -1).T
    for i, b in enumerate(boxes):
        lo, hi = b[:n], b[n:]
        corners = np.where(bits == 0, lo, hi)
        mapped = chain.forward(corners)
        out[i, :n], out[i, n:] = mapped.min(0), mapped.max(0)
    return out


#: Voxels below which a step-wise intensity transform runs its torch operations on one thread.
SMALL_VOXELS = 1 << 18


@contextlib.contextmanager
def one_thread_if_small(voxels: int) -> Iterator[None]:
    """Run torch on one thread inside when ``voxels`` is below :data:`SMALL_VOXELS`.

    Small tensor operations finish in microseconds on one thread, but on a
    loaded machine every operation split over two threads waits for the
    other thread to be scheduled (``sqrt`` of 1,024 floats: 4.3 ms with two
    threads, 1.3 µs with one).
    """
    import torch

    before = torch.get_num_threads()
    if voxels >= SMALL_VOXELS or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def apply_intensity(cur: Sample, t: IntensityTransform) -> Sample:
    """Apply one intensity transform to the channels it targets (label maps untouched; small images on one thread)."""
    with one_thread_if_small(math.prod(cur.grid.shape)):
        return _apply_intensity(cur, t)


def _apply_intensity(cur: Sample, t: IntensityTransform) -> Sample:
    import torch

    images: dict[str, Image] = {}
    mask = None
    if t.mask is not None:
        if t.mask not in cur:
            raise ParameterError(f"{type(t).__name__}: mask '{t.mask}' is not in the sample (has {list(cur)})")
        mask = cur[t.mask].tensor != 0
    number = {key: g for g, key in enumerate(channel_layout(cur))}
    for name in t.targets(cur):
        img = cur[name]
        chosen = [k for k in range(img.channels) if applies_to(t, cur, name, k)]
        if not chosen:
            continue
        data = img.tensor.to(torch.float32)
        new = data.clone() if img.channel_axis else data
        for k in chosen:
            before = data[k] if img.channel_axis else data
            after = t.apply_tensor(before, img.grid, img.channel(k), channel=number[(name, k)])
            if mask is not None:
                after = torch.where(mask.to(after.device), after, before)
            if img.channel_axis:
                new[k] = after
            else:
                new = after
        images[name] = img.with_data(new if isinstance(img.data, torch.Tensor) else new.cpu().numpy())
    return cur.replace(images)
