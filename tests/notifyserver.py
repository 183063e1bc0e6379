"""Notification receivers on 127.0.0.1 for tests: an HTTP server that records every POST and
fails on demand (500, 429 with Retry-After, hang, slow, refused connections), and a minimal
SMTP server (EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT) that records mail.
Stdlib only; every fault is bounded in time."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from statusserver import SendMixin

HANG = 4.0  # seconds a "hang" keeps the request unanswered
ANSWERS = {"slack": (200, b"ok", "text/plain"), "discord": (204, b"", "text/plain"),
           "teams": (202, b"", "text/plain")}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request was read

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class Receiver:
    """POST receiver. `script` holds faults for the next requests, one each ("500", "429",
    "hang", "slow"); `fault` applies to every request while set; `delay` slows every answer.
    A request that fails is not recorded in `got` (the sender must try again)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.got: list[Received] = []
        self.failed: list[tuple[str, str, float]] = []  # (path, fault, time)
        self.script: deque[str] = deque()
        self.fault: str | None = None
        self.delay = 0.0
        self.retry_after = "1"
        self.lock = threading.Lock()
        self.httpd: _Quiet | None = None
        self.requests = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(SendMixin, BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                at = time.time()
                with receiver.lock:
                    receiver.requests += 1
                    fault = receiver.script.popleft() if receiver.script else receiver.fault
                if receiver.delay:
                    time.sleep(receiver.delay)
                if fault == "slow":
                    time.sleep(1.5)
                    fault = None
                if fault == "hang":
                    receiver.failed.append((self.path, fault, at))
                    time.sleep(HANG)
                    self.close_connection = True
                    return
                if fault in ("500", "429", "503"):
                    receiver.failed.append((self.path, fault, at))
                    headers = {"Retry-After": receiver.retry_after} if fault != "500" else {}
                    self._send(int(fault), b"<html><body>nope</body></html>", "text/html", headers)
                    return
                with receiver.lock:
                    receiver.got.append(Received(self.path, dict(self.headers.items()), body, at))
                status, answer, ctype = ANSWERS.get(self.path.strip("/").split("/")[0], (200, b"{}", "application/json"))
                self._send(status, answer, ctype)


        self.httpd = _Quiet(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listening socket: connections are refused until start()."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.path == path]

    def event_ids(self, path: str) -> list[str]:
        return [r.headers.get("X-Tracker-Event-Id") or event_id_of(path, r) for r in self.on(path)]

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def event_id_of(path: str, r: Received) -> str:
    """The event id a chat payload carries (each type shows it somewhere)."""
    data = r.json
    if "blocks" in data:  # Slack: the last context element ends with `event_id`
        return data["blocks"][-1]["elements"][-1]["text"].rsplit("`", 2)[-2]
    if "embeds" in data:
        return data["embeds"][0]["footer"]["text"]
    if data.get("type") == "message":
        return data["attachments"][0]["content"]["body"][-1]["text"]
    return data["event_id"]


# -- SMTP -------------------------------------------------------------------------------------

@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    tls: bool
    login: tuple[str, str] | None
    at: float


@dataclass
class SmtpReceiver:
    """Records each mail; `tls` (an SSLContext with a certificate) enables STARTTLS."""

    tls: ssl.SSLContext | None = None
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fail_next: int = 0  # answer the next N mails' DATA with a 451

    def __post_init__(self) -> None:
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def setup(self) -> None:
                super().setup()
                self.secure = False
                self.login: tuple[str, str] | None = None

            def say(self, line: str) -> None:
                self.connection.sendall(line.encode() + b"\r\n")

            def readline(self) -> str:
                return self.rfile.readline(65536).decode("utf-8", "replace").rstrip("\r\n")

            def handle(self) -> None:
                self.say("220 127.0.0.1 test SMTP")
                sender, rcpts = "", []
                while True:
                    line = self.readline()
                    if not line:
                        return
                    verb = line.split(" ", 1)[0].upper()
                    arg = line[len(verb):].strip()
                    if verb in ("EHLO", "HELO"):
                        extras = ["AUTH PLAIN LOGIN"] if self.secure or receiver.tls is None else []
                        if receiver.tls is not None and not self.secure:
                            extras.append("STARTTLS")
                        lines = ["127.0.0.1", "8BITMIME", "SMTPUTF8", *extras]
                        for i, text in enumerate(lines):
                            self.say(("250 " if i == len(lines) - 1 else "250-") + text)
                    elif verb == "STARTTLS" and receiver.tls is not None:
                        self.say("220 go ahead")
                        tls = receiver.tls.wrap_socket(self.connection, server_side=True)
                        self.connection = self.request = tls
                        self.rfile = tls.makefile("rb")
                        self.secure = True
                    elif verb == "AUTH":
                        mech, _, rest = arg.partition(" ")
                        if mech.upper() == "PLAIN":
                            raw = rest or (self.say("334 ") or self.readline())
                            _, user, password = base64.b64decode(raw).decode().split("\0")
                        else:
                            self.say("334 VXNlcm5hbWU6")
                            user = base64.b64decode(self.readline()).decode()
                            self.say("334 UGFzc3dvcmQ6")
                            password = base64.b64decode(self.readline()).decode()
                        self.login = (user, password)
                        self.say("235 ok")
                    elif verb == "MAIL":
                        sender, rcpts = arg.split(":", 1)[1].split()[0].strip("<>"), []
                        self.say("250 ok")
                    elif verb == "RCPT":
                        rcpts.append(arg.split(":", 1)[1].strip().strip("<>"))
                        self.say("250 ok")
                    elif verb == "DATA":
                        self.say("354 end with .")
                        data = []
                        while True:
                            raw = self.rfile.readline(1 << 20)
                            if raw in (b".\r\n", b".\n", b""):
                                break
                            data.append(raw[1:] if raw.startswith(b"..") else raw)
                        with receiver.lock:
                            if receiver.fail_next:
                                receiver.fail_next -= 1
                                self.say("451 try again later")
                                continue
                            message = email.message_from_bytes(b"".join(data), policy=email.policy.default)
                            receiver.mails.append(Mail(sender, rcpts, message, self.secure, self.login, time.time()))
                        self.say("250 queued")
                    elif verb == "RSET":
                        sender, rcpts = "", []
                        self.say("250 ok")
                    elif verb == "NOOP":
                        self.say("250 ok")
                    elif verb == "QUIT":
                        self.say("221 bye")
                        return
                    else:
                        self.say("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def __enter__(self) -> "SmtpReceiver":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
