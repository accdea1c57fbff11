"""The bad-input corpus: every case through the Python API and through the ``medaug`` command.

For each case of :mod:`make_corpus` (written at test time into a temporary
folder):

* the Python entry point raises exactly the expected :mod:`medaug.errors`
  class, with the message fragment and the offending file's path in the
  message (or, for accepted inputs, returns a result, with the expected
  warning where there is one);
* every applicable ``medaug`` command line exits with 2 (0 for accepted
  inputs), prints exactly one line on stderr (no traceback) holding the
  fragment, within 5 s including start-up, with the address space limited
  to ``MEMORY_LIMIT`` (4 GiB) and a resident set below ``RSS_LIMIT`` (1.5 GiB).

The command lines run in one child process (``_cli_batch.py``: same code
path as the ``medaug`` script, one start-up for all); a handful also run as
separate ``medaug`` processes to time the real start-up. The unreadable file
is checked by a child that drops root privileges (uid 65534) when the tests
run as root, since root reads a ``chmod 000`` file.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

from medaug.data.image import Image
from medaug.data.io import load
from medaug.data.sample import Sample
from medaug.datasets.cases import Case, load_case
from medaug.datasets.discover import read_cases
from medaug.engine.compose import Compose
from medaug.engine.config import pipeline_from_config

from .make_corpus import OUT, CorpusCase, write_corpus

MEMORY_LIMIT = 4 * 2**30  # RLIMIT_AS of every child process
RSS_LIMIT_KB = 1536 * 1024  # peak resident set of the batch child
# Per command line, start-up included: CPU seconds (what the command costs, whatever the machine's load) and
# wall seconds (a hang: a blocking read costs no CPU)
TIME_LIMIT = 5.0
WALL_LIMIT = 60.0
NOBODY = 65534
HERE = Path(__file__).parent
_SCRIPT = Path(sys.executable).with_name("medaug")
MEDAUG = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "medaug.cli"]
#: Cases also run as their own ``medaug`` process (real start-up, real limits).
SUBPROCESS_CASES = (
    "nifti2_huge_header_1e18_voxels", "mha_huge_header_1e18_voxels", "config_yaml_bomb_10mb",
    "dicom_missing_slice", "path_non_utf8_name", "nifti_truncated",
)


def _make_corpus() -> tuple[Path, list[CorpusCase]]:
    root = Path(tempfile.mkdtemp(prefix="medaug-corpus-"))
    atexit.register(_remove, root)
    return root, write_corpus(root / "corpus")


def _remove(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
    shutil.rmtree(root, ignore_errors=True)


ROOT, CASES = _make_corpus()
BY_NAME = {c.name: c for c in CASES}


def _shown(text: str) -> str:
    """How ``text`` appears on a UTF-8 terminal (non-UTF-8 names as backslash escapes)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _call_api(case: CorpusCase) -> object:
    p = case.paths
    if case.api == "load":
        return load(p["image"])
    if case.api == "load_label":
        return load(p["label"], label=True)
    if case.api == "load_case":
        return load_case(Case("case", Path(p["image"]), Path(p["label"]) if "label" in p else None))
    if case.api == "read_cases":
        return read_cases(p["dataset"])
    if case.api == "pipeline_from_config":
        return pipeline_from_config(Path(p["config"]))
    if case.api == "augment_config":
        return pipeline_from_config(Path(p["config"]))(Sample(image=load(p["image"])), seed=0)
    raise AssertionError(f"unknown api {case.api}")


def _check_result(case: CorpusCase, result: object) -> None:
    expected = {"load": Image, "load_label": Image, "load_case": Sample, "read_cases": list,
                "pipeline_from_config": Compose, "augment_config": Sample}[case.api]
    assert isinstance(result, expected)


def _check_message(case: CorpusCase, message: str, *, shown: bool = False) -> None:
    assert case.fragment in message, f"{case.name}: {case.fragment!r} not in {message!r}"
    for name in case.names:
        name = _shown(name) if shown else name
        assert name in message or Path(name).name in message, f"{case.name}: {name!r} not named in {message!r}"


def test_the_corpus_covers_the_brief() -> None:
    assert len(CASES) >= 30
    groups = {c.group for c in CASES}
    assert groups == {"nifti", "other-formats", "dicom", "pair", "config", "path", "boundary"}
    assert {c.api for c in CASES} == {"load", "load_label", "load_case", "read_cases", "pipeline_from_config",
                                      "augment_config"}
    assert all(c.cli for c in CASES)


# ---------------------------------------------------------------- Python API
@pytest.mark.parametrize("name", [c.name for c in CASES if not c.unreadable])
def test_api(name: str) -> None:
    case = BY_NAME[name]
    t0, c0 = time.perf_counter(), time.process_time()
    if case.error is None:
        if case.warning:
            with pytest.warns(UserWarning, match=re.escape(case.fragment)):
                result = _call_api(case)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                result = _call_api(case)
        _check_result(case, result)
    else:
        with pytest.raises(case.error) as info:
            _call_api(case)
        assert type(info.value) is case.error, f"{name}: {type(info.value).__name__}: {info.value}"
        _check_message(case, str(info.value))
        assert "Traceback" not in str(info.value) and ".cxx" not in str(info.value)
    assert time.process_time() - c0 < TIME_LIMIT and time.perf_counter() - t0 < WALL_LIMIT


# ---------------------------------------------------------------- command line
def _jobs(tmp: Path) -> list[dict]:
    jobs = []
    for case in CASES:
        if case.unreadable and os.geteuid() == 0:
            continue  # root reads it anyway: see test_unreadable_file
        for i, argv in enumerate(case.cli):
            out = str(tmp / f"{case.name}-{i}")
            jobs.append({"id": f"{case.name}#{i}", "argv": [out if a == OUT else a for a in argv]})
    return jobs


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("cli-out")
    spec = json.dumps({"limit_bytes": MEMORY_LIMIT, "jobs": _jobs(tmp)})
    proc = subprocess.run([sys.executable, str(HERE / "_cli_batch.py")], input=spec, check=False, capture_output=True,
                          text=True, timeout=600, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["id"]: r for r in json.loads(proc.stdout)}


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def startup_seconds() -> tuple[float, float]:
    """Wall and CPU seconds of ``medaug info MISSING`` (import + argument parsing + one error): the start-up cost."""
    t0, c0 = time.perf_counter(), _child_cpu()
    proc = subprocess.run([*MEDAUG, "info", str(ROOT / "missing.nii")], check=False, capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_memory)
    assert proc.returncode == 2
    return time.perf_counter() - t0, _child_cpu() - c0


def _check_cli(case: CorpusCase, rc: int, stderr: str) -> None:
    lines = stderr.splitlines()
    assert "Traceback" not in stderr, stderr
    assert rc == case.exit_code, f"{case.name}: exit {rc}, stderr {stderr!r}"
    if case.error is None and not case.warning:
        assert lines == [], stderr
        return
    assert len(lines) == 1, f"{case.name}: stderr is not one line: {stderr!r}"
    assert lines[0].startswith("medaug ") and (": warning: " if case.warning else ": error: ") in lines[0], lines[0]
    _check_message(case, lines[0], shown=True)


@pytest.mark.parametrize("name", [c.name for c in CASES if not c.unreadable])
def test_cli(name: str, cli_results: dict[str, dict], startup_seconds: tuple[float, float]) -> None:
    case = BY_NAME[name]
    for i, argv in enumerate(case.cli):
        r = cli_results[f"{name}#{i}"]
        _check_cli(case, r["rc"], r["stderr"])
        wall, cpu = startup_seconds
        assert r["cpu"] + cpu < TIME_LIMIT, f"{name} {argv}: {r['cpu']:.2f} s CPU + start-up"
        assert r["seconds"] + wall < WALL_LIMIT, f"{name} {argv}: {r['seconds']:.2f} s + start-up"
        assert r["maxrss_kb"] < RSS_LIMIT_KB, f"{name}: peak RSS {r['maxrss_kb'] / 1024:.0f} MiB"


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_cli_as_its_own_process(name: str, tmp_path: Path) -> None:
    case = BY_NAME[name]
    argv = [str(tmp_path / "out") if a == OUT else a for a in case.cli[0]]
    t0, c0 = time.perf_counter(), _child_cpu()
    proc = subprocess.run([*MEDAUG, *argv], check=False, capture_output=True, timeout=WALL_LIMIT,
                          preexec_fn=_limit_memory)
    seconds, cpu = time.perf_counter() - t0, _child_cpu() - c0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    _check_cli(case, proc.returncode, proc.stderr.decode("utf-8", "backslashreplace"))
    assert cpu < TIME_LIMIT and seconds < WALL_LIMIT, f"{name}: {cpu:.2f} s CPU, {seconds:.2f} s"
    assert usage.ru_maxrss < RSS_LIMIT_KB


# ---------------------------------------------------------------- unreadable file
_DROP_AND_READ = r"""
import json, os, sys
import medaug.cli.info, medaug.data.io, medaug.errors
from medaug.cli.main import main
folder, name, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.chdir(folder)            # the file is reached relative to its folder: the tmp ancestors stay private
if uid >= 0:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
try:
    medaug.data.io.load(name)
    api = {"type": None, "message": ""}
except Exception as exc:
    api = {"type": type(exc).__name__, "message": str(exc)}
print(json.dumps(api), flush=True)
sys.exit(main(["info", name]))
"""


def test_unreadable_file(tmp_path: Path) -> None:
    (case,) = [c for c in CASES if c.unreadable]
    path = Path(case.paths["image"])
    uid = -1
    if os.geteuid() == 0:
        uid = NOBODY
        path.parent.chmod(0o755)  # nobody may look the file up in its own folder, no further
    proc = subprocess.run([sys.executable, "-c", _DROP_AND_READ, str(path.parent), path.name, str(uid)],
                          check=False, capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory)
    if uid >= 0 and "Operation not permitted" in proc.stderr:
        pytest.skip("running as root without the right to switch to uid 65534 (setuid refused)")
    api = json.loads(proc.stdout.splitlines()[0])
    assert api["type"] == case.error.__name__, api
    _check_message(case, api["message"])
    _check_cli(case, proc.returncode, proc.stderr)
