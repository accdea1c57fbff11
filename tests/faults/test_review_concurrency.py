"""The review server under load and under ``kill -9``: no verdict is lost, the database stays sound.

Real ``medaug review`` processes on 127.0.0.1 (port 0), a manifest of many
samples (the verdict route needs no image file), verdicts posted from many
threads.  A reviewer's name is fixed per server (``--reviewer``), so two
reviewers are two servers on the same folder and the same SQLite file.
"""

from __future__ import annotations

import csv
import http.client
import json
import queue
import signal
import sqlite3
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from medaug.datasets.writing import MANIFEST_COLUMNS
from medaug.preview.review import VerdictStore

from ._util import child_env, medaug_cmd, wait_for


def review_folder(root: Path, n: int) -> Path:
    """An expansion folder's manifest with ``n`` samples ``case0000:0`` ... (no image files needed)."""
    root.mkdir(parents=True)
    with (root / "manifest.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        for i in range(n):
            writer.writerow([f"case{i:04d}", 0, 0, "/data/src.nii.gz", "", f"images/case{i:04d}_aug000.nii.gz", "", "[]"])
    return root


class Server:
    """``medaug review DIR --port 0 [--reviewer NAME]`` in a subprocess; its port read from its first lines."""

    def __init__(self, folder: Path, reviewer: str | None = None) -> None:
        cmd = medaug_cmd("review", str(folder), "--port", "0", *(["--reviewer", reviewer] if reviewer else []))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = 0

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line)

    def wait_ready(self, timeout: float = 120) -> Server:
        def port() -> int | None:
            while not self.lines.empty():
                line = self.lines.get()
                if line.startswith("open http://127.0.0.1:"):
                    return int(line.split(":")[2].split("/")[0])
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            return None

        self.port = wait_for(port, timeout, "the review server to listen")
        return self

    def post(self, sample: str, verdict: str, timeout: float = 60) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            body = json.dumps({"sample": sample, "verdict": verdict, "comment": f"c-{sample}"})
            conn.request("POST", "/api/verdict", body=body, headers={"Content-Type": "application/json"})
            res = conn.getresponse()
            res.read()
            return res.status
        finally:
            conn.close()

    def get(self, path: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", path)
            res = conn.getresponse()
            assert res.status == 200
            return json.loads(res.read())
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe:
                pipe.close()


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def verdict_of(i: int, reviewer: str) -> str:
    return "realistic" if (i + len(reviewer)) % 3 else "not_realistic"


def test_two_reviewers_at_once_lose_no_verdict(tmp_path, servers):
    folder = review_folder(tmp_path / "out", 100)
    servers += [Server(folder, "alice"), Server(folder, "bob")]
    alice, bob = (s.wait_ready() for s in servers)
    jobs = [(srv, name, i) for i in range(100) for srv, name in ((alice, "alice"), (bob, "bob"))]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda j: j[0].post(f"case{j[2]:04d}:0", verdict_of(j[2], j[1])), jobs))
    assert statuses == [200] * 200
    assert alice.get("/api/progress")["reviewed"] == 100 and bob.get("/api/progress")["reviewed"] == 100
    for s in servers:
        s.stop()

    db = sqlite3.connect(folder / "review.sqlite")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        counts = dict(db.execute("SELECT reviewer, COUNT(*) FROM verdicts GROUP BY reviewer").fetchall())
        assert counts == {"alice": 100, "bob": 100}
        stored = {(s, r): v for s, r, v in db.execute("SELECT sample, reviewer, verdict FROM verdicts")}
    finally:
        db.close()
    assert stored == {(f"case{i:04d}:0", name): verdict_of(i, name) for i in range(100) for name in ("alice", "bob")}


def test_kill_9_mid_write_keeps_every_acknowledged_verdict(tmp_path, servers):
    folder = review_folder(tmp_path / "out", 5000)
    server = Server(folder, "r").wait_ready()
    servers.append(server)
    acked: dict[str, str] = {}
    failures: list[Exception] = []
    lock = threading.Lock()
    counter = iter(range(5000))
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            with lock:
                i = next(counter)
            sample, verdict = f"case{i:04d}:0", verdict_of(i, "r")
            try:
                status = server.post(sample, verdict, timeout=30)
            except Exception as exc:  # noqa: BLE001 - the server died under this request (checked below)
                with lock:
                    failures.append(exc)
                return
            if 200 <= status < 300:
                with lock:
                    acked[sample] = verdict

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 150, 120, "150 acknowledged verdicts")
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(30)
    stop.set()
    for t in threads:
        t.join(60)
    assert failures, "the server should have been killed with requests in flight"
    unexpected = [f for f in failures if not isinstance(f, (OSError, http.client.HTTPException))]
    assert not unexpected, f"not a dropped connection: {unexpected!r}"
    assert server.proc.returncode == -signal.SIGKILL

    db = sqlite3.connect(folder / "review.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
    stored = {v["sample"]: v["verdict"] for v in VerdictStore(folder).all()}
    missing = {s: v for s, v in acked.items() if stored.get(s) != v}
    assert not missing, f"{len(missing)} acknowledged verdict(s) lost or changed: {list(missing)[:5]}"

    again = Server(folder, "r").wait_ready()  # the restarted server opens the same database and counts them
    servers.append(again)
    assert again.get("/api/progress")["reviewed"] == len(stored) >= len(acked)
    assert again.post("case4999:0", "realistic") == 200
