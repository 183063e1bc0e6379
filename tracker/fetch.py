"""HTTP: one requests.Session shared by the worker threads over one connection pool per host
(tracker.pools), every request bounded in time and size.

Per-operation timeouts are not a deadline (a server sending one byte every few seconds never
trips a read timeout), so the body is streamed and the wall clock checked between chunks; the
size cap counts decoded bytes, so a gzip bomb stops at the cap.

Redirects are followed here, not by requests, so that each target is looked at before it is
requested: only http(s), at most MAX_REDIRECTS, and never to a loopback, private or
link-local address (cloud metadata at 169.254.169.254 included) unless the URL asked for is
itself on such an address (docs/contract.md §4 "Failures are isolated").
"""

from __future__ import annotations

import html
import http.cookiejar
import ipaddress
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict

from . import __version__
from .errors import FetchError
from .pools import PoolAdapter

USER_AGENT = f"tracker/{__version__} (status page poller; python-requests/{requests.__version__})"
MAX_REDIRECTS = 5
PREPARED_CACHE = 10_000  # prepared URLs kept (one per URL polled)
CHUNK = 64 * 1024
# An error or redirect answer this short is read to its end, so that its connection goes back
# to the pool: closed unread, the next request to the host (the page itself after a probe's
# 404, a redirect's target on the same host) pays a new connection and, on a real page, a TLS
# handshake. A longer one is dropped with its connection.
DRAIN_MAX = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# NAT64 (RFC 6052): 64:ff9b::a9fe:a9fe is 169.254.169.254 behind a NAT64 gateway.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Fetched:
    """One answer: 200 with a body, or 304 Not Modified (body None)."""

    status: int
    body: bytes | None
    content_type: str
    etag: str | None
    last_modified: str | None
    url: str
    date: str | None = None  # the answer's Date header: the page's clock, where the payload has none

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class HTTPStatusError(FetchError):
    """The page answered with an error status."""

    def __init__(self, status: int, retry_after: str | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"HTTP {status}" + (f" (Retry-After: {retry_after[:40]})" if retry_after else ""))


class _Session(requests.Session):
    """A Session that never takes a redirect itself: Fetcher.get follows them, after looking
    at each target. Told not to follow one, Session.send still asks for the target (to prepare
    Response.next) and then reads the redirect's whole body: no size cap, no deadline (a 302
    trickling a byte at a time held a worker for as long as it trickled)."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Status pages need no cookies; a CDN's would pile up in the one shared jar."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


class Fetcher:
    """Thread-safe: every worker thread shares one Session and, beneath it, one connection pool
    per host (tracker.pools): a host's polls find its connection whichever worker makes them,
    and a reconnect resumes the host's TLS session."""

    def __init__(self, *, timeout: float = 20.0, max_bytes: int = 2 * 1024 * 1024, user_agent: str = USER_AGENT,
                 allow_private: bool | None = None, workers: int = 8):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        # Redirects to loopback/private/link-local addresses: None decides per request (allowed
        # when the URL asked for is itself on such an address), True/False force it.
        self.allow_private = allow_private
        self.adapter = PoolAdapter(maxsize=workers)
        self._session = self._new_session()
        # URL -> the URL as requests prepares it (quoted, IDNA), worked out once; shared by
        # the threads. (Not whole prepared requests: each holds a cookie jar and hooks, 3 KB
        # a provider; a fresh request costs microseconds.)
        self._prepared: dict[str, str] = {}
        self._lock = threading.Lock()

    def _new_session(self) -> requests.Session:
        s = _Session()
        s.headers["User-Agent"] = self.user_agent
        s.headers["Accept"] = "application/json"
        s.max_redirects = MAX_REDIRECTS  # unused: get() follows redirects itself
        s.cookies.set_policy(_NoCookies())
        s.mount("https://", self.adapter)
        s.mount("http://", self.adapter)
        # With trust_env, requests re-reads every proxy variable and ~/.netrc on each request:
        # half the CPU of a 304 poll. The environment does not change under a running daemon,
        # so with no proxy set (public status pages need no .netrc credentials) there is no
        # per-request look-up at all; the CA bundle requests would pick up is loaded once into
        # the adapter's TLS context. With a proxy, requests keeps its full behaviour (no_proxy
        # and REQUESTS_CA_BUNDLE included).
        if not urllib.request.getproxies():
            s.trust_env = False
        return s

    def session(self) -> requests.Session:
        """The Session every thread uses (its adapter holds the connections)."""
        return self._session

    def keep(self, urls: Iterable[str]) -> None:
        """The URLs polled from now on: their hosts' connections are kept, every other host's
        are dropped (start, and each reload)."""
        self.adapter.keep(urls)
        with self._lock:
            self._prepared.clear()

    def sweep(self) -> int:
        """Close the kept connections whose servers keep them no longer."""
        return self.adapter.sweep()

    def opened(self) -> dict[tuple[str, str], int]:
        """Connections opened so far, by (host, handshake: plain, full or resumed)."""
        return self.adapter.opened()

    def close(self) -> None:
        self._session.close()  # closes the adapter's pools
        with self._lock:
            self._prepared.clear()

    def _send(self, session: requests.Session, url: str, headers: dict[str, str],
              timeout: tuple[float, float]) -> requests.Response:
        """One request, without following redirects. With no proxy in the environment (the
        Session then does not trust it), the request is put together here from the URL
        prepared once and the session's headers, and handed to Session.send: Session.request
        would merge settings, cookies and hooks and prepare the URL again on every poll, a
        third of the CPU of a 304. Cookies are not kept between polls either way (status pages
        need none). With a proxy, requests' full path."""
        if session.trust_env:
            return session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=False)
        prepared_url = self._prepared.get(url)
        if prepared_url is None:
            if len(self._prepared) > PREPARED_CACHE:
                self._prepared.clear()  # providers come and go (SIGHUP); never grow without bound
            preparing = requests.PreparedRequest()
            preparing.prepare_url(url, None)  # quoted, IDNA: the URL alone, no session settings to merge
            prepared_url = self._prepared[url] = preparing.url
        request = requests.PreparedRequest()
        request.method, request.url, request.body = "GET", prepared_url, None
        request.headers = CaseInsensitiveDict(session.headers)
        request.headers.update(headers)
        request.hooks = {"response": []}
        request._cookies = RequestsCookieJar()  # what a redirect's cookies would be read into
        return session.send(request, stream=True, timeout=timeout, allow_redirects=False)

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
            allow_private: bool | None = None) -> Fetched:
        """GET `url`, conditionally if validators are given, following at most MAX_REDIRECTS
        redirects. A redirect to a loopback, private or link-local address is refused unless
        `allow_private` (default: the Fetcher's, else whether `url` itself is on such an
        address). Raises FetchError."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if allow_private is None:
            allow_private = self.allow_private
        started = time.monotonic()
        connect = min(5.0, self.timeout)
        read = min(10.0, self.timeout)
        session = self.session()
        current = url
        try:
            for hop in range(MAX_REDIRECTS + 1):
                with self._send(session, current, headers, (connect, read)) as r:
                    if r.status_code in REDIRECT_STATUSES and "location" in r.headers:
                        location = requests.Session.get_redirect_target(session, r)
                        target = requests.utils.requote_uri(urljoin(r.url, location))
                        if hop == MAX_REDIRECTS:
                            raise FetchError(f"more than {MAX_REDIRECTS} redirects")
                        _check_redirect(url, target, allow_private)
                        current = target
                        _drain(r, started, self.timeout)
                        continue
                    if r.status_code == 304:
                        r.content  # reach the (empty) body's end so the connection is kept alive
                        return Fetched(304, None, "", etag, last_modified, r.url)
                    if r.status_code >= 400 or r.status_code < 200:
                        _drain(r, started, self.timeout)
                        raise HTTPStatusError(r.status_code, r.headers.get("Retry-After"))
                    chunks, size = [], 0  # joined once at the end: no regrowing, no second copy
                    for chunk in _chunks(r):
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise FetchError(f"body larger than {self.max_bytes} bytes (decoded); cut off")
                        if time.monotonic() - started > self.timeout:
                            raise FetchError(f"no complete answer within {self.timeout:g} s; cut off")
                    return Fetched(
                        status=r.status_code,
                        body=b"".join(chunks),
                        content_type=r.headers.get("Content-Type", ""),
                        etag=r.headers.get("ETag"),
                        last_modified=r.headers.get("Last-Modified"),
                        url=r.url,
                        date=r.headers.get("Date"),
                    )
            raise AssertionError("unreachable")  # pragma: no cover
        except FetchError:
            raise
        except urllib3.exceptions.ReadTimeoutError:
            raise FetchError(f"read timeout after {read:g} s") from None
        except urllib3.exceptions.DecodeError:
            raise FetchError("body could not be decoded (bad gzip/deflate)") from None
        except urllib3.exceptions.HTTPError as e:
            raise FetchError(f"connection broken: {_reason(e)}") from None
        except requests.exceptions.ConnectTimeout:
            raise FetchError(f"connect timeout after {connect:g} s") from None
        except requests.exceptions.ReadTimeout:
            raise FetchError(f"read timeout after {read:g} s") from None
        except requests.exceptions.TooManyRedirects:
            raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
        except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema):
            raise FetchError("redirected to a URL that is not http(s)") from None
        except requests.exceptions.ContentDecodingError:
            raise FetchError("body could not be decoded (bad gzip/deflate)") from None
        except requests.exceptions.ConnectionError as e:
            raise FetchError(_connection_failure(e)) from None
        except requests.exceptions.RequestException as e:
            raise FetchError(f"request failed: {_reason(e)}") from None


def _chunks(r: requests.Response):
    """Decoded body chunks as they arrive. read1() returns what one socket read brings
    instead of waiting for a full chunk, so the caller's deadline is checked even when a
    server sends a byte at a time (iter_content() would block until 64 KiB had come)."""
    read1 = getattr(r.raw, "read1", None)
    if read1 is None:  # urllib3 1.x
        yield from r.iter_content(CHUNK)
        return
    while chunk := read1(CHUNK, decode_content=True):
        yield chunk


def _drain(r: requests.Response, started: float, timeout: float) -> None:
    """Read a short answer's body to its end (DRAIN_MAX), within the request's deadline. Any
    trouble just leaves the connection to be closed, as it would have been."""
    length = r.headers.get("Content-Length", "")
    read1 = getattr(r.raw, "read1", None)  # None: urllib3 1.x (the connection is dropped)
    if read1 is None or not length.isdigit() or int(length) > DRAIN_MAX:
        return
    try:
        # As sent, not decompressed: a short gzip error page may unpack to megabytes.
        while read1(CHUNK, decode_content=False):
            if time.monotonic() - started > timeout:
                return
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
        return


def _check_redirect(origin: str, target: str, allow_private: bool | None) -> None:
    """Raise FetchError unless `target` may be followed from a request for `origin`."""
    parts = urlsplit(target)
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError("redirected to a URL that is not http(s)")
    host = parts.hostname
    if not host:
        raise FetchError(f"redirected to {_show_url(target)}: no host")
    if allow_private is True or host == urlsplit(origin).hostname:
        return  # the provider's own host: nothing the configured URL does not already reach
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise FetchError(f"redirected to {_show_url(target)}: bad port") from None
    found = [(ip, kind) for ip in _addresses(host, port) if (kind := non_public(ip))]
    if not found:
        return
    if allow_private is None and _is_private_host(urlsplit(origin)):
        return  # the configured page is itself on such an address (a lab, a test, an intranet)
    ip, kind = found[0]
    where = "" if _literal(host) else f"{host} is {ip}, "
    raise FetchError(f"redirected to {_show_url(target)}: {where}a {kind} address (refused)")


def non_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What kind of non-public address `ip` is (loopback, link-local, private, …), or None
    for a public one. IPv4-mapped and NAT64 IPv6 forms are judged by their IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:  # 169.254.0.0/16 (cloud metadata), fe80::/10
        return "link-local"
    if ip.is_unspecified:  # 0.0.0.0 and :: reach the host itself
        return "unspecified"
    if ip.is_private:  # 10/8, 172.16/12, 192.168/16, fc00::/7, …
        return "private"
    if ip.is_multicast:
        return "multicast"
    if not ip.is_global:  # 100.64.0.0/10 (carrier-grade NAT), reserved ranges
        return "non-public"
    return None


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address `host` resolves to (a literal is itself). A name that does not resolve
    yields none: requesting it then fails as "cannot resolve" (or a proxy resolves it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    found = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        try:
            found.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        except ValueError:
            continue
    return found


def _is_private_host(parts) -> bool:
    host = parts.hostname
    if not host:
        return False
    return any(non_public(ip) for ip in _addresses(host, parts.port or 443))


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        return False


def _show_url(url: str, limit: int = 120) -> str:
    """A URL from a page, fit for a log line: no control characters, no credentials, capped."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        url = url.replace(parts.netloc, parts.netloc.rsplit("@", 1)[-1], 1)
    url = _CONTROL.sub("", url)
    return url if len(url) <= limit else url[: limit - 1] + "…"


def _connection_failure(e: requests.exceptions.ConnectionError) -> str:
    """A failed connection in words a person can act on: which name did not resolve, which
    host:port refused; else urllib3's innermost reason."""
    chain: list[BaseException] = []
    inner: BaseException | None = e
    while inner is not None and inner not in chain:
        chain.append(inner)
        nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        inner = nxt or inner.__cause__
    for x in chain:
        if isinstance(x, urllib3.exceptions.NameResolutionError):
            host = getattr(x, "_host", None) or getattr(getattr(x, "conn", None), "host", "?")
            why = getattr(x, "_reason", None) or x.__cause__
            detail = why.strerror if isinstance(why, OSError) and why.strerror else ""
            return f"cannot resolve {_CONTROL.sub('', str(host))}" + (f" ({detail})" if detail else "")
        if isinstance(x, urllib3.exceptions.NewConnectionError):
            conn = getattr(x, "conn", None)
            where = f"{getattr(conn, 'host', '?')}:{getattr(conn, 'port', '?')}"
            cause = x.__cause__ or x.__context__
            if isinstance(cause, ConnectionRefusedError):
                return f"connection refused by {where}"
            if isinstance(cause, OSError) and cause.strerror:
                return f"cannot connect to {where}: {cause.strerror}"
    return f"connection failed: {_reason(e)}"


def _reason(e: Exception) -> str:
    """The innermost useful words of a requests/urllib3 exception, on one line."""
    inner: BaseException = e
    while inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    text = str(reason or inner)
    return " ".join(text.split())[:300]


# C0 and C1 controls, DEL, and the bidi/zero-width format characters.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_RAW_TEXT = (b"script", b"style", b"template", b"title")
DESCRIBE_CHARS = 60


def describe_body(body: bytes, content_type: str) -> str:
    """A short description of a body that was not what was expected, for an error message:
    its media type and its HTML <title> (else its first visible text), e.g.
    `text/html "Just a moment..."`. Untrusted text: control and bidi characters removed,
    whitespace collapsed, at most DESCRIBE_CHARS characters. Linear in the body's size."""
    media = content_type.split(";")[0].strip().lower() or "no content type"
    media = " ".join(_CONTROL.sub(" ", media).split())[:60]
    if not body:
        return f"{media} (empty body)"
    head = body[: 64 * 1024]  # a title or the first words are near the top; bounds the work
    charset = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)
    markup = "html" in media or "xml" in media or head.lstrip().startswith(b"<")
    if markup:
        title, visible = _html_text(head)
        text = title if title.strip() else visible
        text = html.unescape(_decode(text, charset))
    else:
        text = _decode(head, charset)
    text = " ".join(_CONTROL.sub(" ", text).split())
    if not text:
        return media
    if len(text) > DESCRIBE_CHARS:
        text = text[: DESCRIBE_CHARS - 1].rstrip() + "…"
    return f'{media} "{text}"'


def _html_text(raw: bytes) -> tuple[bytes, bytes]:
    """The first <title>'s text and the visible text of an HTML document (tags, comments,
    scripts and styles dropped; entities left for the caller). One pass, linear in the size,
    whatever the markup: a '<' not followed by a letter, '/', '!' or '?' is text, as browsers
    read it, and an unterminated tag or comment ends the text."""
    lower = raw.lower()
    out: list[bytes] = []
    title = b""
    i, n = 0, len(raw)
    while i < n:
        lt = raw.find(b"<", i)
        if lt < 0:
            out.append(raw[i:])
            break
        out.append(raw[i:lt])
        nxt = raw[lt + 1 : lt + 2]
        if not (nxt.isalpha() or nxt in (b"/", b"!", b"?")):
            out.append(b"<")
            i = lt + 1
            continue
        if raw.startswith(b"<!--", lt):
            end = raw.find(b"-->", lt + 4)
            i = n if end < 0 else end + 3
            out.append(b" ")
            continue
        gt = raw.find(b">", lt + 1)
        if gt < 0:
            break
        name = re.match(rb"[a-z]+", lower[lt + 1 : min(gt, lt + 20)])
        i = gt + 1
        out.append(b" ")
        if name and name.group(0) in _RAW_TEXT:  # contents are not markup: up to the closing tag
            close = lower.find(b"</" + name.group(0), i)
            close = n if close < 0 else close
            if name.group(0) == b"title":
                title = title or raw[i:close]
                out.append(raw[i:close])
            i = close
    return title, b"".join(out)


def _decode(raw: bytes, charset: re.Match | None) -> str:
    try:
        return raw.decode(charset.group(1) if charset else "utf-8", errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")
