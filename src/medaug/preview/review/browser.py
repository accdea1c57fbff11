"""Drive a headless Chromium over the DevTools protocol: the review page's end-to-end tests and its screenshots.

Standard library only (a minimal RFC 6455 websocket client); needs a Chromium
binary (Debian's ``/usr/bin/chromium``).  Not used by the review server itself.

>>> with Chromium() as page:                     # doctest: +SKIP
...     page.open("http://127.0.0.1:8765/")
...     png = page.screenshot()
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "Chromium", "DevTools"]

CHROMIUM = "/usr/bin/chromium"


class DevTools:
    """A Chrome DevTools Protocol client of one page target; events are kept in :attr:`events`."""

    def __init__(self, ws_url: str) -> None:
        rest = ws_url.split("://", 1)[1]
        hostport, path = rest.split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"websocket handshake refused: {head[:80]!r}")
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

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
        if n < 126:
            header = bytes([0x81, 0x80 | n])
        elif n < 65536:
            header = bytes([0x81, 0x80 | 126]) + struct.pack(">H", n)
        else:
            header = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _recv(self) -> dict[str, Any]:
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
            if b0 & 0x0F in (0x9, 0xA):  # ping/pong
                continue
            data += payload
            if b0 & 0x80:  # FIN
                return json.loads(data)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result; events arriving meanwhile go to :attr:`events`."""
        self.next_id += 1
        my_id = self.next_id
        self._send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = self._recv()
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression[:200]}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll a JavaScript expression until it is truthy; TimeoutError after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(expression)
            time.sleep(0.05)

    def open(self, url: str, ready: str = "document.body && document.body.dataset.ready === '1'") -> None:
        """Load ``url`` and wait until ``ready`` holds, then until the page is idle (:meth:`settle`)."""
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        self.wait_for(ready)
        self.settle()

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until the page has no request in flight and no drawing pending (``body[data-pending]`` 0, two frames)."""
        self.wait_for("document.body.dataset.pending === '0' && new Promise(r => requestAnimationFrame(() => "
                      "requestAnimationFrame(() => r(document.body.dataset.pending === '0'))))", timeout)

    def mouse(self, kind: str, x: float, y: float, **extra: Any) -> None:
        """A mouse event at page coordinates (CSS pixels): ``mousePressed``, ``mouseMoved``, ``mouseReleased``, ``mouseWheel``."""
        self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    def key(self, key: str) -> None:
        """Press and release one key (a character, or ``ArrowUp``, ``PageDown``, ...)."""
        text = key if len(key) == 1 else ""
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key=key, text=text if kind == "keyDown" else "")

    def screenshot(self, clip: dict[str, float] | None = None) -> bytes:
        """The page (or a clip of it: x, y, width, height in CSS pixels) as PNG bytes."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode(self.send("Page.captureScreenshot", **params)["data"])

    def close(self) -> None:
        self.sock.close()


class Chromium:
    """A headless Chromium with one page, as a context manager yielding its :class:`DevTools`.

    Parameters
    ----------
    width, height : int
        Window size in CSS pixels.
    binary : str
        The Chromium executable.
    """

    def __init__(self, width: int = 1280, height: int = 900, binary: str = CHROMIUM) -> None:
        self.width, self.height, self.binary = width, height, binary
        self.proc: subprocess.Popen[bytes] | None = None
        self.tools: DevTools | None = None
        self.profile: str | None = None

    def __enter__(self) -> DevTools:
        if not Path(self.binary).exists():
            raise FileNotFoundError(f"{self.binary} not found: install Debian's chromium (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="medaug-chromium-")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                 f"--window-size={self.width},{self.height}", "--remote-debugging-port=0",
                 f"--user-data-dir={self.profile}", "about:blank"]
        self.proc = subprocess.Popen([self.binary, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(self.profile) / "DevToolsActivePort"
            end = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("chromium did not start its DevTools endpoint")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as res:
                targets = json.loads(res.read())
            page = next(t for t in targets if t["type"] == "page")
            self.tools = DevTools(page["webSocketDebuggerUrl"])
            self.tools.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                            deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.__exit__()
            raise
        return self.tools

    def __exit__(self, *exc: object) -> None:
        if self.tools is not None:
            self.tools.close()
            self.tools = None
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
