"""The status page server of tests/test_systemd_boot.py, run as a systemd unit inside the
throw-away namespace (whose loopback is its own), by Debian's /usr/bin/python3, stdlib only.

    pageserver.py DIRECTORY PORT [ADDRESS]

Serves DIRECTORY on ADDRESS:PORT (default 127.0.0.1): GET /a/b.json answers DIRECTORY/a/b.json
with an ETag (and 304 to a matching If-None-Match), as Statuspage does. If DIRECTORY/a/b.json.status
exists, its number is the answer instead (e.g. 500), with a small HTML body, so the test can
make the page fail without stopping the server. Sends READY=1 to $NOTIFY_SOCKET once it
listens (Type=notify), so units ordered after it find the port open.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def notify(state: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(address)
        s.sendall(state.encode())


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    port = int(sys.argv[2])
    address = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = (root / self.path.split("?")[0].lstrip("/")).resolve()
            if root not in path.parents:
                self._send(404, b"not found", "text/plain")
                return
            status_file = path.with_name(path.name + ".status")
            try:
                status = int(status_file.read_text().strip())
            except (OSError, ValueError):
                status = 200
            if status != 200:
                self._send(status, b"<html><body>Internal Server Error</body></html>", "text/html")
                return
            try:
                body = path.read_bytes()
            except OSError:
                self._send(404, b"not found", "text/plain")
                return
            tag = '"' + hashlib.sha1(body).hexdigest() + '"'
            if self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(200, body, "application/json; charset=utf-8", {"ETag": tag})

        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: object) -> None:
            # One line per request on stderr, i.e. in this unit's journal.
            sys.stderr.write("%s\n" % (fmt % args))
            sys.stderr.flush()

    httpd = ThreadingHTTPServer((address, port), Handler)
    httpd.daemon_threads = True
    notify(f"READY=1\nSTATUS=serving {root} on {address}:{port}")
    httpd.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
