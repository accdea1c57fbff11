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
import signal
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.sample import Sample
from ..datasets.cases import Case, load_case
from ..datasets.discover import read_cases
from ..datasets.progress import ItemProgress
from ..datasets.workers import (
    JobInterrupted,
    native_callbacks,
    reissue_warnings,
    run_task,
    stop_on_signals,
    worker_pool,
)
from ..errors import JobError, MedaugError, ParameterError, plural

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
    #: replace case ids by pseudonyms (see :mod:`medaug.datasets.anonymize`); salt file and map back to case ids
    anonymize_ids: bool = False
    id_salt: str | None = None
    id_map: str | None = None
    #: the channel of multi-channel images that drives the registration (one field moves every channel)
    channel: int = 0

    def identity(self) -> dict[str, Any]:
        """The options that define the output (:func:`run_learn` adds the resolved input, reference and dataset digest)."""
        d = asdict(self)
        for key in ("input", "output", "reference", "anonymize_ids", "id_salt", "id_map"):
            d.pop(key)
        if d["channel"] == 0:  # only when set: job.json of older runs stays valid
            d.pop("channel")
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
    for c in ids:
        if _PAIR_SEPARATOR in c:  # x__to__y onto z and x onto y__to__z would both be x__to__y__to__z
            raise ParameterError(
                f"the case id {c!r} holds {_PAIR_SEPARATOR!r}, which separates the two case ids in the name of a "
                "learned field, so two pairs could get one name; rename the case (or use --anonymize-ids)"
            )
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


_PAIR_SEPARATOR = "__to__"


def _pair_name(fixed: str, moving: str) -> str:
    return f"{moving}{_PAIR_SEPARATOR}{fixed}"


# ---------------------------------------------------------------- one pair (runs in a worker)
def _one_channel(sample: Sample, k: int) -> Sample:
    """The sample with channel ``k`` of a multi-channel image as its image (registration needs one channel)."""
    image = sample["image"]
    if not image.channel_axis:
        return sample
    if not 0 <= k < image.channels:
        raise ParameterError(f"--channel {k} does not exist: the image has {plural(image.channels, 'channel')}", path=image.path)
    return sample.replace({"image": image.channel(k)})


def process_pair(spec: dict[str, Any], fixed: Case, moving: Case) -> dict[str, Any]:
    """Register one pair, write its field, commit its row; return ``{"pair", "error", "done", "warnings"}``."""
    return run_task(_process_pair, spec, fixed, moving)


def _process_pair(spec: dict[str, Any], fixed: Case, moving: Case) -> dict[str, Any]:
    from ..data.field import save_field
    from ..datasets.jobs import naming, output_path, write_json_atomic
    from .register import register

    out = Path(spec["output"])
    name = _pair_name(fixed.case_id, moving.case_id)
    row_file = output_path(out, ".medaug", "rows", f"{name}.json")
    if row_file.exists():
        return {"pair": name, "error": None, "done": 0}
    try:
        f = load_case(fixed)
        m = load_case(moving)
        f, m = (_one_channel(x, spec.get("channel", 0)) for x in (f, m))
        with naming(moving.image, f"registered onto {fixed.image}"), native_callbacks():
            result = register(f, m, metric=spec["metric"], deformable=spec["deformable"],
                              time_limit=spec["time_limit"], field_size=spec["field_size"], seed=spec["seed"])
        rel = f"fields/{name}.nii.gz"
        (out / "fields").mkdir(parents=True, exist_ok=True)
        save_field(result.deformable, output_path(out, "fields", f"{name}.nii.gz"))
        rep = result.report.to_dict()
        row = {"pair": name, "fixed": fixed.case_id, "moving": moving.case_id, "field": rel,
               **{k: rep[k] for k in MANIFEST_COLUMNS if k in rep}, "affine": json.dumps(result.affine.round(8).tolist())}
        write_json_atomic(row_file, row)
    except MedaugError as exc:
        return {"pair": name, "error": str(exc), "done": 0}
    except Exception as exc:  # noqa: BLE001 - report it with the pair, keep going
        return {"pair": name, "error": f"{type(exc).__name__}: {exc}", "done": 0}
    if not result.report.usable:
        warnings.warn(f"pair {name}: the field folds ({result.report.folds} voxels with a Jacobian <= 0); it is kept "
                      "but marked unusable, so RandomLearnedDeformation skips it", stacklevel=2)
    return {"pair": name, "error": None, "done": 1, "summary": result.report.summary()}


# ---------------------------------------------------------------- the job
def run_learn(
    job: LearnJob,
    *,
    workers: int = 1,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a learn-deformations job; return a summary. Raises :class:`JobError` when pairs failed."""
    from ..datasets.anonymize import anonymize_cases, warn_if_identifying
    from ..datasets.jobs import (
        OutputLock,
        check_outside_inputs,
        check_writable,
        claim_job,
        dataset_fingerprint,
        job_identity,
        read_rows,
        state_dir,
    )
    from ..datasets.writing import write_csv_atomic

    inp, out = Path(job.input).resolve(), Path(job.output).resolve()
    cases = read_cases(inp)
    reference = _reference_id(cases, job.reference) if job.reference is not None else None
    pseudonyms = None
    if job.anonymize_ids:  # before any name is made: fields, rows, the manifest's pairs
        cases, pseudonyms = anonymize_cases(cases, out, salt=job.id_salt, id_map=job.id_map,
                                            dataset=inp if inp.is_dir() else inp.parent,
                                            resuming=(out / ".medaug" / "job.json").exists())
        reference = pseudonyms(reference) if reference is not None else None
    else:
        warn_if_identifying(cases, inp if inp.is_dir() else inp.parent)
    by_id = {c.case_id: c for c in cases}
    check_outside_inputs(out, [inp], writes=("fields",))
    if out.exists() and not out.is_dir():
        raise ParameterError("output exists and is not a folder", path=out)
    out.mkdir(parents=True, exist_ok=True)
    check_writable(out)
    from ..datasets.jobs import naming

    with naming(inp):
        todo = plan_pairs(cases, reference, job.pairs, job.seed)
    meta = state_dir(out)
    with OutputLock(meta / "lock"), stop_on_signals(meta / "lock", "medaug learn-deformations"):
        claim_job(out, job_identity({"reference": reference, **job.identity()}, inp, pseudonyms),
                  dataset_fingerprint(cases, pseudonyms.digest if pseudonyms else None), "learn-deformations")
        names = {_pair_name(a, b) for a, b in todo}
        finished = sum(r.get("pair") in names for r in read_rows(meta / "rows"))  # a damaged row stops the job here
        _remove_partial_fields(out)
        spec = asdict(job)
        spec["output"] = str(out)
        t0 = time.perf_counter()
        results: list[dict[str, Any]] = []
        interrupted = None
        bar = ItemProgress(len(todo), finished, unit="fields", prog="medaug learn-deformations", enabled=progress)
        try:
            results.extend(_dispatch(spec, [(by_id[a], by_id[b]) for a, b in todo], workers, bar, on_result))
        except JobInterrupted as exc:  # the workers are gone: keep what is finished
            interrupted = exc
            _remove_partial_fields(out)
        finally:
            bar.close()
        failed = [r for r in results if r["error"]]
        rows_dir = meta / "rows"
        rows = read_rows(rows_dir)
        write_csv_atomic(out / "manifest.csv", rows, MANIFEST_COLUMNS)
        summary = {
            "pairs": len(todo),
            "registered": sum(r["done"] for r in results),
            "rows": len(rows),
            "usable": sum(1 for r in rows if r.get("usable") in (True, "True")),
            "failed": [(r["pair"], r["error"]) for r in failed],
            "seconds": time.perf_counter() - t0,
        }
    if interrupted is not None:
        raise JobInterrupted(interrupted.signum, f"interrupted by {signal.Signals(interrupted.signum).name}: the "
                             f"{len(rows)} field(s) finished so far are kept; run the same command again to resume")
    if failed:
        lines = "\n  ".join(f"{p}: {e}" for p, e in summary["failed"])
        raise JobError(f"{len(failed)} of {len(todo)} pair(s) failed:\n  {lines}", path=out)
    return summary


def _remove_partial_fields(out: Path) -> None:
    """Remove fields half-written by an interrupted run (temporary names; never a finished field)."""
    from ..datasets.jobs import inside_output

    fields = out / "fields"
    for tmp in list(fields.glob(".*tmp*")) if fields.is_dir() and inside_output(out, fields) else []:
        tmp.unlink(missing_ok=True)


def _dispatch(spec: dict[str, Any], pairs: list[tuple[Case, Case]], workers: int, bar: ItemProgress,
              on_result: Callable[[dict[str, Any]], None] | None) -> Iterable[dict[str, Any]]:
    shown: set[str] = set()
    for result in _results(spec, pairs, workers):
        reissue_warnings(result, shown)
        if result["error"]:
            log.error("pair %s failed: %s", result["pair"], result["error"])
            bar.write(f"error: pair {result['pair']}: {result['error']}")
        elif result.get("summary"):
            bar.write(f"{result['pair']}: {result['summary']}")
        if on_result:
            on_result(result)
        bar.advance(result["done"])
        yield result


def _results(spec: dict[str, Any], pairs: list[tuple[Case, Case]], workers: int) -> Iterable[dict[str, Any]]:
    if workers <= 1:
        for f, m in pairs:
            yield process_pair(spec, f, m)
        return
    from concurrent.futures import as_completed

    with worker_pool(workers) as pool:
        futures = {pool.submit(process_pair, spec, f, m): _pair_name(f.case_id, m.case_id) for f, m in pairs}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker process: the pair failed, the job goes on
                yield {"pair": futures[fut], "error": f"{type(exc).__name__}: {exc}", "done": 0}
