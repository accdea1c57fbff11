"""A read-only output folder fails with a clear error before any work.

The library probes the folder by creating and deleting a file in
``OUTPUT/.medaug/`` (``os.access`` says yes to root whatever the permission
bits, and does not see every read-only mount).  Variants: a read-only tmpfs
mount (when this test may mount), simulated errors (monkeypatched), and a
``chmod 0o555`` folder for an unprivileged user (as root: in a subprocess that
drops to ``nobody``).
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from medaug.datasets import expand
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.errors import JobError

from ._util import PIPE, SRC, make_dataset, try_mount, umount


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if any case is processed."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a case was processed although the output folder is not writable")

    monkeypatch.setattr(expand, "process_case", forbidden)
    monkeypatch.setattr(expand, "load_case", forbidden)


def test_read_only_mount(tmp_path, no_work):
    data = make_dataset(tmp_path / "in", n=1)
    ro = tmp_path / "ro"
    why = try_mount(ro, "ro", "size=1m")
    if why:
        pytest.skip(f"read-only mount variant skipped: {why}")
    try:
        with pytest.raises(JobError, match="output folder is not writable .*Read-only file system") as info:
            run_expand(ExpandJob(str(data), str(ro), PIPE, n=1), progress=False)
        assert info.value.path == str(ro)
        with pytest.raises(JobError, match="not writable") as info:  # an output folder still to be created in it
            run_expand(ExpandJob(str(data), str(ro / "new"), PIPE, n=1), progress=False)
        assert info.value.path == str(ro / "new")
    finally:
        umount(ro)


@pytest.mark.parametrize(("error", "expected"), [
    (PermissionError(errno.EACCES, "Permission denied"), "output folder is not writable (Permission denied)"),
    (OSError(errno.EROFS, "Read-only file system"), "output folder is not writable (Read-only file system)"),
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
], ids=["EACCES", "EROFS", "ENOSPC"])
def test_probe_errors_become_one_clear_job_error(tmp_path, monkeypatch, no_work, error, expected):
    data = make_dataset(tmp_path / "in", n=1)
    out = tmp_path / "out"
    real_open = pathlib.Path.open

    def refuse_probe(self, *args, **kwargs):
        if self.name.startswith(".probe-"):
            raise error
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", refuse_probe)
    with pytest.raises(JobError) as info:
        run_expand(ExpandJob(str(data), str(out), PIPE, n=1), progress=False)
    assert expected in str(info.value) and info.value.path == str(out)
    assert not (out / ".medaug" / "lock").exists() and not (out / ".medaug" / "job.json").exists()
    assert not [p for p in (out / ".medaug").iterdir()], "the probe file was left behind"


def test_chmod_555_for_an_unprivileged_user(tmp_path):
    """``chmod 0o555``: as a normal user directly; as root in a child that becomes ``nobody`` (uid 65534)."""
    base = Path(tempfile.mkdtemp(prefix="medaug-ro-", dir="/tmp")) if os.geteuid() == 0 else tmp_path
    try:
        base.chmod(0o755)
        data = make_dataset(base / "in", n=1)
        out = base / "out"
        out.mkdir()
        out.chmod(0o555)
        if os.geteuid() != 0:
            with pytest.raises(JobError, match="output folder is not writable .*Permission denied"):
                run_expand(ExpandJob(str(data), str(out), PIPE, n=1), progress=False)
            return
        # the interpreter lives under /root here, unreadable for nobody: the child imports (and warms up) as
        # root, then drops its effective uid/gid, which is what the kernel checks when a file is created
        (base / "pipe.json").write_text(json.dumps(PIPE))
        child = (
            "import os, sys\n"
            "from medaug.cli.main import main\n"
            f"argv = ['expand', {str(data)!r}, '--config', {str(base / 'pipe.json')!r}, '-n', '1', '--quiet']\n"
            f"assert main(argv[:2] + [{str(base / 'warm')!r}] + argv[2:]) == 0\n"
            "os.setgroups([]); os.setegid(65534); os.seteuid(65534)\n"
            f"sys.exit(main(argv[:2] + [{str(out)!r}] + argv[2:]))\n"
        )
        res = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120, check=False,
                             env={**os.environ, "PYTHONPATH": SRC})
        if res.returncode not in (1, 2) or "medaug expand" not in res.stderr:
            pytest.skip(f"cannot run medaug as nobody here (exit {res.returncode}): {res.stderr.strip()[-300:]}")
        last = res.stderr.strip().splitlines()[-1]
        assert res.returncode == 1, res.stderr
        assert last == (f"medaug expand: error: {out}: output folder is not writable (Permission denied); "
                        "choose another folder or make this one writable")
        assert list(out.iterdir()) == []  # nothing written, not even .medaug/
    finally:
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)
