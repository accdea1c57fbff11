"""A local web page where a radiologist judges augmented samples: standard library ``http.server``.

The routes of each mode are listed in :mod:`.app`; besides them, ``GET /``
answers the mode's page and ``GET /static/NAME`` its scripts and style (a
fixed table; nothing else).  Every error answer is JSON ``{"error": "..."}``
with a 4xx or 5xx status and names no file or folder.

Security: the server never opens a path taken from a request.  Images are
found through the sample id in the manifest (augmented files inside DIR, the
originals only as listed in the manifest) or a Turing token, static files
through a fixed table.  A request path holding ``..``, a backslash or NUL, even
percent-encoded once or twice, answers 403.  With a loopback bind address,
requests whose Host header names another host answer 403 (DNS rebinding), and
answers must be posted as ``application/json`` (a cross-site form cannot post
one without a CORS preflight, which this server never grants).  Every request
resolves the image path again and refuses a path that changed since start (a
symlink swapped in).  A JSON body is at most 64 KB and 8 levels deep.  The
server binds to loopback only, unless ``allow_remote`` is given.

Robustness: an idle connection is closed after ``idle_timeout`` seconds, at
most ``max_connections`` are served at once (one more is answered 503 and
closed), an aborted request prints nothing, and a full disk answers 507 to
verdicts and Turing answers while pages and images are still served.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ...engine.config import json_depth
from ...errors import MedaugError
from ._http import HttpError
from .app import TuringApp, VerdictApp, make_app
from .store import StoreError

__all__ = ["ReviewServer", "is_loopback"]

_HTML, _JS = "text/html; charset=utf-8", "text/javascript; charset=utf-8"
_STATIC = {"index.html": _HTML, "turing.html": _HTML, "viewer.js": _JS, "review.js": _JS, "turing.js": _JS,
           "review.css": "text/css; charset=utf-8"}
_MAX_BODY = 64 * 1024
_MAX_DEPTH = 8


def _store_error(exc: StoreError) -> HttpError:
    """A database failure as an answer that names no path: 507 for a full disk, else 503."""
    if exc.disk_full:
        return HttpError(507, "the disk holding the review database is full: your answer was not saved; "
                              "free some space and answer again")
    return HttpError(503, "the review database cannot be used right now (see the server's terminal)")


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
    app: VerdictApp | TuringApp  # set on the subclass made by ReviewServer
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
            self.app.validate(query)
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
            return self._static(app.page)
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path in app.GET:
            body, ctype = getattr(app, app.GET[path])(query)
            return self._send(200, body, ctype)
        if path in app.POST:
            raise HttpError(405, f"POST to {path}")
        raise HttpError(404, "not found")

    def _static(self, name: str) -> None:
        if name not in _STATIC:  # a fixed table: no path from the request is ever opened
            raise HttpError(404, "not found")
        body = resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
        self._send(200, body, _STATIC[name])

    def _post(self, path: str) -> None:
        if path not in self.app.POST:
            api = path.startswith("/api/")
            raise HttpError(405 if api else 404, "method POST not allowed here" if api else "not found")
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HttpError(415, "send the answer as Content-Type: application/json")
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
        if json_depth(raw) > _MAX_DEPTH:
            raise HttpError(400, f"JSON body nested more than {_MAX_DEPTH} levels deep")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "malformed JSON body") from None
        self._json(200, getattr(self.app, self.app.POST[path])(body))

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
    mode : {"blind", "open", "turing"}
        Verdicts with the transforms hidden until given (blind) or shown (open), or the visual Turing test
        (needs ``reviewer``).  See :mod:`.app`.
    reviewer : str, optional
        The reviewer's (reader's) name, stored with every answer.
    modality : str, optional
        ``ct``, ``mri``, ``xray``, ...; default: the expansion job's, else guessed from the first image.
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

    def __init__(self, directory: str | Path, *, host: str = "127.0.0.1", port: int = 8765, mode: str = "blind",
                 reviewer: str | None = None, modality: str | None = None, quiet: bool = True,
                 allow_remote: bool = False, idle_timeout: float = 20.0, max_connections: int = 32) -> None:
        from ...errors import ParameterError

        if not is_loopback(host) and not allow_remote:
            raise ParameterError(f"--host {host} is not a loopback address: the page would serve patient images to "
                                 "the network; pass --allow-remote to allow it")
        self.app = make_app(directory, mode=mode, reviewer=reviewer, modality=modality)
        handler = type("Handler", (_Handler,), {"app": self.app, "quiet": quiet, "timeout": idle_timeout})
        try:
            self.httpd = _BoundedServer((host, port), handler, max_connections)
        except OSError as exc:
            self.app.close()
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
            self.app.close()

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
        self.app.close()

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
