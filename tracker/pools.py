"""Connections that live across polls: one pool per host, shared by every worker thread.

Real deployments poll hundreds of HTTPS hosts. A `requests.Session` per thread with the
default adapter keeps pools for 10 hosts, so with more hosts every poll evicted another host's
pool and paid a TCP and TLS handshake (docs/contract.md §1). Here one `PoolAdapter` (a
requests `HTTPAdapter`, so requests stays the HTTP client and requests-mock and proxies keep
working) owns one urllib3 `PoolManager` sized to the hosts polled, mounted on one Session that
every thread uses. Beneath it:

- one `ssl.SSLContext`, built once with the CA bundle loaded once (requests would load the
  whole bundle into a fresh context on every new connection), that offers each host the TLS
  session its last connection received, so a reconnect resumes instead of a full handshake;
- connection classes that count what they open, by host and by handshake (`plain`, `full`,
  `resumed`), for `tracker_connections_opened_total`;
- pools that honour the server's keep-alive: how long a server keeps an idle connection is
  learned (its `Keep-Alive: timeout=…`, or the idle time after which a kept one was found
  dropped); a connection idle nearly that long is closed, not used (the server may be closing
  it as the request goes out), and `sweep()` closes such connections between polls rather than
  keep what the server has dropped;
- a lean send for a request with no proxy: urllib3's pool directly, a bare `Response` around
  its answer, and one retry when a kept connection turns out to have been closed by the server
  as the request went out (the GET is idempotent; nothing was answered).
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import resource
import ssl
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.certs import where as certifi_bundle
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

MIN_POOLS = 32  # host pools kept at least (redirect targets and probes come and go)
# A kept connection idle for this share of how long its server keeps idle connections is closed
# rather than used: the server may be closing it as the request goes out.
KEEP_MARGIN = 0.9
_KEEP_ALIVE = re.compile(r"timeout\s*=\s*(\d+)", re.IGNORECASE)
_RETRIES = Retry(0, read=False)  # as requests: no retries, errors wrapped in MaxRetryError


def ca_bundle() -> str:
    """The CA certificates to trust: what requests would use (REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE, else certifi's bundle)."""
    return (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            or certifi_bundle())


class Book:
    """What the connections of one fetcher did: opened, by (host, handshake); and the TLS
    session each host's last connection received."""

    def __init__(self) -> None:
        self.opened: dict[tuple[str, str], int] = {}
        self.sessions: dict[tuple[str, int], ssl.SSLSession] = {}
        self.limited: weakref.WeakSet[Any] = weakref.WeakSet()  # pools whose servers drop idle connections
        self._lock = threading.Lock()

    def count(self, host: str, how: str) -> None:
        with self._lock:  # a new connection: rare, so a lock costs nothing that matters
            self.opened[(host, how)] = self.opened.get((host, how), 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.opened)


class ResumingContext(ssl.SSLContext):
    """An SSLContext that offers a host the TLS session its last connection received (TLS 1.3
    tickets, TLS 1.2 tickets and session ids alike): the server may then skip the certificate
    exchange and key agreement of a full handshake."""

    book: Book

    def wrap_socket(self, sock: Any, server_side: bool = False, do_handshake_on_connect: bool = True,
                    suppress_ragged_eofs: bool = True, server_hostname: str | None = None,
                    session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        if session is None and server_hostname and not server_side:
            try:
                session = self.book.sessions.get((server_hostname, sock.getpeername()[1]))
            except OSError:
                session = None
        try:
            return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                       server_hostname, session)
        except ValueError:  # a session the context no longer takes: a full handshake then
            return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                       server_hostname, None)


def tls_context(book: Book, bundle: str | None = None) -> ResumingContext:
    """The one client context: certificates and host names verified, TLS 1.2 or later, the
    CA bundle loaded once."""
    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname, CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    where = bundle or ca_bundle()
    if os.path.isdir(where):
        context.load_verify_locations(capath=where)
    else:
        context.load_verify_locations(cafile=where)
    context.book = book
    return context


class _Kept:
    """What a connection keeps for its pool: its book, its pool, and when it last went back to
    the pool connected (to learn how long the server keeps an idle connection)."""

    book: Book
    pool_ref: "weakref.ref[_Pool] | None" = None  # weak: a dropped pool is freed at once
    released_at: float | None = None

    def _learn(self) -> None:
        """Connecting again a connection that was kept: the server dropped it while idle."""
        pool = self.pool_ref() if self.pool_ref is not None else None
        if self.released_at is not None and pool is not None:
            pool.dropped_after(time.monotonic() - self.released_at)
        self.released_at = None


class _HTTP(_Kept, HTTPConnection):
    def connect(self) -> None:
        self._learn()
        super().connect()
        self.book.count(self.host, "plain")


class _HTTPS(_Kept, HTTPSConnection):
    answered = False  # an answer was read on this connection: the server's tickets are in

    def connect(self) -> None:
        self._learn()
        super().connect()
        self.answered = False
        resumed = bool(getattr(self.sock, "session_reused", False))
        self.book.count(self.host, "resumed" if resumed else "full")

    def getresponse(self) -> Any:  # type: ignore[override]
        response = super().getresponse()
        self.answered = True
        return response

    def close(self) -> None:
        # The session is taken as the connection ends (the server dropped it, it went stale, its
        # pool was dropped), not kept beside a live one: a kept connection holds its own, and a
        # thousand sessions held for connections that stay open would be megabytes for nothing.
        sock = self.sock
        if self.answered and isinstance(sock, ssl.SSLSocket):
            try:
                session = sock.session
            except (OSError, ValueError):
                session = None
            if session is not None:
                self.book.sessions[(self.host, self.port)] = session
        self.answered = False
        super().close()


class _TLSBuffers:
    """Frees the record buffers of an idle TLS connection (OpenSSL's `SSL_free_buffers`).

    OpenSSL 3.0 keeps a connection's 16 KB record buffer after a request is answered, although
    Python asks it to release buffers (SSL_MODE_RELEASE_BUFFERS): a kept connection then costs
    36 KB instead of 20 (measured here, after a 304). With a thousand hosts that is 16 MB held
    for nothing between polls. Python's ssl module has no call for it, so the function is
    reached through ctypes in the library `_ssl` is linked to, with the `SSL*` read from the
    `_ssl` object at the offset CPython's layout puts it. That layout is checked once, on an
    object made for the purpose (its SSL* must belong to its context's SSL_CTX, whose options
    must read back as Python reports them); if anything does not match, nothing is freed."""

    def __init__(self) -> None:
        self._free: Any = None
        self.ready = False

    @property
    def free(self) -> Any:
        """OpenSSL's SSL_free_buffers, when the layout checked out (None: nothing is freed).
        Looked for on first use, not when the module is imported."""
        if not self.ready:
            self._probe()
        return self._free

    def _probe(self) -> None:
        self.ready = True
        if sys.implementation.name != "cpython":
            return
        try:
            import _ssl

            lib = ctypes.CDLL(_ssl.__file__)
            free, owner, options = lib.SSL_free_buffers, lib.SSL_get_SSL_CTX, lib.SSL_CTX_get_options
        except (OSError, AttributeError):
            return
        free.argtypes, free.restype = [ctypes.c_void_p], ctypes.c_int
        owner.argtypes, owner.restype = [ctypes.c_void_p], ctypes.c_void_p
        options.argtypes, options.restype = [ctypes.c_void_p], ctypes.c_uint64
        head = object.__basicsize__  # PyObject_HEAD: where each struct's own fields begin
        self.ctx_at = head  # PySSLContext: SSL_CTX *ctx
        self.ssl_at = head + ctypes.sizeof(ctypes.c_void_p)  # PySSLSocket: PyObject *Socket; SSL *ssl
        try:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            probe = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="probe.invalid")
            ctx_ptr = ctypes.c_void_p.from_address(id(context) + self.ctx_at).value
            ssl_ptr = ctypes.c_void_p.from_address(id(probe._sslobj) + self.ssl_at).value
            if ctx_ptr and ssl_ptr and owner(ssl_ptr) == ctx_ptr and options(ctx_ptr) == int(context.options):
                self._free = free
        except Exception:  # a layout other than expected: leave buffers to OpenSSL
            self._free = None

    def __call__(self, sock: Any) -> None:
        obj = getattr(sock, "_sslobj", None)
        free = self.free
        if free is not None and obj is not None:
            free(ctypes.c_void_p.from_address(id(obj) + self.ssl_at).value)


_free_tls_buffers = _TLSBuffers()


class _Slots:
    """The idle connections of one host's pool: urllib3's `QueueCls`, as a plain list. Its
    default, a `queue.LifoQueue`, carries a lock and three conditions per host (some 3 KB, a
    megabyte over a thousand hosts) that a non-blocking pool never waits on: this pool is
    never blocking (`block=False`), and a list's append and pop are atomic."""

    __slots__ = ("queue", "maxsize")

    def __init__(self, maxsize: int):
        self.queue: list[Any] = []
        self.maxsize = maxsize

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        try:
            return self.queue.pop()
        except IndexError:
            raise queue.Empty from None

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if len(self.queue) >= self.maxsize:
            raise queue.Full
        self.queue.append(item)

    def qsize(self) -> int:
        return len(self.queue)


class _Pool:
    """Keep-alive bookkeeping of one host's pool (mixed into urllib3's pool classes): how long
    the server keeps an idle connection, from its `Keep-Alive: timeout=…` or from the idle time
    after which a kept connection was found dropped; a connection idle nearly that long is
    closed rather than used (the server may close it as the request goes out) or kept (sweep)."""

    ConnectionCls: Any
    pool: Any
    book: Book
    idle_limit: float | None = None

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        conn.pool_ref = weakref.ref(self)
        return conn

    def _stale(self, conn: Any, now: float) -> bool:
        limit = self.idle_limit
        return (limit is not None and conn is not None and conn.released_at is not None
                and now - conn.released_at >= KEEP_MARGIN * limit)

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        if self._stale(conn, time.monotonic()):
            conn.close()  # ours to close: nothing learned from it
            conn.released_at = None
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            sock = getattr(conn, "sock", None)
            conn.released_at = time.monotonic() if sock is not None else None
            if isinstance(sock, ssl.SSLSocket):
                _free_tls_buffers(sock)  # idle until the next poll: 16 KB less each (OpenSSL 3)
        super()._put_conn(conn)  # type: ignore[misc]

    def sweep(self, now: float) -> int:
        """Close the kept connections the server has dropped or is about to; returns how many."""
        closed = 0
        slots = self.pool.queue
        for conn in list(slots):
            if not self._stale(conn, now):
                continue
            try:
                slots.remove(conn)  # atomic: taken from the workers' reach, or a worker has it
            except ValueError:
                continue
            conn.close()
            conn.released_at = None
            slots.insert(0, conn)  # at the bottom: live connections are used first
            closed += 1
        return closed

    def keep_alive(self, header: str | None) -> None:
        """The server said how long it keeps an idle connection (`Keep-Alive: timeout=5`)."""
        if header:
            m = _KEEP_ALIVE.search(header)
            if m:
                self._limit(float(m.group(1)))

    def dropped_after(self, idle: float) -> None:
        """A kept connection was found closed by the server after `idle` seconds unused."""
        self._limit(idle if self.idle_limit is None else min(self.idle_limit, idle))

    def _limit(self, seconds: float) -> None:
        if self.idle_limit is None:
            self.book.limited.add(self)  # swept from now on
        self.idle_limit = seconds


class PoolAdapter(HTTPAdapter):
    """A requests transport adapter over the shared pools (module docstring)."""

    def __init__(self, pools: int = MIN_POOLS, maxsize: int = 8, bundle: str | None = None):
        self.book = Book()
        self.context = tls_context(self.book, bundle)
        attrs = {"book": self.book}
        self.http_conn = type("Connection", (_HTTP,), attrs)
        self.https_conn = type("Connection", (_HTTPS,), attrs)
        self.pool_classes = {
            "http": type("HTTPPool", (_Pool, HTTPConnectionPool), {"ConnectionCls": self.http_conn,
                                                                   "QueueCls": _Slots, "book": self.book}),
            "https": type("HTTPSPool", (_Pool, HTTPSConnectionPool), {"ConnectionCls": self.https_conn,
                                                                     "QueueCls": _Slots, "book": self.book}),
        }
        self._urls: dict[str, tuple[str, str, int, str]] = {}
        super().__init__(pool_connections=max(pools, MIN_POOLS), pool_maxsize=maxsize, max_retries=_RETRIES)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, ssl_context=self.context, cert_reqs="CERT_REQUIRED",
                                 **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = self.pool_classes
        # A pool pushed out of the manager (more hosts than it keeps) closes its connections
        # now, not whenever it is garbage-collected.
        self.poolmanager.pools.dispose_func = _close_pool

    # -- which hosts are kept ---------------------------------------------------------------

    def keep(self, urls: Iterable[str]) -> None:
        """Size the pools to the hosts of `urls` (the pages polled, their other views) and
        drop the pools, connections and TLS sessions of every other host (a reload that
        removed providers)."""
        hosts = set()
        for url in urls:
            parts = urlsplit(url)
            if parts.hostname:
                scheme = parts.scheme.lower()
                hosts.add((scheme, parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80)))
        manager = self.poolmanager
        manager.pools._maxsize = max(2 * len(hosts), MIN_POOLS)  # room for redirect targets too
        open_files(len(hosts))
        for key in manager.pools.keys():
            if (key.key_scheme, key.key_host, key.key_port) not in hosts:
                manager.pools.pop(key, None)  # dispose_func closes its connections
        wanted = {(host, port) for _, host, port in hosts}
        for key in list(self.book.sessions):
            if key not in wanted:
                self.book.sessions.pop(key, None)
        self._urls.clear()

    # -- the lean send ------------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        if proxies and requests.utils.select_proxy(request.url, proxies) or verify is not True or cert:
            return super().send(request, stream, timeout, verify, cert, proxies)
        url = request.url or ""
        where = self._urls.get(url)
        if where is None:
            parsed = urllib3.util.parse_url(url)
            scheme = (parsed.scheme or "http").lower()
            where = (scheme, parsed.host or "", parsed.port or (443 if scheme == "https" else 80),
                     parsed.request_uri)
            if len(self._urls) > 10_000:
                self._urls.clear()  # providers come and go: never grow without bound
            self._urls[url] = where
        scheme, host, port, path = where
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        deadline = urllib3.Timeout(connect=connect, read=read)
        for attempt in (1, 2):
            try:
                pool = self.poolmanager.connection_from_host(host, port, scheme)
                r = pool.urlopen("GET", path, headers=request.headers, redirect=False, assert_same_host=False,
                                 preload_content=False, decode_content=False, retries=_RETRIES, timeout=deadline)
                break
            except (urllib3.exceptions.HTTPError, OSError) as e:
                reason = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason else e
                if attempt == 1 and isinstance(reason, urllib3.exceptions.ProtocolError):
                    continue  # a kept connection the server had just closed: once more, afresh
                raise _as_requests_error(reason, request) from None
        pool.keep_alive(r.headers.get("Keep-Alive"))
        response = requests.Response()
        response.status_code = r.status
        response.headers = r.headers  # type: ignore[assignment]  # case-insensitive, as requests' own
        response.raw = r
        response.reason = r.reason
        response.url = url
        response.request = request
        response.connection = self
        return response

    def sweep(self) -> int:
        """Close every kept connection its server keeps no longer (docs/contract.md §1: what the
        server will drop anyway is not kept). Returns how many were closed."""
        now = time.monotonic()
        return sum(pool.sweep(now) for pool in list(self.book.limited) if pool.pool is not None)

    def opened(self) -> dict[tuple[str, str], int]:
        """Connections opened so far, by (host, handshake)."""
        return self.book.snapshot()


def open_files(hosts: int) -> None:
    """A kept connection per host is a file descriptor per host: raise the soft limit of open
    files towards what that needs (systemd starts services with a soft limit of 1,024 and a
    hard one far above it, and expects a program that needs more to raise its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * hosts + 256  # the connections, and a margin for the database, logs and redirects
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass  # not allowed here: connections beyond the limit fail as they always would


def _close_pool(pool: Any) -> None:
    pool.close()


def _as_requests_error(e: BaseException, request: requests.PreparedRequest) -> Exception:
    """A urllib3 error as the requests exception HTTPAdapter.send would raise for it."""
    x = requests.exceptions
    u = urllib3.exceptions
    if isinstance(e, u.ConnectTimeoutError) and not isinstance(e, u.NewConnectionError):
        return x.ConnectTimeout(e, request=request)
    if isinstance(e, u.SSLError):
        return x.SSLError(e, request=request)
    if isinstance(e, u.ReadTimeoutError):
        return x.ReadTimeout(e, request=request)
    if isinstance(e, u.LocationValueError):
        return x.InvalidURL(e, request=request)
    return x.ConnectionError(e, request=request)


__all__ = ["Book", "PoolAdapter", "ResumingContext", "ca_bundle", "tls_context"]
