"""The live status pages and Prometheus /metrics of Python servers
(docs/dashboard.md): the same routes, page and limits as the C++
net::HttpFront, on the standard library's http.server.

A source is anything with ``name``, ``doc``, ``status()`` (the JSON
snapshot the page draws) and ``collect()`` (Prometheus metric families, as
prometheus_client's custom collectors give them). The page's HTML, script and
style are the ones the C++ program compiles in (src/acheron/net/web/),
installed into the package as ``acheron/web/`` by ``pip install .``.

The HTTP threads only call the sources' status() and collect(); they never
touch a server's sockets. Limits: at most ``max_connections`` requests
served at once (more get 503 at once), at most ``max_event_streams`` event
streams (a further one gets 503, so pages and /metrics keep threads),
requests up to 64 KiB (larger: 413), GET only, 5 s socket timeouts, one
request per connection (HTTP/1.0).
"""

from __future__ import annotations

import json
import pathlib
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Sequence, Tuple

MAX_REQUEST_BYTES = 64 << 10  # request line and headers
SOCKET_TIMEOUT_S = 5.0
CHART_JS = pathlib.Path("/usr/share/javascript/chart.js/chart.js")  # Debian's libjs-chart.js
_ASSETS = ("index.html", "service.html", "dashboard.js", "dashboard.css")
_NAME = r"[A-Za-z0-9_.\-]+"
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8"}


def web_dir() -> pathlib.Path:
    """Where the page's files are: the package's ``web/`` (installed by
    ``pip install .`` from src/acheron/net/web/), else, for a package run
    from a source checkout, that source directory itself."""
    here = pathlib.Path(__file__).resolve().parent
    candidates = [here / "web", here.parents[1] / "src" / "acheron" / "net" / "web"]
    for d in candidates:
        if all((d / f).is_file() for f in _ASSETS):
            return d
    raise FileNotFoundError(
        f"the status page's files ({', '.join(_ASSETS)}) are not in {candidates[0]} (the package was not "
        "installed by its build, which copies them from src/acheron/net/web/); install the package with "
        "`pip install .` (or `make python-install`) from a checkout")


def parse_http_address(address: str) -> Tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT; port 0 takes any free port."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]\s]+):(\d+)", address or "")
    if not m:
        raise ValueError(f"status page address {address!r} is malformed (expected HOST:PORT or [IPv6]:PORT); "
                         "use e.g. 127.0.0.1:8080, or 127.0.0.1:0 for any free port")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if int(port) > 65535:
        raise ValueError(f"status page address {address!r} has port {port} (ports go up to 65535); "
                         "use a port from 1 to 65535, or 0 for any free port")
    return host, int(port)


class _TooLarge(Exception):
    pass


class _CappedReader:
    """The request's reader: refuses to read more than MAX_REQUEST_BYTES
    of request line and headers."""

    def __init__(self, raw):
        self.raw = raw
        self.left = MAX_REQUEST_BYTES

    def readline(self, limit: int = -1) -> bytes:
        if self.left <= 0:
            raise _TooLarge()
        n = self.left + 1 if limit < 0 else min(limit, self.left + 1)
        line = self.raw.readline(n)
        self.left -= len(line)
        if self.left < 0:
            raise _TooLarge()
        return line

    def __getattr__(self, name):
        return getattr(self.raw, name)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    timeout = SOCKET_TIMEOUT_S
    server: "_Server"

    def setup(self):
        super().setup()
        self.rfile = _CappedReader(self.rfile)

    def handle_one_request(self):
        self.command, self.request_version = None, "HTTP/1.0"
        self.close_connection = True
        try:
            super().handle_one_request()
        except _TooLarge:
            self.close_connection = True
            self._json_error(413, f"the request is larger than {MAX_REQUEST_BYTES} bytes")
        except (ConnectionError, socket.timeout):
            self.close_connection = True

    def log_message(self, format, *args):  # noqa: A002 - http.server's name
        pass  # the front serves quietly; errors reach the client as JSON

    def _send(self, code: int, body: bytes, ctype: str, headers: Sequence[Tuple[str, str]] = ()) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, value) -> None:
        self._send(code, json.dumps(value, separators=(",", ":")).encode(), "application/json")

    def _json_error(self, code: int, message: str) -> None:
        try:
            self._json(code, {"error": message, "status": code})
        except OSError:
            pass

    def _refuse_method(self):
        self._json_error(405, f"{self.command} is not served here; the status pages answer GET only")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def do_HEAD(self):
        self._refuse_method()

    def do_GET(self):
        front = self.server.front
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/", "/index.html"):
                return self._asset("index.html")
            m = re.fullmatch(rf"/service/({_NAME})", path)
            if m:
                if front.find(m.group(1)) is None:
                    return self._json_error(404, f"no service named {m.group(1)}")
                return self._asset("service.html")
            m = re.fullmatch(rf"/static/({_NAME})", path)
            if m:
                return self._static(m.group(1))
            if path == "/api/services":
                return self._json(200, [{"name": s.name, "doc": s.doc} for s in front.sources])
            m = re.fullmatch(rf"/api/status/({_NAME})", path)
            if m:
                s = front.find(m.group(1))
                if s is None:
                    return self._json_error(404, f"no service named {m.group(1)}")
                return self._json(200, front.snapshot(s))
            if path == "/metrics":
                text = front.metrics_text()
                return self._send(200, text, "text/plain; version=0.0.4; charset=utf-8")
            m = re.fullmatch(rf"/events/({_NAME})", path)
            if m:
                return self._events(m.group(1))
            return self._json_error(404, "not found")
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a source that failed: an answer, and the front serves on
            self._json_error(500, f"the request could not be answered ({type(e).__name__}: {e})")

    def _asset(self, name: str) -> None:
        body = self.server.front.assets[name]
        self._send(200, body, _CONTENT_TYPES[pathlib.Path(name).suffix], [("Cache-Control", "no-cache")])

    def _static(self, name: str) -> None:
        if name == "chart.js":
            try:
                body = CHART_JS.read_bytes()
            except OSError:
                return self._json_error(404, "chart.js is not installed (libjs-chart.js)")
            return self._send(200, body, "text/javascript; charset=utf-8")
        if name not in self.server.front.assets or name.endswith(".html"):
            return self._json_error(404, f"no file named {name}")
        return self._asset(name)

    def _events(self, name: str) -> None:
        front = self.server.front
        if front.find(name) is None:
            return self._json_error(404, f"no service named {name}")
        if not front.take_event_stream():
            return self._json_error(503, f"too many event streams open ({front.max_event_streams}); close a "
                                         "page or try again later")
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            while not front.stopping.is_set():
                s = front.find(name)
                if s is None:  # the service has gone: end the stream, the page reconnects
                    return
                event = "data: " + json.dumps(front.snapshot(s), separators=(",", ":")) + "\n\n"
                self.wfile.write(event.encode())
                self.wfile.flush()
                front.stopping.wait(front.event_interval)
        except OSError:
            pass  # the page went away
        finally:
            front.give_back_event_stream()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    front: "HttpFront"

    def __init__(self, address, front: "HttpFront"):
        self.front = front
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        if not self.front.take_connection():
            try:  # answered at once, without a thread
                request.settimeout(1.0)
                body = b'{"error":"the status server is busy; try again later","status":503}'
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.front.give_back_connection()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.front.give_back_connection()

    def handle_error(self, request, client_address):
        pass  # a client's broken connection is not the server's error


class HttpFront:
    """Serves sources' pages, JSON, events and /metrics on address
    (HOST:PORT; loopback unless told otherwise). Binds on construction (a bad
    or busy address raises at once); start() serves on a thread; stop() ends
    open event streams and the thread."""

    def __init__(self, address: str, sources: Sequence, *, max_connections: int = 8, max_event_streams: int = 4,
                 event_interval: float = 1.0):
        if max_event_streams < 1 or max_connections <= max_event_streams:
            raise ValueError(f"max_connections ({max_connections}) must exceed max_event_streams "
                             f"({max_event_streams}, at least 1) so that pages and /metrics keep threads")
        try:
            import prometheus_client.exposition  # noqa: F401
        except ImportError as e:
            raise RuntimeError("the status page's /metrics needs prometheus_client, which is not installed "
                               f"({e}); install Debian's python3-prometheus-client (or "
                               "`pip install 'acheron[status]'`)") from e
        self.assets: Dict[str, bytes] = {f: (web_dir() / f).read_bytes() for f in _ASSETS}
        self.sources = list(sources)
        self.max_connections = max_connections
        self.max_event_streams = max_event_streams
        self.event_interval = event_interval
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections = 0
        self._event_streams = 0
        host, port = parse_http_address(address)
        try:
            self._httpd = _Server((host, port), self)
        except OSError as e:
            raise OSError(e.errno, f"the status page cannot listen on {address} ({e.strerror or e}); use a free "
                                   "port of a local address, or port 0 for any free port") from e
        self.host, self.port = self._httpd.server_address[:2]
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "HttpFront":
        if self._thread is None and not self.stopping.is_set():
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                            daemon=True, name="acheron-http")
            self._thread.start()
        return self

    def stop(self, timeout: float = SOCKET_TIMEOUT_S + 1) -> None:
        """Stops serving: event streams end at once, other requests within
        the socket timeout."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout)
        self._httpd.server_close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._connections == 0:
                    return
            time.sleep(0.01)

    # -- for the handlers --

    def find(self, name: str):
        return next((s for s in self.sources if s.name == name), None)

    def snapshot(self, source) -> dict:
        try:
            j = dict(source.status())
        except Exception as e:  # a source's failure is shown on its page, not a broken response
            j = {"error": f"the status could not be taken ({type(e).__name__}: {e})"}
        j["service"] = source.name
        j.setdefault("doc", source.doc)
        return j

    def metrics_text(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest
        registry = CollectorRegistry(auto_describe=False)
        for s in self.sources:
            registry.register(s)
        return generate_latest(registry)

    def take_connection(self) -> bool:
        with self._lock:
            if self._connections >= self.max_connections:
                return False
            self._connections += 1
            return True

    def give_back_connection(self) -> None:
        with self._lock:
            self._connections -= 1

    def take_event_stream(self) -> bool:
        with self._lock:
            if self._event_streams >= self.max_event_streams:
                return False
            self._event_streams += 1
            return True

    def give_back_event_stream(self) -> None:
        with self._lock:
            self._event_streams -= 1


__all__: List[str] = ["HttpFront", "parse_http_address", "web_dir", "MAX_REQUEST_BYTES"]
