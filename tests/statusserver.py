"""A real HTTP server on 127.0.0.1 serving status-page payloads that tests change between
polls. Stdlib only; bounded: a hanging route sleeps at most `hang_seconds`."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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

    def set_json(self, payload: Any) -> None:
        self.body = json.dumps(payload).encode()
        self.status = 200
        self.content_type = "application/json"


@dataclass
class StatusServer:
    routes: dict[str, Route] = field(default_factory=dict)
    request_started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                route = server.routes.get(self.path.split("?")[0])
                server.request_started.set()
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                with server.lock:
                    route.requests += 1
                    route.active += 1
                    route.max_active = max(route.max_active, route.active)
                try:
                    self._answer(route)
                finally:
                    with server.lock:
                        route.active -= 1

            def _answer(self, route: Route) -> None:
                if route.hang_seconds:
                    time.sleep(route.hang_seconds)
                if route.status != 200:
                    self._send(route.status, b"<html><body>error</body></html>", "text/html")
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

            def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

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
