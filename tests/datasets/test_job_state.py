"""What a job keeps in ``OUTPUT/.medaug``: who it is (resumed only by the same job on the same data), and its damage.

A job is the resolved input, the options and the content of the dataset
(every file's path, size and modification time): the same dataset resumes
however its path is typed, a changed one is refused naming what changed.  A
damaged lock, row or ``job.json`` is named, with the way to recover.
"""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest

import medaug
from medaug.datasets import jobs
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.errors import JobError
from medaug.registration.learn import LearnJob, run_learn

from ..faults._util import PIPE, make_dataset


@pytest.fixture
def data(tmp_path):
    return make_dataset(tmp_path / "data", n=2, size=16)


def _expand(inp, out, **kw) -> dict:
    return run_expand(ExpandJob(str(inp), str(out), PIPE, n=1, seed=3, **kw), progress=False)


def test_the_same_dataset_resumes_however_it_is_typed(data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _expand(data, out)
    monkeypatch.chdir(tmp_path)
    os.symlink(data, tmp_path / "link")
    for typed in ("./data", "data/", "link", str(data)):
        assert _expand(typed, "out")["written"] == 0


def test_another_dataset_under_the_same_typed_path_is_refused(data, tmp_path, monkeypatch):
    make_dataset(tmp_path / "elsewhere" / "data", n=2, size=16)
    monkeypatch.chdir(tmp_path)
    _expand("data", tmp_path / "out")
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(JobError, match=r"different expansion job \(input: .*/data then, .*/elsewhere/data now\)"):
        _expand("data", tmp_path / "out")


def test_a_changed_dataset_is_refused_naming_what_changed(data, tmp_path):
    out = tmp_path / "out"
    _expand(data, out)
    img = data / "images" / "case01.nii.gz"
    medaug.save(medaug.load(img).with_data(medaug.load(img).array * 0), img)  # same path, new content
    shutil.copy(data / "images" / "case00.nii.gz", data / "images" / "case02.nii.gz")
    with pytest.raises(JobError) as info:
        _expand(data, out)
    text = str(info.value)
    assert text.startswith(f"{out}: the input dataset changed since this expansion job started (")
    assert "1 case(s) with other files, sizes or modification times: case01 (image)" in text
    assert "1 case(s) added: case02" in text and "restore the dataset, or use a new output folder" in text


def test_learn_deformations_resumes_the_same_data_and_refuses_other_data(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for i in range(2):
        medaug.save(medaug.shepp_logan_2d(24, seed=i).image, data / "images" / f"c{i}.nii.gz")
    monkeypatch.chdir(tmp_path)
    run_learn(LearnJob("data", "out", reference="c0"), progress=False)
    assert run_learn(LearnJob(str(data), "out", reference=str(data / "images" / "c0.nii.gz")),
                     progress=False)["registered"] == 0  # the reference as a case id or as its image: one job
    medaug.save(medaug.shepp_logan_2d(24, seed=5).image, data / "images" / "c1.nii.gz")
    with pytest.raises(JobError, match=r"input dataset changed .* c1 \(image\)"):
        run_learn(LearnJob("./data", "out", reference="c0"), progress=False)


# ---------------------------------------------------------------- damaged state
@pytest.mark.parametrize("content", ["abc", "null", "1e30", "", '{"pid": null, "host": "h"}', '{"pid": 1e30}',
                                     '{"pid": "abc", "host": "h"}', '{"pid": -5, "host": "h"}', '{"pid": true}'])
def test_a_damaged_lock_is_named_with_the_way_out(data, tmp_path, monkeypatch, content):
    monkeypatch.setattr(jobs, "LOCK_SETTLE", 0.05)
    out = tmp_path / "out"
    (out / ".medaug").mkdir(parents=True)
    lock = out / ".medaug" / "lock"
    lock.write_text(content.replace('"h"', json.dumps(socket.gethostname())))
    with pytest.raises(JobError) as info:
        _expand(data, out)
    assert info.value.path == str(lock)
    assert "the lock file is damaged" in str(info.value) and "remove the lock file" in str(info.value)


def test_a_damaged_row_or_job_description_is_named_with_the_way_out(data, tmp_path):
    out = tmp_path / "out"
    _expand(data, out)
    row = sorted((out / ".medaug" / "rows").glob("*.json"))[0]
    row.write_text("")
    with pytest.raises(JobError) as info:
        _expand(data, out)
    assert info.value.path == str(row) and "is empty; delete this file and run the same command again" in str(info.value)
    row.unlink()
    assert _expand(data, out)["written"] == 1  # the recovery works: the item is done again
    job = out / ".medaug" / "job.json"
    job.write_text(job.read_text()[:20])
    with pytest.raises(JobError) as info:
        _expand(data, out)
    assert info.value.path == str(job) and "the job description is damaged" in str(info.value)
    assert f"delete {job} and run it again" in str(info.value)


def test_the_cli_prints_a_damaged_state_as_one_line(data, tmp_path, capsys):
    from medaug.cli.main import main

    out = tmp_path / "out"
    _expand(data, out)
    (out / ".medaug" / "job.json").write_text("[1, 2]")
    code = main(["expand", str(data), str(out), "--config", _pipe(tmp_path), "-n", "1", "--seed", "3", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith(f"medaug expand: error: {out / '.medaug' / 'job.json'}: the job description is damaged")


def _pipe(tmp_path) -> str:
    (tmp_path / "pipe.json").write_text(json.dumps(PIPE))
    return str(tmp_path / "pipe.json")


@pytest.mark.parametrize("name", ["lock", "job.json", "rows"])
def test_a_fifo_in_the_state_folder_is_named_not_read_forever(data, tmp_path, monkeypatch, name):
    """A FIFO as the lock, job.json or a row (an output folder from elsewhere) blocked the job forever on its read."""
    import signal

    monkeypatch.setattr(jobs, "LOCK_SETTLE", 0.05)
    out = tmp_path / "out"
    _expand(data, out)
    path = sorted((out / ".medaug" / "rows").glob("*.json"))[0] if name == "rows" else out / ".medaug" / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)

    def hung(*_):
        raise TimeoutError(f"reading {path} blocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(JobError) as info:
            _expand(data, out)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert info.value.path == str(path) and "is a FIFO, not a file medaug wrote" in str(info.value)
