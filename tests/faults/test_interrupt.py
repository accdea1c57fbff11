"""SIGTERM and Ctrl-C during a job with worker processes: every worker stops, then the lock goes; a rerun resumes.

Before: after SIGTERM the workers went on writing as orphans while a second
run took the (stale) lock; two Ctrl-C in a row hung with worker tracebacks.
Each test runs the real ``medaug`` command in its own process group, as a
terminal would, and watches its worker processes through ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import medaug
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.datasets.workers import STOP_GRACE, JobInterrupted

from ._util import assert_complete, child_env, digest, make_dataset, medaug_cmd, temp_files, wait_for

PIPE = [{"RandomElastic": {"control_points": 5, "max_displacement": 3}}, {"RandomAffine": {"rotation": 8}},
        {"RandomBiasField": {}}, {"RandomNoise": {"std": [0, 5]}}]
ITEMS = {(f"case{i:02d}", k) for i in range(6) for k in range(2)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(data, pipeline file, reference output of an uninterrupted run)."""
    root = tmp_path_factory.mktemp("interrupt")
    data = make_dataset(root / "data", n=6, size=40)
    (root / "pipe.json").write_text(json.dumps(PIPE))
    run_expand(ExpandJob(str(data), str(root / "ref"), PIPE, n=2, seed=4), progress=False)
    return data, root / "pipe.json", root / "ref"


def _workers(parent: int) -> list[int]:
    """PIDs of the multiprocessing workers (spawned) of ``parent``."""
    found = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"spawn_main" in (d / "cmdline").read_bytes():
                found.append(int(d.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(medaug_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(), start_new_session=True)  # its own process group, as in a terminal


def _expand_cmd(data: Path, cfg: Path, out: Path) -> list[str]:
    return ["expand", str(data), str(out), "--config", str(cfg), "-n", "2", "--seed", "4", "--workers", "2", "--quiet"]


def _first_row_then_workers(proc: subprocess.Popen, rows: Path) -> list[int]:
    wait_for(lambda: proc.poll() is not None or any(rows.glob("*.json")), 120, "the first committed row")
    assert proc.poll() is None, proc.communicate()
    return wait_for(lambda: _workers(proc.pid), 30, "the worker processes")


def test_sigterm_stops_every_worker_before_the_lock_goes_and_the_rerun_resumes(dataset, tmp_path):
    data, cfg, ref = dataset
    out = tmp_path / "out"
    proc = _start(*_expand_cmd(data, cfg, out))
    workers = _first_row_then_workers(proc, out / ".medaug" / "rows")
    assert len(workers) == 2
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < STOP_GRACE + 15  # the grace, then exits (slow to tear down on a loaded machine)
    assert not any(_alive(pid) for pid in workers)  # gone when the command ends, so nothing writes on
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.splitlines() == [f"medaug expand: interrupted by SIGTERM: the {len(list((out / '.medaug' / 'rows').glob('*.json')))} "
                                "item(s) finished so far are kept; run the same command again to resume"]
    assert not (out / ".medaug" / "lock").exists() and temp_files(out) == []
    rerun = subprocess.run(medaug_cmd(*_expand_cmd(data, cfg, out)), capture_output=True, text=True, env=child_env(),
                           timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert digest(out) == digest(ref)
    assert_complete(out, ITEMS)


def test_two_ctrl_c_exit_at_once_without_traces(dataset, tmp_path):
    data, cfg, _ = dataset
    out = tmp_path / "out"
    proc = _start(*_expand_cmd(data, cfg, out))
    workers = _first_row_then_workers(proc, out / ".medaug" / "rows")
    os.kill(workers[0], signal.SIGSTOP)  # a worker that does not leave: the first Ctrl-C waits for it (STOP_GRACE)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches every process of the group
    time.sleep(0.5)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 1.0
    assert proc.returncode == 128 + signal.SIGINT
    assert err == "medaug expand: interrupted again, stopped at once; run the same command again to resume\n"
    assert not any(_alive(pid) for pid in workers)
    assert not (out / ".medaug" / "lock").exists()


def test_learn_deformations_stops_its_workers_even_inside_a_registration(tmp_path):
    """A worker inside ITK's C++ runs no Python handler: it is killed after the grace period."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for i in range(5):
        medaug.save(medaug.shepp_logan_2d(96, seed=i).image, data / "images" / f"c{i}.nii.gz")
    out = tmp_path / "out"
    proc = _start("learn-deformations", str(data), str(out), "--reference", "c0", "--workers", "2", "--quiet")
    workers = _first_row_then_workers(proc, out / ".medaug" / "rows")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < STOP_GRACE + 15  # the grace, then exits (slow to tear down on a loaded machine)
    assert proc.returncode == 128 + signal.SIGTERM and not any(_alive(pid) for pid in workers)
    assert err.splitlines()[-1].startswith("medaug learn-deformations: interrupted by SIGTERM: the ")
    assert "run the same command again to resume" in err and "Traceback" not in err
    assert not (out / ".medaug" / "lock").exists()
    assert not list((out / "fields").glob(".*")) if (out / "fields").exists() else True


def test_an_interrupted_dask_job_waits_for_its_tasks_and_resumes(dataset, tmp_path):
    distributed = pytest.importorskip("distributed")
    data, _, ref = dataset
    out = tmp_path / "out"
    rows = out / ".medaug" / "rows"
    main = threading.main_thread().ident

    def interrupt_after_the_first_row() -> None:
        wait_for(lambda: any(rows.glob("*.json")), 120, "the first row")
        signal.pthread_kill(main, signal.SIGINT)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        threading.Thread(target=interrupt_after_the_first_row, daemon=True).start()
        with pytest.raises(JobInterrupted, match="run the same command again to resume"):
            run_expand(ExpandJob(str(data), str(out), PIPE, n=2, seed=4), scheduler=client, progress=False)
        snapshot = digest(out)
        time.sleep(1.0)
        assert digest(out) == snapshot, "a task went on writing after the job returned"
        assert not (out / ".medaug" / "lock").exists() and temp_files(out) == []
        run_expand(ExpandJob(str(data), str(out), PIPE, n=2, seed=4), scheduler=client, progress=False)
    assert digest(out) == digest(ref)
