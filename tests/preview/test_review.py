"""The review page: API, verdict store, blind mode, summary, path traversal, and a headless-Chromium run."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from medaug.cli.main import main as cli_main
from medaug.preview.review import ReviewServer, VerdictStore, summarize

from ._util import call, cli_server, get_json, post_verdict

CHROMIUM = "/usr/bin/chromium"
PNG = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- API
def test_samples_slices_and_page(server):
    listing = get_json(server, "/api/samples")
    ids = [s["id"] for s in listing["samples"]]
    assert sorted(ids) == sorted(f"{c}:{i}" for c in ("slice", "vol") for i in range(3))
    assert listing["mode"] == "blind"
    info3 = get_json(server, "/api/info?sample=vol:1")
    assert info3["ndim"] == 3 and info3["augmented"]["shape"] == [16, 16, 16]
    lo, hi = info3["window"]
    assert lo < hi
    for which in ("original", "augmented"):
        for axis in (0, 1, 2):
            status, ctype, png = call(server, f"/api/slice?sample=vol:1&which={which}&axis={axis}&index=7&window=-100,200")
            assert status == 200 and ctype == "image/png" and png.startswith(PNG)
    status, ctype, png = call(server, "/api/slice?sample=slice%3A0&which=original")  # encoded ':' and defaults
    assert status == 200 and png.startswith(PNG)
    status, ctype, page = call(server, "/")
    assert status == 200 and b"btn-realistic" in page and ctype.startswith("text/html")
    for name in ("review.js", "review.css"):
        assert call(server, f"/static/{name}")[0] == 200


def test_verdict_progress_and_restart(folder, server):
    assert get_json(server, "/api/progress") == {"total": 6, "reviewed": 0, "realistic": 0, "not_realistic": 0, "reviewer": ""}
    out = post_verdict(server, "vol:0", "realistic", "fine")
    assert out["progress"]["reviewed"] == 1
    post_verdict(server, "slice:2", "not_realistic", "edges look stretched")
    post_verdict(server, "slice:2", "not_realistic", "changed my mind about the comment")  # replaces, not adds
    assert get_json(server, "/api/progress")["reviewed"] == 2
    server.stop()
    again = ReviewServer(folder, port=0).start()  # a new server on the same folder
    try:
        assert again.app.store.journal_mode() == "wal"
        progress = get_json(again, "/api/progress")
        assert (progress["reviewed"], progress["realistic"], progress["not_realistic"]) == (2, 1, 1)
        by_id = {s["id"]: s for s in get_json(again, "/api/samples")["samples"]}
        assert by_id["slice:2"]["verdict"] == "not_realistic"
        assert by_id["slice:2"]["comment"] == "changed my mind about the comment"
        assert by_id["vol:1"]["verdict"] is None
    finally:
        again.stop()
    assert (folder / "review.sqlite").exists()


def test_blind_mode_hides_transforms_until_verdict(folder, server):
    _, _, raw = call(server, "/api/samples")
    assert b"Affine" not in raw and b"Noise" not in raw and b"rot" not in raw
    assert b"Affine" not in call(server, "/api/info?sample=vol:2")[2]
    out = post_verdict(server, "vol:2", "realistic")
    assert out["sample"]["transforms"] == ["Affine", "Noise"] and "rot" in out["sample"]["description"]
    items = get_json(server, "/api/samples")["samples"]
    shown = [s["id"] for s in items if "transforms" in s]
    assert shown == ["vol:2"]
    open_srv = ReviewServer(folder, port=0, open_mode=True).start()
    try:
        listing = get_json(open_srv, "/api/samples")
        assert listing["mode"] == "open" and all(s["transforms"] == ["Affine", "Noise"] for s in listing["samples"])
    finally:
        open_srv.stop()


def test_reviewer_names_keep_verdicts_apart(folder):
    with ReviewServer(folder, port=0, reviewer="dr_a") as a:
        post_verdict(a, "vol:0", "realistic")
    with ReviewServer(folder, port=0, reviewer="dr_b") as b:
        assert get_json(b, "/api/progress")["reviewed"] == 0
        post_verdict(b, "vol:0", "not_realistic")
    assert sorted((v["reviewer"], v["verdict"]) for v in VerdictStore(folder).all()) == [
        ("dr_a", "realistic"), ("dr_b", "not_realistic")]


def test_summary_numbers(folder, server, capsys):
    # rotation -1 (0-3 deg): both realistic; 4 (3-6): one of two; 8 (6-10): none
    verdicts = {"slice:0": "realistic", "vol:0": "realistic", "slice:1": "realistic", "vol:1": "not_realistic",
                "slice:2": "not_realistic", "vol:2": "not_realistic"}
    for sid, v in verdicts.items():
        post_verdict(server, sid, v)
    rows = summarize(folder)
    table = {(r.transform, r.parameter, r.range): (r.judged, r.realistic) for r in rows}
    assert table[("Affine", "", "")] == (6, 3)
    assert table[("Affine", "|rotation| (deg)", "0–3°")] == (2, 2)
    assert table[("Affine", "|rotation| (deg)", "3–6°")] == (2, 1)
    assert table[("Affine", "|rotation| (deg)", "6–10°")] == (2, 0)
    assert table[("Noise", "", "")] == (6, 3)
    noise_bins = [v for (t, p, _), v in table.items() if t == "Noise" and p == "std"]
    assert [n for n, _ in noise_bins] == [2, 2, 2]  # terciles of six distinct values
    assert cli_main(["review", str(folder), "--summary"]) == 0
    text = capsys.readouterr().out
    assert "6 of 6 sample(s) judged" in text
    assert any(line.split()[-3:] == ["2", "1", "50%"] and "3–6°" in line for line in text.splitlines())


def test_summary_without_verdicts_and_cli_errors(folder, tmp_path, capsys):
    assert cli_main(["review", str(folder), "--summary"]) == 0
    assert "no verdicts yet" in capsys.readouterr().out
    assert cli_main(["review", str(tmp_path / "nowhere"), "--summary"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medaug review: error:") and len(err.strip().splitlines()) == 1


TRAVERSALS = [
    "/api/slice?sample=../../etc/passwd",
    "/api/slice?sample=..%2f..%2fetc%2fpasswd&which=original",
    "/api/slice?sample=/etc/passwd&which=original",
    "/api/info?sample=/etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/static/..%2f..%2fsetup.py",
    "/static/%252e%252e/x",
    "/static/%252e%252e%252fpyproject.toml",
    "//etc/passwd",
    "/static//etc/passwd",
    "/static/..\\..\\pyproject.toml",
    "/static/%5c..%5cpyproject.toml",
    "/static/..%5c..%5cpyproject.toml",
    "/static/%2e%2e%5c%2e%2e%5cpyproject.toml",
    "/etc/passwd",
    "/static/etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/manifest.csv",
    "/review.sqlite",
    "/images/vol_aug000.nii.gz",
    "/static/../server.py",
    "/static/index.html%00.py",
    "/api/../api/samples",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_file_outside_the_routes(server, method):
    secrets = (b"root:", b"[project]", b"build-backend", b"case_id,index", b"SQLite format")
    for path in TRAVERSALS:
        status, ctype, body = call(server, path, b"{}" if method == "POST" else None, method=method)
        assert status in (403, 404), (path, status)
        assert ctype == "application/json" and "error" in json.loads(body), path
        assert not any(s in body for s in secrets), path


def test_bad_requests_get_clear_4xx(server):
    cases = [
        ("/api/verdict", b"{not json", 400),
        ("/api/verdict", b"\xff\xfe", 400),
        ("/api/verdict", [1, 2], 400),
        ("/api/verdict", {"sample": "vol:0", "verdict": "maybe"}, 400),
        ("/api/verdict", {"sample": "vol:0"}, 400),
        ("/api/verdict", {"sample": "vol:0", "verdict": "realistic", "comment": 5}, 400),
        ("/api/verdict", {"sample": "vol:0", "verdict": "realistic", "extra": 1}, 400),
        ("/api/verdict", {"sample": "nope:9", "verdict": "realistic"}, 404),
        ("/api/verdict", b"x" * (70 * 1024), 413),
        ("/api/slice", None, 400),  # no sample
        ("/api/slice?sample=nope:1", None, 404),
        ("/api/slice?sample=vol:0&which=both", None, 400),
        ("/api/slice?sample=vol:0&axis=3", None, 400),
        ("/api/slice?sample=vol:0&axis=x", None, 400),
        ("/api/slice?sample=vol:0&axis=0&index=16", None, 400),
        ("/api/slice?sample=vol:0&axis=0&index=-1", None, 400),
        ("/api/slice?sample=slice:0&axis=1", None, 400),
        ("/api/slice?sample=vol:0&window=5,1", None, 400),
        ("/api/slice?sample=vol:0&window=nan,1", None, 400),
        ("/api/slice?sample=vol:0&window=abc", None, 400),
        ("/api/slice?sample=vol:0&sample=vol:1", None, 400),
        ("/api/nothing", None, 404),
        ("/nothing", None, 404),
    ]
    for path, body, expected in cases:
        status, ctype, raw = call(server, path, body)
        assert status == expected, (path, body if not isinstance(body, bytes) else body[:20], status, raw[:200])
        assert ctype == "application/json" and json.loads(raw)["error"], path
    assert call(server, "/api/verdict", {"sample": "vol:0", "verdict": "realistic"}, ctype="text/plain")[0] == 415
    assert call(server, "/api/verdict")[0] == 405  # GET
    assert call(server, "/api/samples", method="PUT")[0] == 405
    assert call(server, "/api/samples", method="DELETE")[0] == 405
    assert call(server, "/api/samples", headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
    assert get_json(server, "/api/progress")["reviewed"] == 0  # nothing was stored by the bad requests


# ---------------------------------------------------------------- headless Chromium
class DevTools:
    """A minimal Chrome DevTools Protocol client over a stdlib websocket (RFC 6455, client side)."""

    def __init__(self, ws_url: str) -> None:
        rest = ws_url.split("://", 1)[1]
        hostport, path = rest.split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        self.next_id = 0

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def _send(self, text: str) -> None:
        payload = text.encode()
        n = len(payload)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                  bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _recv(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            if b0 & 0x0F == 0x8:
                raise ConnectionError("websocket closed by the browser")
            if b0 & 0x0F in (0x9, 0xA):  # ping/pong: ignore
                continue
            data += payload
            if b0 & 0x80:  # FIN
                return json.loads(data)

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self._send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = self._recv()
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(expression)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def chromium(tmp_path):
    profile = tmp_path / "chromium-profile"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--window-size=1280,1000", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"]
    proc = subprocess.Popen([CHROMIUM, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > end:
                pytest.fail("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as res:
            targets = json.loads(res.read())
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _open(tools: DevTools, url: str) -> None:
    tools.send("Page.enable")
    tools.send("Page.navigate", url=url)
    tools.wait_for("document.body && document.body.dataset.ready === '1'")
    _images_loaded(tools)


def _images_loaded(tools: DevTools) -> None:
    tools.wait_for("document.body.dataset.pending === '0' && "
                   "[...document.querySelectorAll('.pair img')].every(i => i.complete && i.naturalWidth > 0)")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="/usr/bin/chromium is not installed (tests/preview/ensure_chromium.sh)")
def test_page_in_headless_chromium(folder, chromium, tmp_path):
    srv = ReviewServer(folder, port=0).start()
    try:
        _open(chromium, srv.url)
        assert chromium.eval("document.getElementById('progress').textContent").startswith("0 / 6 reviewed")
        assert "hidden" in chromium.eval("document.getElementById('reveal').textContent")
        chromium.eval("document.getElementById('comment').value = 'looks like a real scan'")
        chromium.eval("document.querySelector('#btn-realistic').click()")
        chromium.wait_for("document.getElementById('status').textContent.startsWith('Saved')")
        assert get_json(srv, "/api/progress")["realistic"] == 1
        judged = [s for s in get_json(srv, "/api/samples")["samples"] if s["verdict"]]
        assert len(judged) == 1 and judged[0]["comment"] == "looks like a real scan"
        assert "rot" in chromium.eval("document.getElementById('reveal').textContent")  # revealed after the verdict
        # move to a 3D sample, change plane, slice and window: the images follow
        for _ in range(6):
            shown = chromium.eval("document.body.dataset.shown")
            chromium.eval("document.getElementById('next').click()")
            chromium.wait_for(f"document.body.dataset.shown !== '{shown}'")
            _images_loaded(chromium)
            if not chromium.eval("document.getElementById('plane-box').hidden"):
                break
        else:
            pytest.fail("no 3D sample reached")
        chromium.eval("document.querySelector('input[name=plane][value=\"1\"]').click()")
        _images_loaded(chromium)
        assert "axis=1" in chromium.eval("document.getElementById('img-augmented').src")
        chromium.eval("const s = document.getElementById('slice'); s.value = '5'; s.dispatchEvent(new Event('input'))")
        chromium.wait_for("document.getElementById('img-original').src.includes('index=5')")
        chromium.eval("const w = document.getElementById('width'); w.value = '1200'; w.dispatchEvent(new Event('input'))")
        chromium.wait_for("document.getElementById('img-augmented').src.includes('window=')"
                          " && document.getElementById('width-text').textContent === '1200'")
        _images_loaded(chromium)
        assert chromium.eval("document.getElementById('slice-text').textContent") == "6 / 16"
        shot = base64.b64decode(chromium.send("Page.captureScreenshot", format="png")["data"])
        assert shot.startswith(PNG)
        (tmp_path / "review.png").write_bytes(shot)
        Path("/tmp/review.png").write_bytes(shot)
    finally:
        srv.stop()
    again = ReviewServer(folder, port=0).start()  # restart: the page shows the stored verdict
    try:
        _open(chromium, again.url)
        assert chromium.eval("document.getElementById('progress').textContent").startswith("1 / 6 reviewed")
        chromium.eval("document.getElementById('view-grid').click()")
        chromium.wait_for("document.querySelectorAll('.card').length === 6")
        assert chromium.eval("document.querySelectorAll('.card.realistic').length") == 1
    finally:
        again.stop()


def test_cli_serves_prints_the_url_and_stops_on_ctrl_c(folder):
    with cli_server(str(folder), "--port", "0", "--open") as (proc, result):
        first = proc.stdout.readline()
        assert "6 sample(s), open mode" in first
        line = proc.stdout.readline()
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url + "api/samples", timeout=10) as res:
            assert json.loads(res.read())["mode"] == "open"
    assert result["code"] == 0, result["err"]
    assert "stopped" in result["out"] and "Traceback" not in result["err"]
