"""A local web page where a radiologist judges augmented samples: standard library ``http.server``.

Routes (every error answer is JSON ``{"error": "..."}`` with a 4xx status):

``GET /``                      the page (``static/index.html``)
``GET /static/NAME``           ``review.js`` or ``review.css`` (a fixed list; nothing else)
``GET /api/samples``           the samples; transform names only in open mode or once judged
``GET /api/info?sample=ID``    shapes of the original and augmented image, default window
``GET /api/slice?sample=ID&which=original|augmented&axis=0|1|2&index=K&window=lo,hi``
                               one slice as PNG (axis 0 axial, 1 coronal, 2 sagittal)
``POST /api/verdict``          JSON ``{"sample", "verdict": "realistic"|"not_realistic", "comment"}``
``GET /api/progress``          counts of judged samples

Security: the server never opens a path taken from a request.  Images are
found through the sample id in the manifest (augmented files inside DIR, the
originals only as listed in the manifest), static files through a fixed table.
A request path holding ``..``, a backslash or NUL, even percent-encoded once or
twice, answers 403.  With a loopback bind address, requests whose Host header
names another host answer 403 (DNS rebinding), and a verdict must be posted as
``application/json`` (a cross-site form cannot post one without a CORS
preflight, which this server never grants).  Every request resolves the image
path again and refuses a path that changed since start (a symlink swapped in),
so nothing outside the folder (or the originals the manifest lists) is served.
A JSON body is at most 64 KB and 8 levels deep.  It binds to loopback only,
unless ``allow_remote`` is given.

Robustness: an idle connection is closed after ``idle_timeout`` seconds, at
most ``max_connections`` are served at once (one more is answered 503 and
closed), an aborted request prints nothing, and a full disk answers verdicts
507 while pages and images are still served.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import math
import socket
import sys
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from ...errors import MedaugError
from ..figures import describe_history, to_lps, window_for
from .store import VERDICTS, ReviewSample, StoreError, VerdictStore, read_samples

__all__ = ["ReviewApp", "ReviewServer"]

_STATIC = {"index.html": "text/html; charset=utf-8", "review.js": "text/javascript; charset=utf-8",
           "review.css": "text/css; charset=utf-8"}
_MAX_BODY = 64 * 1024
_MAX_DEPTH = 8
_MAX_COMMENT = 4000


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _LRU:
    """A small thread-safe LRU cache of loaded images (keyed by the manifest path)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, make):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


def _modality_of_job(directory: Path) -> str | None:
    """The pipeline's modality from ``DIR/.medaug/job.json`` (``None`` when unknown)."""
    try:
        job = json.loads((directory / ".medaug" / "job.json").read_text(encoding="utf-8"))
        pipe = job.get("pipeline")
        if isinstance(pipe, dict):
            if pipe.get("modality"):
                return str(pipe["modality"])
            if pipe.get("preset"):
                return str(pipe["preset"]).split("-")[0].split("_")[0].lower()
    except (OSError, ValueError, AttributeError):
        pass
    return None


class ReviewApp:
    """The state behind the server: samples, verdicts, image cache."""

    def __init__(self, directory: str | Path, *, open_mode: bool = False, reviewer: str | None = None,
                 modality: str | None = None, cache_size: int = 16) -> None:
        from ...engine.config import _ensure_registered

        _ensure_registered()  # describe_history needs the transform classes
        self.directory = Path(directory).resolve()
        self.samples: dict[str, ReviewSample] = read_samples(self.directory)
        self.store = VerdictStore(self.directory).hold_open()
        self.open_mode = open_mode
        self.reviewer = reviewer or ""
        self.modality = modality or _modality_of_job(self.directory)
        self.cache = _LRU(cache_size)
        order = list(self.samples)
        if not open_mode:  # blind: a fixed shuffle, so a grid's order does not tell the parameters
            order.sort(key=lambda sid: hashlib.sha256(sid.encode()).hexdigest())
        self.order = order

    # ------------------------------------------------------------ data
    def image(self, sample: ReviewSample, which: str):
        from ...data.io import load

        path = _unchanged(sample.original if which == "original" else sample.augmented)
        try:
            return self.cache.get(str(path), lambda: load(path))
        except MedaugError as exc:  # the reason (with the path) for the terminal; the page gets no path
            print(f"medaug review: {exc}", file=sys.stderr)
            raise HttpError(404, f"the {which} image of sample {sample.id} cannot be read") from None

    def sample(self, query: dict[str, list[str]]) -> ReviewSample:
        sid = _one(query, "sample")
        if sid not in self.samples:
            raise HttpError(404, f"unknown sample {sid[:80]!r}")
        return self.samples[sid]

    def describe(self, s: ReviewSample, verdict: dict[str, Any] | None) -> dict[str, Any]:
        item: dict[str, Any] = {"id": s.id, "case_id": s.case_id, "index": s.index,
                                "verdict": verdict["verdict"] if verdict else None,
                                "comment": verdict["comment"] if verdict else ""}
        if self.open_mode or verdict:
            item["transforms"] = [t["name"] for t in s.transforms]
            item["description"] = describe_history(s.history)
        return item

    def samples_list(self) -> dict[str, Any]:
        verdicts = self.store.of_reviewer(self.reviewer)
        items = [self.describe(self.samples[sid], verdicts.get(sid)) for sid in self.order]
        return {"mode": "open" if self.open_mode else "blind", "reviewer": self.reviewer, "samples": items}

    def progress(self) -> dict[str, Any]:
        verdicts = {k: v for k, v in self.store.of_reviewer(self.reviewer).items() if k in self.samples}
        ok = sum(v["verdict"] == "realistic" for v in verdicts.values())
        return {"total": len(self.samples), "reviewed": len(verdicts), "realistic": ok,
                "not_realistic": len(verdicts) - ok, "reviewer": self.reviewer}

    def info(self, query: dict[str, list[str]]) -> dict[str, Any]:
        s = self.sample(query)
        out: dict[str, Any] = {"id": s.id}
        orig = self.image(s, "original")
        lo, hi = window_for(orig, self.modality if self.modality else ("ct" if float(orig.array.min()) <= -900 else None))
        lo_all = float(min(orig.array.min(), self.image(s, "augmented").array.min()))
        hi_all = float(max(orig.array.max(), self.image(s, "augmented").array.max()))
        out["window"] = [lo, hi]
        out["range"] = [lo_all, hi_all if hi_all > lo_all else lo_all + 1]
        for which in ("original", "augmented"):
            img = self.image(s, which)
            arr, _ = to_lps(img.array, img.grid)
            out[which] = {"shape": list(arr.shape), "ndim": img.ndim}
        out["ndim"] = orig.ndim
        return out

    def slice_png(self, query: dict[str, list[str]]) -> bytes:
        from PIL import Image as PILImage

        s = self.sample(query)
        which = _one(query, "which", "augmented")
        if which not in ("original", "augmented"):
            raise HttpError(400, "which must be 'original' or 'augmented'")
        img = self.image(s, which)
        arr, spacing = to_lps(np.asarray(img.array, dtype=np.float32), img.grid)
        axis = _int(query, "axis", 0)
        n = arr.ndim
        if n == 2:
            if axis != 0:
                raise HttpError(400, "a 2D image has only axis 0")
            plane, (sy, sx) = arr, spacing
        else:
            if axis not in (0, 1, 2):
                raise HttpError(400, "axis must be 0 (axial), 1 (coronal) or 2 (sagittal)")
            size = arr.shape[axis]
            index = _int(query, "index", size // 2)
            if not 0 <= index < size:
                raise HttpError(400, f"index must be in 0..{size - 1} for axis {axis}, got {index}")
            sz, sy_, sx_ = spacing
            if axis == 0:
                plane, (sy, sx) = arr[index], (sy_, sx_)
            elif axis == 1:
                plane, (sy, sx) = np.flipud(arr[:, index, :]), (sz, sx_)
            else:
                plane, (sy, sx) = np.flipud(arr[:, :, index]), (sz, sy_)
        if "window" in query:
            lo, hi = _window(_one(query, "window"))
        else:
            orig = self.image(s, "original")
            lo, hi = window_for(orig, self.modality or ("ct" if float(orig.array.min()) <= -900 else None))
        grey = np.clip((plane - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
        h, w = grey.shape
        height = max(1, round(h * float(sy) / float(sx)))  # square physical pixels
        factor = max(1, math.ceil(256 / max(height, w)))
        pic = PILImage.fromarray(np.ascontiguousarray(grey)).resize((w * factor, height * factor), PILImage.NEAREST)
        buf = io.BytesIO()
        pic.save(buf, format="PNG")
        return buf.getvalue()

    def verdict(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object {sample, verdict, comment}")
        sid = body.get("sample")
        if not isinstance(sid, str):
            raise HttpError(400, "'sample' must be a string")
        if sid not in self.samples:
            raise HttpError(404, f"unknown sample {sid[:80]!r}")
        verdict = body.get("verdict")
        if verdict not in VERDICTS:
            raise HttpError(400, f"'verdict' must be one of {', '.join(VERDICTS)}")
        comment = body.get("comment", "")
        if comment is None:
            comment = ""
        if not isinstance(comment, str) or len(comment) > _MAX_COMMENT:
            raise HttpError(400, f"'comment' must be a string of at most {_MAX_COMMENT} characters")
        unknown = set(body) - {"sample", "verdict", "comment"}
        if unknown:
            raise HttpError(400, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        saved = self.store.put(sid, verdict, comment, self.reviewer)
        item = self.describe(self.samples[sid], saved)
        return {"saved": True, "sample": item, "progress": self.progress()}


def _unchanged(path: Path) -> Path:
    """``path`` (resolved when the manifest was read) if it still resolves to itself, else 403.

    A symlink swapped in after start, for the file or any folder above it, changes the resolution.
    """
    try:
        now = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        now = None
    if now != path:
        raise HttpError(403, "the image file was replaced by a link since the server started; restart it")
    return path


def _store_error(exc: StoreError) -> HttpError:
    """A database failure as an answer that names no path: 507 for a full disk, else 503."""
    if exc.disk_full:
        return HttpError(507, "the disk holding the review database is full: your answer was not saved; "
                              "free some space and answer again")
    return HttpError(503, "the review database cannot be used right now (see the server's terminal)")


def _json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _one(query: dict[str, list[str]], key: str, default: str | None = None) -> str:
    values = query.get(key)
    if not values:
        if default is None:
            raise HttpError(400, f"missing query parameter '{key}'")
        return default
    if len(values) > 1:
        raise HttpError(400, f"query parameter '{key}' given more than once")
    return values[0]


def _int(query: dict[str, list[str]], key: str, default: int) -> int:
    raw = _one(query, key, str(default))
    try:
        return int(raw)
    except ValueError:
        raise HttpError(400, f"'{key}' must be an integer, got {raw[:40]!r}") from None


def _window(raw: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in raw.split(","))
    except ValueError:
        raise HttpError(400, f"window must be 'lo,hi' (numbers), got {raw[:40]!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise HttpError(400, "window must be finite numbers with lo < hi")
    return lo, hi


def _suspicious(raw_path: str) -> bool:
    """``..``, backslashes, NUL or a doubled slash, decoded up to three times."""
    p = raw_path
    for _ in range(4):
        low = p.lower()
        if ".." in p or "\\" in p or "\x00" in p or "//" in p or "%5c" in low or "%00" in low:
            return True
        q = unquote(p)
        if q == p:
            break
        p = q
    return False


class _Handler(BaseHTTPRequestHandler):
    server_version = "medaug-review"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    app: ReviewApp  # set on the subclass made by ReviewServer
    quiet = True

    # ------------------------------------------------------------ plumbing
    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unsupported method, ...) as JSON too."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send(code, json.dumps({"error": message or phrase}).encode(), "application/json", close=True)

    def _send(self, status: int, body: bytes, ctype: str, *, close: bool = False, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not head and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _check_host(self) -> None:
        if not is_loopback(self.server.server_address[0]):  # type: ignore[attr-defined]
            return
        header = self.headers.get("Host", "")
        name = header.rsplit(":", 1)[0] if not header.startswith("[") else header.split("]")[0] + "]"
        if header and not is_loopback(name):  # no Host (HTTP/1.0 tools) is fine: rebinding always sends one
            raise HttpError(403, f"Host {header[:60]!r} is not this local server")

    def _route(self, method: str) -> None:
        try:
            self._check_host()
            if _suspicious(self.path):
                raise HttpError(403, "path not allowed")
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=20)
            for sid in query.get("sample", []):  # an unknown sample is 404 whatever the route or method
                if sid not in self.app.samples:
                    raise HttpError(404, f"unknown sample {sid[:80]!r}")
            if method in ("GET", "HEAD"):
                self._get(path, query)
            elif method == "POST":
                self._post(path)
            else:
                raise HttpError(405, f"method {method} not allowed")
        except StoreError as exc:
            self._error(_store_error(exc), method)
        except HttpError as exc:
            self._error(exc, method)
        except (ConnectionError, TimeoutError):  # the client went away: nothing to answer
            self.close_connection = True
        except ValueError as exc:  # parse_qs: too many fields, bad encoding
            self._json(400, {"error": f"bad request: {exc}"})
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the thread silently
            print(f"medaug review: internal error on {self.command} {urlsplit(self.path).path[:80]}: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
            self._json(500, {"error": f"internal error: {type(exc).__name__}"})

    def _error(self, exc: HttpError, method: str) -> None:
        # an unread request body must not be taken for the next request
        self._send(exc.status, json.dumps({"error": exc.message}).encode(), "application/json", close=method == "POST")

    def _get(self, path: str, query: dict[str, list[str]]) -> None:
        app = self.app
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path == "/api/samples":
            return self._json(200, app.samples_list())
        if path == "/api/progress":
            return self._json(200, app.progress())
        if path == "/api/info":
            return self._json(200, app.info(query))
        if path == "/api/slice":
            return self._send(200, app.slice_png(query), "image/png")
        if path == "/api/verdict":
            raise HttpError(405, "POST a verdict to /api/verdict")
        raise HttpError(404, "not found")

    def _static(self, name: str) -> None:
        if name not in _STATIC:  # a fixed table: no path from the request is ever opened
            raise HttpError(404, "not found")
        body = resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
        self._send(200, body, _STATIC[name])

    def _post(self, path: str) -> None:
        if path != "/api/verdict":
            raise HttpError(404 if not path.startswith("/api/") else 405, "not found" if not path.startswith("/api/") else "method POST not allowed here")
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HttpError(415, "send the verdict as Content-Type: application/json")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HttpError(411, "Content-Length required")
        try:
            n = int(length)
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if n < 0 or n > _MAX_BODY:
            self.close_connection = True
            raise HttpError(413, f"body larger than {_MAX_BODY} bytes")
        raw = self.rfile.read(n)
        if _json_depth(raw) > _MAX_DEPTH:
            raise HttpError(400, f"JSON body nested more than {_MAX_DEPTH} levels deep")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "malformed JSON body") from None
        self._json(200, self.app.verdict(body))

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_OPTIONS(self) -> None:
        self._route("OPTIONS")


_BUSY_BODY = b'{"error": "the review server is busy: too many open connections; try again"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
         b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; aborted connections print nothing."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # listen backlog: a burst of connections is queued, not dropped for a SYN retry

    def __init__(self, address: tuple[str, int], handler: type[_Handler], max_connections: int) -> None:
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):  # answered from the accept loop: small, never blocks for long
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        threading.Thread(target=self._serve, args=(request, client_address), daemon=True).start()

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # a browser cancelled a request or a client vanished: normal, not worth a line
        print(f"medaug review: error on a connection from {client_address[0]}: {type(exc).__name__}: {exc}",
              file=sys.stderr)


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


class ReviewServer:
    """The review page over one expansion folder.

    Parameters
    ----------
    directory : str or Path
        Output folder of ``medaug expand`` (holds ``manifest.csv``).
    host, port : str, int
        Bind address; a non-loopback ``host`` needs ``allow_remote=True``.  Port 0 picks a free one.
    idle_timeout : float
        Seconds a connection may stay silent (idle keep-alive, or a request sent too slowly) before it is closed.
    max_connections : int
        Connections served at once; another one is answered 503 and closed.

    Raises
    ------
    ParameterError
        A non-loopback ``host`` without ``allow_remote``.

    >>> srv = ReviewServer("out", port=0).start()   # in a thread  # doctest: +SKIP
    >>> srv.url; srv.stop()                                         # doctest: +SKIP
    """

    def __init__(self, directory: str | Path, *, host: str = "127.0.0.1", port: int = 8765, open_mode: bool = False,
                 reviewer: str | None = None, modality: str | None = None, quiet: bool = True,
                 allow_remote: bool = False, idle_timeout: float = 20.0, max_connections: int = 32) -> None:
        from ...errors import ParameterError

        if not is_loopback(host) and not allow_remote:
            raise ParameterError(f"--host {host} is not a loopback address: the page would serve patient images to "
                                 "the network; pass --allow-remote to allow it")
        self.app = ReviewApp(directory, open_mode=open_mode, reviewer=reviewer, modality=modality)
        handler = type("Handler", (_Handler,), {"app": self.app, "quiet": quiet, "timeout": idle_timeout})
        try:
            self.httpd = _BoundedServer((host, port), handler, max_connections)
        except OSError as exc:
            self.app.store.close()
            raise MedaugError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()
            self.app.store.close()

    def start(self) -> ReviewServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="medaug-review", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()
        self.app.store.close()

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
