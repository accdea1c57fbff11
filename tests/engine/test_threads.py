"""The sweep's threading layer: which one is used, and that threads and forks give the same results."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from importlib import metadata

import numpy as np
import pytest

import medaug

numba = pytest.importorskip("numba")
kernels = importlib.import_module("medaug.engine._numba")

_CONFIG = {"transforms": [
    {"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1]}},
    {"RandomElastic": {"max_displacement": 5}},
    {"RandomGamma": {"log_gamma": 0.3}},
    {"RandomNoise": {"std": 0.02}},
]}


def _sample(seed: int = 0) -> medaug.Sample:
    rng = np.random.default_rng(seed)
    image = rng.random((64, 80), dtype=np.float32)
    label = (image > 0.5).astype(np.uint8)
    return medaug.Sample(image=medaug.Image(image), label=medaug.Image(label, is_label=True))


@pytest.mark.skipif("NUMBA_THREADING_LAYER" in os.environ, reason="the user chose the layer")
def test_layer_is_tbb_where_numba_can_run_it_else_workqueue():
    medaug.pipeline_from_config(_CONFIG)(_sample(), seed=1)  # one parallel launch: the layer is loaded
    want = "tbb" if kernels._load_tbb() else "workqueue"
    assert numba.threading_layer() == want
    assert kernels.threading_layer() == want


def test_user_choice_of_layer_is_kept(monkeypatch):
    monkeypatch.setenv("NUMBA_THREADING_LAYER", "workqueue")
    assert kernels.threading_layer() == "workqueue"


def threads_disagree(threads: int = 3, seeds: int = 6, rounds: int = 3) -> list[tuple[int, int]]:
    """(thread, seed) of every result that differs from the serial one, with ``threads`` Python threads at once."""
    pipeline = medaug.pipeline_from_config(_CONFIG)
    expected = [pipeline(_sample(), seed=s)["image"].array.copy() for s in range(seeds)]
    wrong: list[tuple[int, int]] = []

    def work(k: int) -> None:
        for _ in range(rounds):
            for s in range(seeds):
                if not np.array_equal(pipeline(_sample(), seed=s)["image"].array, expected[s]):
                    wrong.append((k, s))

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return wrong


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter at the repository root (this module importable), with extra ``env``."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *sys.path]), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=full, capture_output=True, text=True, timeout=600)


def test_concurrent_python_threads_give_the_serial_results():
    assert threads_disagree() == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this system")
def test_a_fork_after_use_augments_in_the_child():
    """DataLoader workers fork from a process that has already run the sweep: the child must not hang or abort."""
    code = (
        "import os, numpy as np, medaug\n"
        "from tests.engine.test_threads import _CONFIG, _sample\n"
        "p = medaug.pipeline_from_config(_CONFIG)\n"
        "ref = p(_sample(), seed=2)['image'].array.copy()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if np.array_equal(p(_sample(), seed=2)['image'].array, ref) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Terminating" not in done.stderr


def test_without_tbb_the_layer_is_workqueue(monkeypatch):
    def missing(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.delenv("NUMBA_THREADING_LAYER", raising=False)
    monkeypatch.setattr(metadata, "files", missing)
    monkeypatch.setitem(sys.modules, "numba.np.ufunc.tbbpool", None)  # as where Numba cannot load it
    assert kernels._load_tbb() is False
    assert kernels.threading_layer() == "workqueue"


def test_an_old_tbb_falls_back_to_workqueue(monkeypatch):
    from numba.np.ufunc import parallel

    def too_old() -> None:
        raise ImportError("Problem with TBB. Reason: TBB_INTERFACE_VERSION = 12050")

    monkeypatch.delenv("NUMBA_THREADING_LAYER", raising=False)
    monkeypatch.setattr(parallel, "_check_tbb_version_compatible", too_old, raising=False)
    assert kernels.threading_layer() == "workqueue"


def test_a_layer_that_is_not_thread_safe_gets_a_launch_lock(monkeypatch):
    for layer, locked in (("workqueue", True), ("forksafe", True), ("default", True), ("tbb", False), ("omp", False)):
        monkeypatch.setattr(numba.config, "THREADING_LAYER", layer)
        assert (kernels.launch_guard() is kernels._LAUNCH_LOCK) is locked, layer


def test_a_chosen_tbb_layer_still_loads_the_library(monkeypatch):
    loaded = []
    monkeypatch.setenv("NUMBA_THREADING_LAYER", "tbb")
    monkeypatch.setattr(kernels, "_load_tbb", lambda: loaded.append(True) or True)
    assert kernels.threading_layer() == "tbb"
    assert loaded == [True]


def test_threads_on_the_workqueue_layer_do_not_abort():
    """Numba's workqueue layer aborts the process when two threads enter it: medaug holds a lock around launches."""
    code = (
        "import numba\n"
        "from tests.engine.test_threads import threads_disagree\n"
        "wrong = threads_disagree(threads=3, seeds=4)\n"
        "assert numba.threading_layer() == 'workqueue', numba.threading_layer()\n"
        "raise SystemExit(1 if wrong else 0)\n"
    )
    done = _run_python(code, NUMBA_THREADING_LAYER="workqueue")
    assert done.returncode == 0, done.stderr[-2000:]
