"""Offline expansion of a dataset to disk: N random copies or a parameter grid per case.

The job is robust by construction:

* it never writes inside its input, and refuses an output folder holding a
  different job or locked by a running one (the lock names its PID and host);
* every file is written atomically (temporary name, then rename), and an item
  counts as done only when its manifest row is committed (also atomically)
  under ``OUTPUT/.medaug/rows/``; a re-run after an interruption, even
  ``kill -9``, redoes only the missing items, with the same seeds, so nothing is
  lost or duplicated;
* a case that cannot be read is logged, skipped and reported, and the job
  exits non-zero at the end;
* augmentation ``i`` of a case uses a seed derived from (seed, case id, i), so
  the output does not depend on the number of workers or on the scheduler:
  local processes or a Dask cluster give the same files.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import JobError, MedaugError, ParameterError
from .cases import Case, case_seed, load_case, read_cases
from .writing import MANIFEST_COLUMNS, write_augmented, write_csv_atomic

__all__ = ["ExpandJob", "parse_grid", "run_expand", "GRID_KEYS"]

log = logging.getLogger("medaug.expand")

#: Grid keys and what they set on the deterministic Affine (3D: rotation about the SI axis for ``rotation``).
GRID_KEYS = ("rotation", "rotation_x", "rotation_y", "rotation_z", "scale", "scale_x", "scale_y", "scale_z",
             "translation_x", "translation_y", "translation_z", "flip")


def parse_grid(spec: str) -> list[dict[str, float]]:
    """Parse ``"scale=0.9:1.1:3,rotation=-10:10:3"`` into the list of parameter combinations.

    Each item is ``key=start:stop:count`` (evenly spaced, end points included) or
    ``key=v1|v2|v3``.  Keys: see :data:`GRID_KEYS` (degrees, mm, factors; ``flip`` 0/1 left-right).
    """
    axes: list[tuple[str, list[float]]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "=" not in part:
            raise ParameterError(f"--grid item '{part}' must look like key=start:stop:count or key=a|b|c")
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in GRID_KEYS:
            from ..errors import did_you_mean

            raise ParameterError(f"--grid key '{key}' unknown{did_you_mean(key, GRID_KEYS)}; allowed: {', '.join(GRID_KEYS)}")
        try:
            if "|" in value:
                values = [float(v) for v in value.split("|")]
            else:
                start, stop, count = value.split(":")
                n = int(count)
                if n < 1:
                    raise ValueError
                values = np.linspace(float(start), float(stop), n).tolist()
        except ValueError:
            raise ParameterError(f"--grid item '{part}': expected start:stop:count (count >= 1) or a|b|c") from None
        axes.append((key, values))
    if not axes:
        raise ParameterError("--grid is empty")
    return [dict(zip([k for k, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


def _grid_transform(params: dict[str, float], ndim: int):
    from ..spatial.affine import Affine
    from ..spatial.flip import Flip

    rot = [params.get("rotation_x", 0.0), params.get("rotation_y", 0.0), params.get("rotation_z", params.get("rotation", 0.0))]
    scale = [params.get(f"scale_{a}", params.get("scale", 1.0)) for a in "xyz"]
    trans = [params.get(f"translation_{a}", 0.0) for a in "xyz"]
    if ndim == 2:
        rot, scale, trans = rot[2], scale[:2], trans[:2]
    steps: list[Any] = [Affine(rotation=rot, scale=scale, translation=trans)]
    if params.get("flip"):
        steps.append(Flip(axes=["LR"]))
    return steps


@dataclass
class ExpandJob:
    """Everything that defines an expansion job (saved as ``OUTPUT/.medaug/job.json``)."""

    input: str
    output: str
    pipeline: Any  # config form (list or dict), or None with a grid
    n: int = 0
    grid: list[dict[str, float]] = field(default_factory=list)
    seed: int = 0
    include_originals: bool = False

    def identity(self) -> dict[str, Any]:
        return {"input": self.input, "pipeline": self.pipeline, "n": self.n, "grid": self.grid, "seed": self.seed,
                "include_originals": self.include_originals}

    def items_per_case(self) -> int:
        return (len(self.grid) or self.n) + (1 if self.include_originals else 0)


# ---------------------------------------------------------------- one case (runs in a worker)
def process_case(job: dict[str, Any], case: Case) -> dict[str, Any]:
    """Write every missing augmentation of one case; return ``{"case_id", "done", "error"}``."""
    from ..engine.compose import Compose
    from ..engine.config import pipeline_from_config

    out = Path(job["output"])
    rows_dir = out / ".medaug" / "rows"
    indices = list(range(len(job["grid"]) or job["n"]))
    if job["include_originals"]:
        indices = [-1, *indices]
    todo = [i for i in indices if not (rows_dir / _row_name(case.case_id, i)).exists()]
    if not todo:
        return {"case_id": case.case_id, "done": 0, "error": None}
    try:
        sample = load_case(case)
        pipeline = pipeline_from_config(job["pipeline"]) if job["pipeline"] is not None else Compose([])
        dtypes = {name: img.dtype for name, img in sample.items()}
        for index in todo:
            seed = case_seed(job["seed"], case.case_id, index)
            if index == -1:
                result, name = sample, f"{case.case_id}_orig"
            elif job["grid"]:
                steps = _grid_transform(job["grid"][index], sample.ndim)
                grid_pipe = Compose([*steps, *pipeline.transforms], fill=pipeline.fill,
                                    interpolation=pipeline.options.interpolation,
                                    label_interpolation=pipeline.options.label_interpolation)
                result, name = grid_pipe(sample, seed=seed), None
            else:
                result, name = pipeline(sample, seed=seed), None
            row = write_augmented(result, case, index, seed, out, dtypes, name=name)
            _write_json_atomic(rows_dir / _row_name(case.case_id, index), row)
        return {"case_id": case.case_id, "done": len(todo), "error": None}
    except MedaugError as exc:
        return {"case_id": case.case_id, "done": 0, "error": str(exc)}
    except Exception as exc:  # a bug or an OS error: report it with the case, keep going
        return {"case_id": case.case_id, "done": 0, "error": f"{type(exc).__name__}: {exc}"}


def _row_name(case_id: str, index: int) -> str:
    return f"{case_id}__{index:05d}.json" if index >= 0 else f"{case_id}__orig.json"


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------- the job
class _Lock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> _Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    holder = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    holder = {}
                if holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1))):
                    self.path.unlink(missing_ok=True)  # a stale lock from a killed run on this host
                    continue
                raise JobError(
                    f"output folder is in use by another medaug process (PID {holder.get('pid')} on host "
                    f"{holder.get('host')}); wait for it or remove {self.path} if that process is gone",
                    path=self.path.parent.parent,
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            return self
        raise JobError("could not take the output lock", path=self.path)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_partial_files(out: Path) -> int:
    """Remove temporary files left by an interrupted run (never a finished file)."""
    removed = 0
    for folder in (out / "images", out / "labels", out / ".medaug" / "rows", out):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") and ".tmp" in p.name and p.is_file():
                p.unlink(missing_ok=True)
                removed += 1
            elif p.name.startswith(".") and ".tmp" in p.name and p.is_dir():
                import shutil

                shutil.rmtree(p, ignore_errors=True)
                removed += 1
    return removed


def run_expand(
    job: ExpandJob,
    *,
    workers: int = 1,
    scheduler: str | Any | None = None,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) an expansion job; return a summary. Raises :class:`JobError` when cases failed."""
    inp, out = Path(job.input).resolve(), Path(job.output).resolve()
    cases = read_cases(inp)
    in_root = inp if inp.is_dir() else inp.parent
    if out == in_root or out.is_relative_to(in_root) and inp.is_dir():
        raise ParameterError(f"the output folder {out} is inside the input {in_root}; medaug never writes into its input")
    if out.exists() and not out.is_dir():
        raise ParameterError("output exists and is not a folder", path=out)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise JobError("output folder is not writable", path=out)
    meta = out / ".medaug"
    with _Lock(meta / "lock"):
        job_file = meta / "job.json"
        if job_file.exists():
            previous = json.loads(job_file.read_text(encoding="utf-8"))
            if previous != job.identity():
                raise JobError(
                    "output folder holds a different expansion job (other input, pipeline, -n/--grid or seed); "
                    "use a new output folder", path=out,
                )
        else:
            _write_json_atomic(job_file, job.identity())
        removed = _clean_partial_files(out)
        if removed:
            log.info("removed %d temporary file(s) of an interrupted run", removed)
        spec = {"output": str(out), "pipeline": job.pipeline, "n": job.n, "grid": job.grid, "seed": job.seed,
                "include_originals": job.include_originals}
        t0 = time.perf_counter()
        results = list(_dispatch(spec, cases, workers, scheduler, progress, on_result))
        failed = [r for r in results if r["error"]]
        rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((meta / "rows").glob("*.json"))] if (meta / "rows").exists() else []
        rows.sort(key=lambda r: (r["case_id"], int(r["index"])))
        write_csv_atomic(out / "manifest.csv", rows, MANIFEST_COLUMNS)
        summary = {
            "cases": len(cases),
            "written": sum(r["done"] for r in results),
            "rows": len(rows),
            "failed": [(r["case_id"], r["error"]) for r in failed],
            "seconds": time.perf_counter() - t0,
        }
    if failed:
        lines = "\n  ".join(f"{cid}: {err}" for cid, err in summary["failed"])
        raise JobError(f"{len(failed)} of {len(cases)} case(s) failed and were skipped:\n  {lines}", path=out)
    return summary


def _dispatch(spec, cases: list[Case], workers: int, scheduler, progress: bool, on_result) -> Iterable[dict[str, Any]]:
    from tqdm import tqdm

    bar = tqdm(total=len(cases), unit="case", disable=not progress, dynamic_ncols=True, desc="expand")
    try:
        for result in _results(spec, cases, workers, scheduler):
            if result["error"]:
                log.error("case %s failed: %s", result["case_id"], result["error"])
                bar.write(f"error: case {result['case_id']}: {result['error']}")
            if on_result:
                on_result(result)
            bar.update(1)
            yield result
    finally:
        bar.close()


def _results(spec, cases: list[Case], workers: int, scheduler) -> Iterable[dict[str, Any]]:
    if scheduler is not None:
        from distributed import Client, as_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = client.map(process_case, [spec] * len(cases), cases, pure=False, retries=2)
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            if client is not scheduler:
                client.close()
        return
    if workers <= 1:
        for case in cases:
            yield process_case(spec, case)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
        futures = [pool.submit(process_case, spec, c) for c in cases]
        for fut in as_completed(futures):
            yield fut.result()


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
