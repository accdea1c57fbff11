"""A Dask worker killed (SIGKILL) while it runs a case: the scheduler re-runs the case, the job completes.

``run_expand`` maps one task per case; when a worker process dies, the
scheduler moves the tasks it was running back to waiting and runs them on
another (or the restarted) worker (``distributed.scheduler.allowed-failures``,
default 3, is how many such deaths one task may see; ``retries=2`` of
``client.map`` is for tasks that raise, not for lost workers).  Re-running a
case is safe: an item counts only once its manifest row is committed, files are
written under temporary names and renamed, and the job removes temporary files
left by a killed writer when it finishes.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest

from medaug.datasets.expand import ExpandJob, run_expand

from ._util import assert_complete, digest, make_dataset, temp_files, wait_for

distributed = pytest.importorskip("distributed")

HEAVY = [{"RandomElastic": {"control_points": 7, "max_displacement": 4}}, {"RandomAffine": {"rotation": 8}},
         {"RandomNoise": {"std": [0, 5]}}, {"RandomBiasField": {"order": 3, "coefficients": 0.3}}]
N_CASES, N_AUG = 6, 3


def test_killed_worker_case_is_rerun_and_nothing_is_duplicated(tmp_path):
    data = make_dataset(tmp_path / "in", n=N_CASES, size=48)
    ref = tmp_path / "ref"
    run_expand(ExpandJob(str(data), str(ref), HEAVY, n=N_AUG, seed=2), progress=False)
    out = tmp_path / "out"
    rows = out / ".medaug" / "rows"

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        scheduler = cluster.scheduler
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["summary"] = run_expand(ExpandJob(str(data), str(out), HEAVY, n=N_AUG, seed=2),
                                                scheduler=client, progress=False)
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                outcome["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def busy_worker():
            """(address, keys) of a worker running a case, once the job has committed its first item."""
            if not thread.is_alive():
                raise AssertionError(f"the job ended before a worker could be killed: {outcome}")
            if not rows.is_dir() or not any(rows.glob("*.json")):
                return None
            for addr, ws in list(scheduler.workers.items()):
                keys = [ts.key for ts in ws.processing]
                if keys:
                    return addr, keys
            return None

        addr, in_flight = wait_for(busy_worker, 180, "a worker running a case", interval=0.01)
        pid = client.run(os.getpid, workers=[addr])[addr]
        os.kill(pid, signal.SIGKILL)
        # what a worker killed mid-write leaves under a temporary name (the kill may land between files)
        (out / "images" / f".case00_aug000.tmp-{pid}-dead00.nii.gz").write_bytes(b"\x1f\x8b\x08\x00")
        thread.join(240)
        assert not thread.is_alive(), "the job did not finish after a worker was killed"
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        runs = Counter(t.key for t in scheduler.transition_log if t.finish == "processing")

    assert all(runs[k] >= 2 for k in in_flight), f"the killed worker's case(s) were not re-run: {runs}"
    summary = outcome["summary"]
    assert summary["rows"] == N_CASES * N_AUG and not summary["failed"]  # type: ignore[index]
    assert temp_files(out) == []
    assert_complete(out, {(f"case{i:02d}", k) for i in range(N_CASES) for k in range(N_AUG)})
    assert digest(out) == digest(ref)  # an item written twice is the same item: identical bytes
    assert not Path(out / ".medaug" / "lock").exists()
