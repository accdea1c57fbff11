"""The review server under abuse: aborted and idle connections, swapped symlinks, a full disk, remote binds, hostile JSON.

Each test fails on a server without the matching defence.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import medaug
from medaug.cli.main import main as cli_main
from medaug.errors import ParameterError
from medaug.preview.review import ReviewServer

from ..faults._util import try_mount, umount
from ._util import call, cli_server, get_json, post_verdict


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a browser cancelling a request does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_aborted_requests_print_nothing(server, capfd):
    host, port = server.httpd.server_address[:2]
    half_post = (b"POST /api/verdict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 400\r\n\r\n{\"sample\"")
    for request in (b"GET /api/sampl", b"GET /api/slice?sample=vol:1&which=original HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                    half_post):
        for _ in range(3):
            sock = socket.create_connection((host, port))
            sock.sendall(request)
            _reset(sock)
    time.sleep(0.3)
    assert get_json(server, "/api/progress")["total"] == 6  # still serving
    time.sleep(0.2)
    assert capfd.readouterr().err == ""


def test_idle_connections_time_out_and_threads_are_bounded(folder):
    base = threading.active_count()
    with ReviewServer(folder, port=0, idle_timeout=1.0, max_connections=8) as srv:
        host, port = srv.httpd.server_address[:2]
        idle = [socket.create_connection((host, port), timeout=10) for _ in range(50)]
        time.sleep(0.3)
        assert threading.active_count() - base <= 8 + 1  # handlers + the accept loop
        # past the limit a connection is told at once that the server is busy
        answers = []
        for sock in idle[8:]:
            answers.append(sock.recv(200))
        assert all(a.startswith(b"HTTP/1.1 503") for a in answers), answers
        # an idle connection is closed by the server after the timeout
        t0 = time.monotonic()
        assert idle[0].recv(100) == b"" and time.monotonic() - t0 < 5
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        assert get_json(srv, "/api/progress")["total"] == 6  # the slots were freed
        assert threading.active_count() - base <= 8 + 1


def test_symlink_swapped_in_after_start_is_refused(folder, server, tmp_path):
    secret = tmp_path / "secret.nii.gz"
    medaug.save(medaug.Image(np.full((16, 16, 16), 4321, np.int16)), secret)
    target = folder / "images" / "vol_aug001.nii.gz"
    target.unlink()
    target.symlink_to(secret)
    for path in ("/api/slice?sample=vol:1&which=augmented", "/api/meta?sample=vol:1"):
        status, _, body = call(server, path)
        assert status == 403, (path, status)
        assert b"secret" not in body and str(tmp_path).encode() not in body
    # a swapped folder too
    shutil.move(folder / "images", tmp_path / "elsewhere")
    (folder / "images").symlink_to(tmp_path / "elsewhere")
    assert call(server, "/api/slice?sample=vol:2&which=augmented")[0] == 403


def test_unreadable_image_error_names_no_path(folder, server):
    (folder / "images" / "vol_aug001.nii.gz").unlink()
    status, _, body = call(server, "/api/slice?sample=vol:1&which=augmented")
    assert status == 404 and b"vol:1" in body
    assert b"vol_aug001" not in body and str(folder).encode() not in body and b"images/" not in body


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; return it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_full_disk_answers_507_on_verdicts_and_keeps_serving(folder, tmp_path):
    disk = tmp_path / "disk"
    why = try_mount(disk, "size=2m")
    if why:
        pytest.skip(why)
    try:
        small = Path(shutil.copytree(folder, disk / "out"))
        with ReviewServer(small, port=0) as srv:
            post_verdict(srv, "vol:0", "realistic")
            filler = _fill(disk)
            status, _, body = call(srv, "/api/verdict", {"sample": "vol:1", "verdict": "realistic", "comment": "x" * 3000})
            assert status == 507, body
            message = json.loads(body)["error"]
            assert "full" in message and "not saved" in message
            assert get_json(srv, "/api/progress")["reviewed"] == 1  # reads still work
            assert [s["verdict"] for s in get_json(srv, "/api/samples")["samples"] if s["id"] == "vol:0"] == ["realistic"]
            assert call(srv, "/api/slice?sample=vol:1&which=augmented")[0] == 200  # images too
            filler.unlink()  # space again: the same answer is saved
            post_verdict(srv, "vol:1", "realistic", "x" * 3000)
            assert get_json(srv, "/api/progress")["reviewed"] == 2
    finally:
        umount(disk)


def test_non_loopback_bind_needs_allow_remote(folder, capsys):
    with pytest.raises(ParameterError, match="allow-remote"):
        ReviewServer(folder, host="0.0.0.0", port=0)
    assert cli_main(["review", str(folder), "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--allow-remote" in err
    with cli_server(str(folder), "--host", "0.0.0.0", "--port", "0", "--allow-remote") as (proc, result):
        assert "sample(s)" in proc.stdout.readline()
    warning = [line for line in result["err"].splitlines() if "warning" in line]
    assert len(warning) == 1 and "patient images" in warning[0] and "network" in warning[0]


@pytest.mark.parametrize("body", [b"[" * 60000, b'{"a":' * 10000 + b"1" + b"}" * 10000,
                                  b'{"sample": "vol:0", "verdict": "realistic", "comment": ' + b"[" * 100 + b"]" * 100 + b"}"])
def test_deep_json_is_a_clear_400(server, body):
    status, _, raw = call(server, "/api/verdict", body)
    assert status == 400 and "nested" in json.loads(raw)["error"]


def test_json_within_limits_still_works(server):
    status, _, raw = call(server, "/api/verdict", b'{"sample": "vol:0", "verdict": "realistic", "comment": "[[{\\"a\\": 1}]]"}')
    assert status == 200, raw


def test_a_fifo_as_the_job_description_does_not_block_the_start(folder):
    """The page reads the job's modality from .medaug/job.json: a FIFO there blocked the server's start forever."""
    import signal

    job = folder / ".medaug" / "job.json"
    job.unlink()
    os.mkfifo(job)

    def hung(*_):
        raise TimeoutError("the server's start blocked on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        srv = ReviewServer(folder, port=0).start()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    srv.stop()
