"""systemd integration in a few lines of Python, no dependency: the sd_notify protocol
(READY, STATUS, WATCHDOG, STOPPING) and journald's native protocol.

Both are one AF_UNIX datagram of newline-separated KEY=VALUE assignments. Outside systemd
(no NOTIFY_SOCKET, no journal socket) every call does nothing.
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import socket
import time
import struct
from typing import Any

from .text import clean

JOURNAL_SOCKET = "/run/systemd/journal/socket"


def journal_socket_path() -> str:
    """journald's socket; TRACKER_JOURNAL_SOCKET overrides it (tests, unusual layouts)."""
    return os.environ.get("TRACKER_JOURNAL_SOCKET") or JOURNAL_SOCKET


def journal_available() -> bool:
    import stat

    try:
        return stat.S_ISSOCK(os.stat(journal_socket_path()).st_mode)
    except OSError:
        return False
F_ADD_SEALS = 1033
SEALS = 0x1 | 0x2 | 0x4 | 0x8  # SEAL, SHRINK, GROW, WRITE


def _address(name: str) -> str | None:
    if name.startswith("@"):
        return "\0" + name[1:]  # a Linux abstract socket
    if name.startswith("/"):
        return name
    return None  # vsock: and others are not ours to speak


def notify(*assignments: str) -> bool:
    """Send `KEY=VALUE` assignments to the service manager; False if not under systemd.

    Values must already be one line: use status() for text that comes from outside.
    """
    address = _address(os.environ.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    payload = "\n".join(assignments).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(payload)
    except OSError:
        return False  # the manager went away: nothing a poller can do about it
    return True


def status(text: str) -> str:
    """A STATUS= assignment for untrusted text: one line, printable, at most 200 characters.
    A newline here would start another assignment (READY=, STOPPING=, MAINPID=…)."""
    return "STATUS=" + clean(text, limit=200)


# Intention-named calls (nobodd's style): what the daemon means, not the protocol's words.

def ready(text: str) -> bool:
    """The service is up: the database is open and every provider has its schedule."""
    return notify("READY=1", status(text))


def reloading() -> bool:
    """A reload (SIGHUP) begins; systemctl shows "reloading" until ready_again()."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def ready_again() -> bool:
    return notify("READY=1")


def stopping(text: str) -> bool:
    return notify("STOPPING=1", status(text))


def alive() -> bool:
    """The watchdog ping: the loop is making progress."""
    return notify("WATCHDOG=1")


def set_status(text: str) -> bool:
    return notify(status(text))


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half the timeout), or None if none is asked for."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6


# -- journald -------------------------------------------------------------------------

# syslog priorities for our levels (sd-daemon(3): "<N>" prefixes, PRIORITY=N fields)
PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}


def stdout_is_journal(fd: int = 1) -> bool:
    """True when $JOURNAL_STREAM names the device:inode of `fd`: systemd connected this
    process's stdout to journald, which then reads "<N>" line prefixes as priorities."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in stream.split(":"))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def field_name(key: str) -> str | None:
    """TRACKER_<KEY> for a record's key; None if it cannot be a journal field name
    (A-Z, 0-9, _; not starting with a digit or _; at most 64 characters)."""
    name = "TRACKER_" + "".join(ch if ch.isalnum() and ch.isascii() else "_" for ch in key).upper()
    return name if len(name) <= 64 else None


def encode(fields: dict[str, Any]) -> bytes:
    """The native protocol's serialisation: KEY=VALUE lines, or KEY\\n<le64 size>VALUE for a
    value that contains a newline (kept exact: the journal stores it as one field)."""
    out = bytearray()
    for key, value in fields.items():
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, str):
            data = value.encode("utf-8", "replace")
        else:
            data = json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")
        name = key.encode("ascii")
        if b"\n" in data:
            out += name + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name + b"=" + data + b"\n"
    return bytes(out)


class JournalSender:
    """Sends records to journald as native-protocol datagrams. A record too large for one
    datagram goes as a sealed memfd, as systemd's own sd_journal_send does."""

    def __init__(self, path: str | None = None):
        self.path = path or journal_socket_path()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def send(self, fields: dict[str, Any]) -> None:
        payload = encode(fields)
        try:
            self.sock.sendto(payload, self.path)
        except OSError as e:
            if e.errno not in (90, 105):  # EMSGSIZE, ENOBUFS: too big for a datagram
                raise
            fd = os.memfd_create("tracker-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            try:
                os.write(fd, payload)
                fcntl.fcntl(fd, F_ADD_SEALS, SEALS)
                self.sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))], 0, self.path)
            finally:
                os.close(fd)

    def close(self) -> None:
        self.sock.close()
