"""Helpers of the review tests: one HTTP request with the path sent exactly as given; the CLI server in a subprocess."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def call(srv, path: str, body=None, *, method: str | None = None, ctype: str = "application/json", headers=None):
    """(status, content type, body bytes) of one request, the path sent exactly as given."""
    host, port = srv.httpd.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        hdrs = dict(headers or {})
        if data is not None:
            hdrs.setdefault("Content-Type", ctype)
        conn.request(method or ("POST" if data is not None else "GET"), path, body=data, headers=hdrs)
        res = conn.getresponse()
        return res.status, res.getheader("Content-Type"), res.read()
    finally:
        conn.close()


def get_json(srv, path: str):
    status, ctype, body = call(srv, path)
    assert status == 200 and ctype == "application/json", (status, body)
    return json.loads(body)


def post_verdict(srv, sample: str, verdict: str, comment: str = ""):
    status, _, body = call(srv, "/api/verdict", {"sample": sample, "verdict": verdict, "comment": comment})
    assert status == 200, body
    return json.loads(body)


@contextmanager
def cli_server(*args: str) -> Iterator[tuple[subprocess.Popen, dict]]:
    """``medaug review ARGS`` in a subprocess, stopped by Ctrl-C at the end of the block.

    Yields the process and a dict that holds ``out``, ``err`` and ``code`` once the block is left.
    """
    # Ctrl-C as in a terminal, also when the suite itself runs in the background (nohup, '&'), whose children
    # inherit an ignored SIGINT and so never see the KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "medaug.cli.main", "review", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    result: dict = {}
    try:
        yield proc, result
        proc.send_signal(signal.SIGINT)
        result["out"], result["err"] = proc.communicate(timeout=20)
        result["code"] = proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
