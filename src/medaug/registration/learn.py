"""The ``medaug learn-deformations`` job: register the cases of a dataset, store the fields.

With a reference case, every other case is registered onto it (fields on the
reference grid: the shape of each patient relative to one anatomy; fields can
then be mixed).  Without one, ``pairs`` random ordered pairs (fixed, moving)
are registered (each field on its own fixed grid).

Output folder::

    OUT/fields/<moving>__to__<fixed>.nii.gz   deformable part b (mm, ITK convention)
    OUT/manifest.csv                           one row per pair: report, affine, usable
    OUT/.medaug/job.json, rows/, lock          identity, committed pairs, lock

Like ``medaug expand``: inputs are never touched, each field is written
atomically and its row committed after it, a re-run resumes (finished pairs
are skipped), a failed pair is logged and listed and the job exits non-zero
at the end, and two jobs cannot write one folder at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.cases import Case, load_case
from ..datasets.discover import read_cases
from ..errors import JobError, MedaugError, ParameterError

__all__ = ["LearnJob", "plan_pairs", "run_learn", "MANIFEST_COLUMNS"]

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = [
    "pair", "fixed", "moving", "field", "usable", "folds", "jacobian_min", "jacobian_max", "max_displacement_mm",
    "ncc_before", "ncc_after_affine", "ncc_after", "metric", "metric_before", "metric_after", "method",
    "seconds", "stopped_early", "affine",
]


@dataclass
class LearnJob:
    """Everything that defines a learn-deformations job (saved as ``OUT/.medaug/job.json``)."""

    input: str
    output: str
    reference: str | None = None
    pairs: int | None = None
    seed: int = 0
    time_limit: float = 300.0
    metric: str = "auto"
    deformable: str = "auto"
    field_size: int = 96

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("output")
        return d


def plan_pairs(cases: list[Case], reference: str | None, pairs: int | None, seed: int) -> list[tuple[str, str]]:
    """The (fixed, moving) case ids to register, in a stable order.

    Parameters
    ----------
    cases : list of Case
    reference : str, optional
        A case id, or the path of a case's image: every other case is
        registered onto it (``pairs`` then picks that many of them at random).
    pairs : int, optional
        Without a reference: the number of random ordered pairs (default: two
        per case, at most all n(n-1) pairs).
    seed : int
        Seed of the random choice.
    """
    ids = [c.case_id for c in cases]
    if len(ids) < 2:
        raise ParameterError("learning deformations needs at least two cases")
    rng = np.random.default_rng(seed)
    if reference is not None:
        ref = _reference_id(cases, reference)
        todo = [(ref, c) for c in ids if c != ref]
        if pairs is not None and pairs < len(todo):
            keep = sorted(rng.choice(len(todo), size=int(pairs), replace=False).tolist())
            todo = [todo[i] for i in keep]
        return todo
    every = [(a, b) for a in ids for b in ids if a != b]
    k = min(len(every), 2 * len(ids) if pairs is None else int(pairs))
    if k <= 0:
        raise ParameterError(f"--pairs must be >= 1, got {pairs}")
    keep = sorted(rng.choice(len(every), size=k, replace=False).tolist())
    return [every[i] for i in keep]


def _reference_id(cases: list[Case], reference: str) -> str:
    for c in cases:
        if reference == c.case_id:
            return c.case_id
    p = Path(reference).resolve()
    for c in cases:
        if c.image.resolve() == p:
            return c.case_id
    from ..errors import did_you_mean

    raise ParameterError(
        f"--reference '{reference}' is neither a case id nor an image of the dataset"
        f"{did_you_mean(reference, [c.case_id for c in cases])}"
    )


def _pair_name(fixed: str, moving: str) -> str:
    return f"{moving}__to__{fixed}"


# ---------------------------------------------------------------- one pair (runs in a worker)
def process_pair(spec: dict[str, Any], fixed: Case, moving: Case) -> dict[str, Any]:
    """Register one pair, write its field, commit its row; return ``{"pair", "error"}``."""
    from ..data.field import save_field
    from ..datasets.jobs import output_path, write_json_atomic
    from .register import register

    out = Path(spec["output"])
    name = _pair_name(fixed.case_id, moving.case_id)
    row_file = output_path(out, ".medaug", "rows", f"{name}.json")
    if row_file.exists():
        return {"pair": name, "error": None, "done": 0}
    try:
        f = load_case(fixed)
        m = load_case(moving)
        result = register(f, m, metric=spec["metric"], deformable=spec["deformable"], time_limit=spec["time_limit"],
                          field_size=spec["field_size"], seed=spec["seed"])
        rel = f"fields/{name}.nii.gz"
        (out / "fields").mkdir(parents=True, exist_ok=True)
        save_field(result.deformable, output_path(out, "fields", f"{name}.nii.gz"))
        rep = result.report.to_dict()
        row = {"pair": name, "fixed": fixed.case_id, "moving": moving.case_id, "field": rel,
               **{k: rep[k] for k in MANIFEST_COLUMNS if k in rep}, "affine": json.dumps(result.affine.round(8).tolist())}
        write_json_atomic(row_file, row)
        if not result.report.usable:
            log.warning("pair %s: %d folded voxels; the field is kept but marked unusable", name, result.report.folds)
        return {"pair": name, "error": None, "done": 1, "summary": result.report.summary()}
    except MedaugError as exc:
        return {"pair": name, "error": str(exc), "done": 0}
    except Exception as exc:  # noqa: BLE001 - report it with the pair, keep going
        return {"pair": name, "error": f"{type(exc).__name__}: {exc}", "done": 0}


# ---------------------------------------------------------------- the job
def run_learn(
    job: LearnJob,
    *,
    workers: int = 1,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a learn-deformations job; return a summary. Raises :class:`JobError` when pairs failed."""
    from ..datasets.jobs import OutputLock, check_writable, write_json_atomic
    from ..datasets.writing import write_csv_atomic

    inp, out = Path(job.input).resolve(), Path(job.output).resolve()
    cases = read_cases(inp)
    by_id = {c.case_id: c for c in cases}
    in_root = inp if inp.is_dir() else inp.parent
    if out == in_root or (inp.is_dir() and out.is_relative_to(in_root)):
        raise ParameterError(f"the output folder {out} is inside the input {in_root}; medaug never writes into its input")
    if out.exists() and not out.is_dir():
        raise ParameterError("output exists and is not a folder", path=out)
    out.mkdir(parents=True, exist_ok=True)
    check_writable(out)
    todo = plan_pairs(cases, job.reference, job.pairs, job.seed)
    meta = out / ".medaug"
    with OutputLock(meta / "lock"):
        job_file = meta / "job.json"
        if job_file.exists():
            if json.loads(job_file.read_text(encoding="utf-8")) != job.identity():
                raise JobError("output folder holds a different learn-deformations job; use a new output folder", path=out)
        else:
            write_json_atomic(job_file, job.identity())
        for tmp in list((out / "fields").glob(".*tmp*")) if (out / "fields").is_dir() else []:
            tmp.unlink(missing_ok=True)  # a field half-written by an interrupted run
        spec = asdict(job)
        spec["output"] = str(out)
        t0 = time.perf_counter()
        results = list(_dispatch(spec, [(by_id[a], by_id[b]) for a, b in todo], workers, progress, on_result))
        failed = [r for r in results if r["error"]]
        rows_dir = meta / "rows"
        rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(rows_dir.glob("*.json"))] if rows_dir.is_dir() else []
        write_csv_atomic(out / "manifest.csv", rows, MANIFEST_COLUMNS)
        summary = {
            "pairs": len(todo),
            "registered": sum(r["done"] for r in results),
            "rows": len(rows),
            "usable": sum(1 for r in rows if r.get("usable") in (True, "True")),
            "failed": [(r["pair"], r["error"]) for r in failed],
            "seconds": time.perf_counter() - t0,
        }
    if failed:
        lines = "\n  ".join(f"{p}: {e}" for p, e in summary["failed"])
        raise JobError(f"{len(failed)} of {len(todo)} pair(s) failed:\n  {lines}", path=out)
    return summary


def _dispatch(spec: dict[str, Any], pairs: list[tuple[Case, Case]], workers: int, progress: bool,
              on_result: Callable[[dict[str, Any]], None] | None) -> Iterable[dict[str, Any]]:
    from tqdm import tqdm

    bar = tqdm(total=len(pairs), unit="pair", disable=not progress, dynamic_ncols=True, desc="register")
    try:
        for result in _results(spec, pairs, workers):
            if result["error"]:
                log.error("pair %s failed: %s", result["pair"], result["error"])
                bar.write(f"error: pair {result['pair']}: {result['error']}")
            elif result.get("summary"):
                bar.write(f"{result['pair']}: {result['summary']}")
            if on_result:
                on_result(result)
            bar.update(1)
            yield result
    finally:
        bar.close()


def _results(spec: dict[str, Any], pairs: list[tuple[Case, Case]], workers: int) -> Iterable[dict[str, Any]]:
    if workers <= 1:
        for f, m in pairs:
            yield process_pair(spec, f, m)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ..datasets.jobs import worker_init

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init) as pool:
        futures = {pool.submit(process_pair, spec, f, m): _pair_name(f.case_id, m.case_id) for f, m in pairs}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker process: the pair failed, the job goes on
                yield {"pair": futures[fut], "error": f"{type(exc).__name__}: {exc}", "done": 0}
