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
* the output folder is probed (a file created and deleted) before any work, so
  a read-only folder or mount fails at once; a full disk stops the job (it is
  not skipped like a bad case): the failing file is never left half-written,
  finished items are kept and a re-run resumes;
* augmentation ``i`` of a case uses a seed derived from (seed, case id, i), so
  the output does not depend on the number of workers or on the scheduler:
  local processes or a Dask cluster give the same files.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import logging
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.identifiers import IDENTIFIER_COLUMNS, KEEP_IDENTIFIERS_WARNING
from ..errors import JobError, MedaugError, ParameterError
from .anonymize import anonymize_cases, warn_if_identifying, without_sources
from .cases import Case, case_seed, check_seed, load_case
from .discover import read_cases
from .jobs import (
    STATE_DIR,
    OutputLock,
    check_outside_inputs,
    check_writable,
    claim_job,
    dataset_fingerprint,
    inside_output,
    job_identity,
    naming,
    output_path,
    read_rows,
    state_dir,
    write_json_atomic,
)
from .progress import ItemProgress
from .workers import JobInterrupted, dask_stop_requested, reissue_warnings, run_task, stop_on_signals, worker_pool
from .writing import LAYOUTS, MANIFEST_COLUMNS, write_csv_atomic, write_item

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


def _grid_pipeline(params: dict[str, float], ndim: int, pipeline: Any) -> Any:
    """The grid point's affine (and flip) before ``pipeline``'s transforms, with its options and modality checks.

    The modality (or per-channel modalities) is kept so that the output range check is run and recorded as
    with random copies.  The modality rules were checked (and their warnings given) when the job started; the
    grid's own deterministic steps are the user's explicit values.
    """
    from ..engine.compose import Compose

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Compose([*_grid_transform(params, ndim), *pipeline.transforms], fill=pipeline.fill,
                       interpolation=pipeline.options.interpolation,
                       label_interpolation=pipeline.options.label_interpolation,
                       modality=pipeline.modality, channel_modalities=pipeline.channel_modalities,
                       on_violation="warn")


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
    #: copy the patient identifiers of DICOM inputs into the outputs (see :mod:`medaug.data.identifiers`)
    keep_identifiers: bool = False
    #: output layout: "same" (the input's: a Decathlon task stays MSD, an nnU-Net dataset stays nnU-Net, else
    #: medaug), "medaug" (images/, labels/), "msd" or "nnunet" (imagesTr/, labelsTr/, dataset.json)
    layout: str = "same"
    #: msd/nnunet layout: write into OUTPUT/DatasetXXX_Name (and name the dataset so in dataset.json)
    dataset_name: str | None = None
    #: also augment the test images a Decathlon dataset.json lists (they have no labels)
    include_test: bool = False
    #: "rgb": read colour pictures as R, G, B channels
    channels: str | None = None
    #: replace case ids by pseudonyms, leave source paths out (see :mod:`medaug.datasets.anonymize`)
    anonymize_ids: bool = False
    #: the salt file of the pseudonyms (default OUTPUT.id-salt) and the map back to case ids (OUTPUT.id-map.csv)
    id_salt: str | None = None
    id_map: str | None = None

    def identity(self) -> dict[str, Any]:
        """The options that define the output (:func:`run_expand` adds the resolved input and the dataset's digest)."""
        ident = {"pipeline": self.pipeline, "n": self.n, "grid": self.grid, "seed": self.seed,
                 "include_originals": self.include_originals}
        if self.keep_identifiers:  # only when set: job.json of older runs stays valid
            ident["keep_identifiers"] = True
        if self.layout not in ("same", "medaug"):  # likewise
            ident["layout"] = self.layout
        if self.dataset_name is not None:
            ident["dataset_name"] = self.dataset_name
        if self.include_test:
            ident["include_test"] = True
        if self.channels is not None:
            ident["channels"] = self.channels
        return ident

    def items_per_case(self) -> int:
        return (len(self.grid) or self.n) + (1 if self.include_originals else 0)


# ---------------------------------------------------------------- one case (runs in a worker)
def process_case(job: dict[str, Any], case: Case, on_item: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write every missing augmentation of one case; return ``{"case_id", "done", "error", "warnings"}``.

    A full disk (or exhausted quota) adds ``"disk_full": <the file that could not be written>``:
    the job stops on it instead of skipping the case (every following case would fail too).
    The warnings issued meanwhile travel back to the job's process (:func:`~.workers.run_task`).
    ``on_item`` is called after each item is committed (in this process only: a progress count).
    """
    return run_task(_process_case, job, case, on_item)


def _process_case(job: dict[str, Any], case: Case, on_item: Callable[[], None] | None = None) -> dict[str, Any]:
    from ..engine.compose import Compose
    from ..engine.config import pipeline_from_config

    out = Path(job["output"])
    indices = list(range(len(job["grid"]) or job["n"]))
    if job["include_originals"]:
        indices = [-1, *indices]
    todo = [i for i in indices if not output_path(out, STATE_DIR, "rows", _row_name(case.case_id, i)).exists()]
    if not todo:
        return {"case_id": case.case_id, "done": 0, "error": None}
    done, index = 0, None
    try:
        sample = load_case(case, channels=job.get("channels"))
        pipeline = pipeline_from_config(job["pipeline"]) if job["pipeline"] is not None else Compose([])
        dtypes = {name: img.dtype for name, img in sample.items()}
        identifiers = None
        if job.get("keep_identifiers"):
            from ..data.identifiers import read_identifiers

            identifiers = read_identifiers(case.image)
        for index in todo:
            if dask_stop_requested(job):  # the job was interrupted: leave after the item being written
                break
            seed = case_seed(job["seed"], case.case_id, index)
            if index == -1:
                result, name = sample, f"{case.case_id}_orig"
            elif job["grid"]:
                grid_pipe = _grid_pipeline(job["grid"][index], sample.ndim, pipeline)
                with naming(case.image):
                    result, name = grid_pipe(sample, seed=seed), None
            else:
                with naming(case.image):
                    result, name = pipeline(sample, seed=seed), None
            row = write_item(result, case, index, seed, out, dtypes, name=name, identifiers=identifiers,
                             layout=job["layout"])
            if job.get("anonymize_ids"):
                row = without_sources(row)
            try:
                write_json_atomic(output_path(out, STATE_DIR, "rows", _row_name(case.case_id, index)), row)
            except BaseException:  # not committed: leave no file of the item behind
                for rel in [row.get("output_image"), row.get("output_label"), *(row.get("output_channels") or [])]:
                    if rel:
                        (out / rel).unlink(missing_ok=True)
                raise
            done += 1
            if on_item is not None:
                on_item()
        return {"case_id": case.case_id, "done": done, "error": None}
    except Exception as exc:  # noqa: BLE001 - a bad case, a bug or an OS error: report it with the case, keep going
        error = str(exc) if isinstance(exc, MedaugError) else f"{type(exc).__name__}: {exc}"
        result = {"case_id": case.case_id, "done": done, "error": error}
        if _is_disk_full(exc):
            result["disk_full"] = _failed_file(exc) or f"item {index} of case {case.case_id}"
            result["error"] = f"disk full while writing {result['disk_full']} ({_os_reason(exc)})"
        return result


def _chain(exc: BaseException) -> Iterable[BaseException]:
    """``exc`` and its causes / contexts."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _is_disk_full(exc: BaseException) -> bool:
    """Whether an error comes from a full disk or an exhausted quota (ENOSPC / EDQUOT anywhere in its chain)."""
    return any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in _chain(exc))


def _failed_file(exc: BaseException) -> str | None:
    """The file an error names (a medaug error's path, else an OSError's file name)."""
    for e in _chain(exc):
        if isinstance(e, MedaugError) and e.path:
            return e.path
        if isinstance(e, OSError) and e.filename:
            return str(e.filename)
    return None


def _os_reason(exc: BaseException) -> str:
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return e.strerror or os.strerror(e.errno)
    return os.strerror(errno.ENOSPC)


def _row_name(case_id: str, index: int) -> str:
    return f"{case_id}__{index:05d}.json" if index >= 0 else f"{case_id}__orig.json"


# ---------------------------------------------------------------- the job
def _clean_partial_files(out: Path) -> int:
    """Remove temporary files left by an interrupted run (never a finished file)."""
    removed = 0
    for folder in (out / "images", out / "labels", out / "imagesTr", out / "labelsTr", out / "imagesTs",
                   out / STATE_DIR / "rows", out):
        if not folder.is_dir() or not inside_output(out, folder):  # a link out of OUTPUT: not ours to clean
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


def output_layout(layout: str, source: Path) -> str:
    """The layout to write: ``same`` becomes the input's (``msd``, ``nnunet`` or ``medaug``).

    Raises
    ------
    ParameterError
        An unknown layout.
    """
    if layout not in LAYOUTS:
        raise ParameterError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if layout != "same":
        return layout
    from .msd import is_msd
    from .nnunet import read_dataset_json

    info = read_dataset_json(source) if source.is_dir() else None
    if is_msd(info):
        return "msd"
    return "nnunet" if info is not None else "medaug"


def _prepare_layout(layout: str, dataset_name: str | None, out: Path, cases: list[Case]) -> Path:
    """Check the cases and options a layout needs; return the folder to write into."""
    from .nnunet import check_cases, output_folder

    if layout == "medaug":
        if dataset_name is not None:
            raise ParameterError("--dataset-name goes with --layout msd or --layout nnunet")
        return out
    if layout == "nnunet":
        check_cases(cases)  # labels present, equal channels
    return output_folder(out, dataset_name)


def _write_dataset_json(layout: str, out: Path, rows: list[dict[str, Any]], inp: Path, job: ExpandJob) -> None:
    from .nnunet import read_dataset_json, write_dataset_json

    if layout == "nnunet":
        write_dataset_json(out, rows, source=inp, pipeline=job.pipeline, dataset_name=job.dataset_name)
    elif layout == "msd":
        from .msd import write_msd_json

        info = read_dataset_json(inp) if inp.is_dir() else None
        channels = max((len(r.get("output_channels") or [1]) for r in rows), default=1)
        names = info.channel_names if info is not None else {str(k): f"channel_{k}" for k in range(channels)}
        write_msd_json(out, rows, source=info, channel_names=names, dataset_name=job.dataset_name)


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
    cases = read_cases(inp, include_test=job.include_test)
    check_seed(job.seed)
    if job.anonymize_ids and job.keep_identifiers:
        raise ParameterError("--keep-identifiers copies patient identifiers into the outputs, --anonymize-ids keeps "
                             "them out: choose one")
    pseudonyms = None
    if job.anonymize_ids:  # before any name is made: output files, rows, the layout's identifiers
        cases, pseudonyms = anonymize_cases(cases, out, salt=job.id_salt, id_map=job.id_map,
                                            dataset=inp if inp.is_dir() else inp.parent,
                                            resuming=(out / STATE_DIR / "job.json").exists())
    else:
        warn_if_identifying(cases, inp if inp.is_dir() else inp.parent)
    layout = output_layout(job.layout, inp)
    job = dataclasses.replace(job, layout=layout)  # the job's identity names the layout it writes
    out = _prepare_layout(layout, job.dataset_name, out, cases)  # OUTPUT/DatasetXXX_Name, labels present
    check_outside_inputs(out, [inp], writes=("images", "labels", "imagesTr", "labelsTr", "imagesTs"))
    if out.exists() and not out.is_dir():
        raise ParameterError("output exists and is not a folder", path=out)
    check_writable(out)  # before any work: a read-only folder or mount, a full disk
    if job.pipeline is not None:  # a bad config fails here, not once per case (its warnings come from the cases)
        from ..engine.config import pipeline_from_config

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipeline_from_config(job.pipeline)
    if job.keep_identifiers:
        warnings.warn(KEEP_IDENTIFIERS_WARNING, stacklevel=2)
    meta = state_dir(out)
    with OutputLock(meta / "lock"), stop_on_signals(meta / "lock", "medaug expand"):
        claim_job(out, job_identity(job.identity(), inp, pseudonyms),
                  dataset_fingerprint(cases, pseudonyms.digest if pseudonyms else None), "expansion")
        finished = len(read_rows(meta / "rows"))  # a damaged row stops the job here, before any work
        removed = _clean_partial_files(out)
        if removed:
            log.info("removed %d temporary file(s) of an interrupted run", removed)
        spec = {"output": str(out), "pipeline": job.pipeline, "n": job.n, "grid": job.grid, "seed": job.seed,
                "include_originals": job.include_originals, "keep_identifiers": job.keep_identifiers,
                "layout": layout, "channels": job.channels, "anonymize_ids": job.anonymize_ids}
        t0 = time.perf_counter()
        results: list[dict[str, Any]] = []
        interrupted = None
        try:
            bar = ItemProgress(len(cases) * job.items_per_case(), finished, prog="medaug expand", enabled=progress)
            results.extend(_dispatch(spec, cases, workers, scheduler, bar, on_result))
        except JobInterrupted as exc:  # the workers are gone: keep what is finished, as after a full disk
            interrupted = exc
        finally:
            bar.close()
        disk_full = next((r["disk_full"] for r in results if r.get("disk_full")), None)
        failed = [r for r in results if r["error"] and not r.get("disk_full")]
        rows = read_rows(meta / "rows")
        rows.sort(key=lambda r: (r["case_id"], int(r["index"])))
        columns = MANIFEST_COLUMNS + (IDENTIFIER_COLUMNS if job.keep_identifiers else [])
        try:
            write_csv_atomic(out / "manifest.csv", rows, columns)
            _write_dataset_json(layout, out, rows, inp, job)  # from the committed rows: exactly the finished files
        except OSError as exc:
            if not _is_disk_full(exc):
                raise
            disk_full = disk_full or str(out / "manifest.csv")  # the next run writes it
        if disk_full is None:
            _clean_partial_files(out)  # e.g. left by a Dask worker killed mid-write (its case was re-run)
        summary = {
            "cases": len(cases),
            "written": sum(r["done"] for r in results),
            "rows": len(rows),
            "failed": [(r["case_id"], r["error"]) for r in failed],
            "seconds": time.perf_counter() - t0,
            "output": str(out),
        }
    if interrupted is not None:
        raise JobInterrupted(interrupted.signum, f"interrupted by {signal.Signals(interrupted.signum).name}: the "
                             f"{len(rows)} item(s) finished so far are kept; run the same command again to resume")
    if disk_full is not None:
        raise JobError(
            f"the disk is full: this file could not be written, so the job stopped (every further case would fail "
            f"too); the {len(rows)} item(s) finished so far are kept. Free some space and run the same command "
            "again: it resumes with the missing items only",
            path=disk_full,
        )
    if failed:
        lines = "\n  ".join(f"{cid}: {err}" for cid, err in summary["failed"])
        raise JobError(f"{len(failed)} of {len(cases)} case(s) failed and were skipped:\n  {lines}", path=out)
    return summary


def _dispatch(spec, cases: list[Case], workers: int, scheduler, bar: ItemProgress, on_result) -> Iterable[dict[str, Any]]:
    """The results of every case, as they come; ``bar`` counts the items written (each at once, in this process)."""
    shown: set[str] = set()
    start = bar.count
    written = 0
    results = _results(spec, cases, workers, scheduler, bar.advance)
    try:
        for result in results:
            reissue_warnings(result, shown)
            if result["error"]:
                bar.write(f"error: case {result['case_id']}: {result['error']}")  # live; the summary lists it again
            if on_result:
                on_result(result)
            written += result["done"]
            bar.set(start + written)  # from workers: the items of a case at once
            yield result
            if result.get("disk_full"):
                break  # stop: no further case can be written (cases not started are cancelled)
    finally:
        results.close()  # type: ignore[attr-defined]


def _results(spec, cases: list[Case], workers: int, scheduler, on_item: Callable[[], None]) -> Iterable[dict[str, Any]]:
    if scheduler is not None:
        yield from _dask_results(spec, cases, scheduler)
        return
    if workers <= 1:
        for case in cases:
            yield process_case(spec, case, on_item)
        return
    from concurrent.futures import as_completed

    with worker_pool(workers) as pool:
        futures = {pool.submit(process_case, spec, c): c for c in cases}
        for fut in as_completed(futures):
            yield _outcome(fut, futures[fut])


def _dask_results(spec, cases: list[Case], scheduler) -> Iterable[dict[str, Any]]:
    """Results of a Dask cluster; interrupted, every task leaves after the item it is writing, then the job stops."""
    import secrets

    from distributed import Client, Event, as_completed, wait

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    spec = {**spec, "stop_event": f"medaug-stop-{secrets.token_hex(8)}"}
    futures: list[Any] = []
    try:
        futures = client.map(process_case, [spec] * len(cases), cases, pure=False, retries=2)
        case_of = {f.key: c for f, c in zip(futures, cases)}
        for fut in as_completed(futures):
            yield _outcome(fut, case_of[fut.key])
    except JobInterrupted:
        Event(spec["stop_event"], client=client).set()
        wait(futures)  # tasks not started end at once; running ones after their current item
        raise
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
        if client is not scheduler:
            client.close()


def _outcome(fut: Any, case: Case) -> dict[str, Any]:
    """A finished future's result; a task that raised (e.g. its worker died too often) is a failed case."""
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001
        return {"case_id": case.case_id, "done": 0, "error": f"{type(exc).__name__}: {exc}"}
