"""A real HTTP server on 127.0.0.1 serving status-page payloads that tests change between
polls, and the faults real pages show (FAULTS). Stdlib only; every fault is bounded in time
and bytes, so a test always ends by itself."""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


FIXTURES = Path(__file__).parent / "fixtures"
BOUND = 8.0  # seconds: the longest any fault keeps a connection busy

# What each fault does; `Route.fault` names one.
FAULTS = {
    "500": "HTTP 500 with an HTML error page",
    "503": "HTTP 503 with Retry-After: 3",
    "429": "HTTP 429 with Retry-After: 3",
    "hang": "accepts the request and answers nothing (for up to 8 s)",
    "trickle": "sends headers, then one byte of body every 0.2 s",
    "endless": "a chunked body that never ends (until 8 s or the client leaves)",
    "gzipbomb": "200 with 20 MiB of gzip-compressed spaces (about 20 KiB on the wire)",
    "html": "200 with text/html (a CDN's maintenance page)",
    "truncated": "200 with the page's JSON cut in half",
    "wrongshape": "200 with real JSON of another platform (Slack's status API)",
    "redirectloop": "302 to itself, forever",
    "badscheme": "302 to an ftp:// URL",
}
_BOMB = gzip.compress(b" " * (20 * 1024 * 1024), compresslevel=9)


@dataclass
class Route:
    body: bytes = b"{}"
    status: int = 200
    content_type: str = "application/json"
    hang_seconds: float = 0.0  # sleep before answering (bounded), to simulate a slow page
    etag: bool = True
    requests: int = 0
    conditional_hits: int = 0  # 304s served
    active: int = 0  # requests being answered now
    max_active: int = 0  # the most ever answered at once
    fault: str | None = None  # one of FAULTS, or None to serve `body`
    times: list[float] = field(default_factory=list)  # time.monotonic() of each request
    # Answers from the request's path and query instead of `body` (a JSON-able payload), for
    # endpoints whose answer depends on the query (incident.io's start_at/end_at windows).
    respond: Any = None
    queries: list[str] = field(default_factory=list)  # the path and query of each request
    location: str | None = None  # answer 301 to here (with a short HTML body)
    error_body: bytes | None = None  # the body of a non-200 answer (default: a short HTML page)
    # A kept connection's next request is read and the connection closed, unanswered (a server
    # closing an idle connection just as the client sends on it).
    drop_kept: bool = False

    def set_json(self, payload: Any) -> None:
        self.body = json.dumps(payload).encode()
        self.status = 200
        self.content_type = "application/json"


class SendMixin:
    """`_send(status, body, content type, headers)` for a BaseHTTPRequestHandler (shared by the
    test servers)."""

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (deadline, size cap, shutdown) is what the faults are for.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@dataclass
class StatusServer:
    routes: dict[str, Route] = field(default_factory=dict)
    request_started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0  # TCP connections accepted (HTTP/1.1 keeps them open between requests)
    # HTTPS: a server-side ssl.SSLContext (its certificate for 127.0.0.1); None serves plain HTTP.
    tls: Any = None
    resumed: int = 0  # TLS handshakes that resumed a session the client offered
    closed: int = 0  # connections ended (by either side)
    idle: float | None = None  # close a connection idle this many seconds (as servers do)
    keep_alive: str | None = None  # a Keep-Alive header on every answer ("timeout=5")

    def __post_init__(self) -> None:
        server = self

        class Handler(SendMixin, BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on keep-alive
            timeout = server.idle  # the socket's timeout: an idle connection is closed
            served = 0  # requests on this connection

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                with server.lock:
                    server.connections += 1
                    server.resumed += bool(getattr(self.connection, "session_reused", False))

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with server.lock:
                        server.closed += 1

            def end_headers(self) -> None:
                if server.keep_alive:
                    self.send_header("Keep-Alive", server.keep_alive)
                super().end_headers()

            def do_GET(self) -> None:
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                server.request_started.set()
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                with server.lock:
                    route.times.append(time.monotonic())
                    route.queries.append(self.path)
                    route.requests += 1
                    route.active += 1
                    route.max_active = max(route.max_active, route.active)
                try:
                    self._answer(route)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (deadline, size cap): what the fault is for
                finally:
                    with server.lock:
                        route.active -= 1

            def _answer(self, route: Route) -> None:
                self.served += 1
                if route.drop_kept and self.served > 1:
                    self.close_connection = True
                    return
                if route.fault:
                    self._fault(route)
                    return
                if route.hang_seconds:
                    time.sleep(route.hang_seconds)
                if route.location is not None:
                    self._send(301, b"<html><body>moved</body></html>", "text/html", {"Location": route.location})
                    return
                if route.status != 200:
                    self._send(route.status, route.error_body or b"<html><body>error</body></html>", "text/html")
                    return
                if route.respond is not None:
                    self._send(200, json.dumps(route.respond(self.path)).encode(), "application/json")
                    return
                tag = '"' + hashlib.sha1(route.body).hexdigest() + '"'
                if route.etag and self.headers.get("If-None-Match") == tag:
                    route.conditional_hits += 1
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._send(200, route.body, route.content_type, {"ETag": tag} if route.etag else {})

            def _fault(self, route: Route) -> None:
                fault = route.fault
                if fault == "500":
                    self._send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
                elif fault in ("503", "429"):
                    self._send(int(fault), b"<html><body>slow down</body></html>", "text/html",
                               {"Retry-After": "3"})
                elif fault == "hang":
                    time.sleep(BOUND)
                elif fault == "trickle":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    for byte in route.body[: int(BOUND / 0.2)]:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.2)
                elif fault == "endless":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"[" + b"0," * 32767 + b"0"
                    ends = time.monotonic() + BOUND
                    while time.monotonic() < ends:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                elif fault == "gzipbomb":
                    self._send(200, _BOMB, "application/json", {"Content-Encoding": "gzip"})
                elif fault == "html":
                    self._send(200, b"<!DOCTYPE html><html><body>We'll be back soon</body></html>", "text/html")
                elif fault == "truncated":
                    self._send(200, route.body[: len(route.body) // 2], "application/json")
                elif fault == "wrongshape":
                    body = (FIXTURES / "slack-status-current-2021-07-30T0655Z.json").read_bytes()
                    self._send(200, body, "application/json")
                elif fault == "redirectloop":
                    self._send(302, b"", "text/plain", {"Location": self.path})
                elif fault == "badscheme":
                    self._send(302, b"", "text/plain", {"Location": "ftp://127.0.0.1/incidents.json"})
                else:
                    raise ValueError(f"unknown fault {fault!r}")


        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self.httpd.socket = self.tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, path: str, payload: Any = None) -> Route:
        r = self.routes.setdefault(path, Route())
        if payload is not None:
            r.set_json(payload)
        return r

    def __enter__(self) -> "StatusServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
