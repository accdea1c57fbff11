"""A full disk during ``expand``: the job stops cleanly, nothing is half-written, a re-run completes it.

Two variants: a simulated full disk (the low-level image writer raises ENOSPC
after K files, in-process) and a real one (a small tmpfs, when this test may
mount one; skipped with the reason otherwise).
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from medaug.cli.main import main
from medaug.data import io
from medaug.data.io import writing
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.errors import JobError

from ._util import PIPE, assert_complete, digest, make_dataset, read_manifest, remount, temp_files, try_mount, umount

N_CASES, N_AUG = 4, 3
ALL_ITEMS = {(f"case{i:02d}", k) for i in range(N_CASES) for k in range(N_AUG)}


@pytest.fixture(scope="module")
def dataset_and_reference(tmp_path_factory) -> tuple[Path, Path]:
    """The dataset and an uninterrupted run of the job every test repeats."""
    root = tmp_path_factory.mktemp("diskfull")
    data = make_dataset(root / "in", n=N_CASES)
    run_expand(ExpandJob(str(data), str(root / "ref"), PIPE, n=N_AUG, seed=1), progress=False)
    return data, root / "ref"


def test_simulated_disk_full_stops_keeps_finished_items_and_resumes(dataset_and_reference, tmp_path, monkeypatch):
    data, ref = dataset_and_reference
    out = tmp_path / "out"
    real_write = writing._write
    calls = []

    def write_until_full(itk, target, compress, where):
        """The first 5 files are written; the 6th (item 3's label) gets half its bytes, then ENOSPC."""
        calls.append(Path(where).name)
        if len(calls) <= 5:
            return real_write(itk, target, compress, where)
        Path(target).write_bytes(b"\x1f\x8b" + b"\0" * 100)  # what a short write leaves under the temporary name
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(writing, "_write", write_until_full)
    job = ExpandJob(str(data), str(out), PIPE, n=N_AUG, seed=1)
    with pytest.raises(JobError) as info:
        run_expand(job, progress=False)
    message = str(info.value)
    failed = out / "labels" / "case00_aug002.nii.gz"
    assert info.value.path == str(failed)
    assert "the disk is full" in message and "job stopped" in message and "resumes" in message
    assert len(calls) == 6, "the job must stop at the full disk, not try every further case"
    # finished items kept (rows and manifest), the failed item left no file at all: not its temporary label,
    # not its final label, and not its image (written before the label, removed with it)
    assert sorted((out / ".medaug" / "rows").iterdir()) == sorted(
        (out / ".medaug" / "rows") / f"case00__{k:05d}.json" for k in (0, 1))
    assert len(read_manifest(out)) == 2
    assert not failed.exists() and not (out / "images" / "case00_aug002.nii.gz").exists()
    assert temp_files(out) == []
    assert_complete(out, {("case00", 0), ("case00", 1)})
    assert not (out / ".medaug" / "lock").exists()

    monkeypatch.setattr(writing, "_write", real_write)  # space is free again
    summary = run_expand(job, progress=False)
    assert summary["written"] == len(ALL_ITEMS) - 2 and summary["rows"] == len(ALL_ITEMS)
    assert digest(out) == digest(ref)
    assert_complete(out, ALL_ITEMS)


def test_real_full_tmpfs_stops_the_cli_and_a_rerun_completes(dataset_and_reference, tmp_path, capsys):
    data, ref = dataset_and_reference
    pages = sum(-(-p.stat().st_size // 4096) for p in ref.rglob("*") if p.is_file())  # incl. rows and job.json
    disk = tmp_path / "disk"
    why = try_mount(disk, f"size={pages // 2 * 4096}")
    if why:
        pytest.skip(f"real full-disk variant skipped: {why}")
    try:
        out = disk / "out"
        argv = ["expand", str(data), str(out), "--config", _config(tmp_path), "-n", str(N_AUG), "--seed", "1", "--quiet"]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 1
        last = err.strip().splitlines()[-1]
        assert last.startswith("medaug expand: error: ") and "the disk is full" in last and "resumes" in last
        assert str(out) in last  # names the file (every output lies in the output folder)
        rows = list((out / ".medaug" / "rows").glob("*.json"))
        assert 0 < len(rows) < len(ALL_ITEMS), "the tmpfs should fill up mid-way"
        assert temp_files(out) == [], "a temporary or half-written file was left behind"
        committed = [json.loads(r.read_text()) for r in rows]
        named = {r[c] for r in committed for c in ("output_image", "output_label")}
        on_disk = {str(p.relative_to(out)) for sub in ("images", "labels") for p in (out / sub).glob("*")}
        assert on_disk == named, "an item was left half-written (a file without its committed row)"
        for name in on_disk:
            io.load(out / name)  # every file present is whole
        if (out / "manifest.csv").exists():
            keys = {(r["case_id"], int(r["index"])) for r in committed}
            assert {(r["case_id"], int(r["index"])) for r in read_manifest(out)} <= keys

        remount(disk, f"size={pages * 3 * 4096}")  # space freed
        assert main(argv) == 0, capsys.readouterr().err
        assert digest(out) == digest(ref)
        assert_complete(out, ALL_ITEMS)
    finally:
        umount(disk)


def _config(tmp_path: Path) -> str:
    p = tmp_path / "pipe.json"
    p.write_text(json.dumps(PIPE))
    return str(p)
