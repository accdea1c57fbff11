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


def test_concurrent_python_threads_give_the_serial_results():
    pipeline = medaug.pipeline_from_config(_CONFIG)
    expected = [pipeline(_sample(), seed=s)["image"].array.copy() for s in range(6)]
    wrong: list[tuple[int, int]] = []

    def work(k: int) -> None:
        for _ in range(3):
            for s in range(6):
                if not np.array_equal(pipeline(_sample(), seed=s)["image"].array, expected[s]):
                    wrong.append((k, s))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


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
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
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
