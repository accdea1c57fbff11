"""Two ``medaug expand`` processes started together on one output folder.

The second fails with the lock error naming the holder's PID and host; the
first completes and its output is exactly that of a lone run.  To make sure the
two really overlap on a loaded machine, the lock holder is paused (SIGSTOP) as
soon as it holds the lock and resumed (SIGCONT) once the other one has exited.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

from medaug.datasets.expand import ExpandJob, run_expand

from ._util import PIPE, assert_complete, child_env, digest, make_dataset, medaug_cmd, wait_for


def _holder(lock: Path) -> dict | None:
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    return holder if "pid" in holder else None


def test_second_process_is_refused_and_the_first_completes(tmp_path):
    data = make_dataset(tmp_path / "in", n=3)
    cfg = tmp_path / "pipe.json"
    cfg.write_text(json.dumps(PIPE))
    ref = tmp_path / "ref"
    run_expand(ExpandJob(str(data), str(ref), PIPE, n=2, seed=5), progress=False)

    out = tmp_path / "out"
    cmd = medaug_cmd("expand", str(data), str(out), "--config", str(cfg), "-n", "2", "--seed", "5", "--quiet")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
             for _ in range(2)]
    by_pid = {p.pid: p for p in procs}
    try:
        lock = out / ".medaug" / "lock"
        def lock_holder() -> dict | None:
            if all(p.poll() is not None for p in procs):
                raise AssertionError(f"both processes ended before the lock was seen: {procs[0].communicate()}")
            return _holder(lock)

        holder = wait_for(lock_holder, 120, "one process to take the lock", interval=0.005)
        winner = by_pid[holder["pid"]]
        winner.send_signal(signal.SIGSTOP)  # keep the lock held until the other process has tried
        loser = next(p for p in procs if p is not winner)
        _, loser_err = loser.communicate(timeout=120)
        winner.send_signal(signal.SIGCONT)
        winner_out, winner_err = winner.communicate(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()

    assert loser.returncode == 1
    assert loser_err.strip() == (
        f"medaug expand: error: {out}: output folder is in use by another medaug process (PID {winner.pid} on host "
        f"{socket.gethostname()}); wait for it or remove {lock} if that process is gone"
    )
    assert winner.returncode == 0, winner_err
    assert "manifest has 6 row(s)" in winner_out
    assert not lock.exists()
    assert digest(out) == digest(ref)
    assert_complete(out, {(f"case{i:02d}", k) for i in range(3) for k in range(2)})
