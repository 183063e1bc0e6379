"""HTTP: one requests.Session per worker thread, every request bounded in time and size.

Per-operation timeouts are not a deadline (a server sending one byte every few seconds never
trips a read timeout), so the body is streamed and the wall clock checked between chunks; the
size cap counts decoded bytes, so a gzip bomb stops at the cap.
"""

from __future__ import annotations

import os
import threading
import urllib.request
import time
from dataclasses import dataclass

import requests
import urllib3

from . import __version__
from .errors import FetchError

USER_AGENT = f"tracker/{__version__} (status page poller; python-requests/{requests.__version__})"
MAX_REDIRECTS = 5
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fetched:
    """One answer: 200 with a body, or 304 Not Modified (body None)."""

    status: int
    body: bytes | None
    content_type: str
    etag: str | None
    last_modified: str | None
    url: str

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class HTTPStatusError(FetchError):
    """The page answered with an error status."""

    def __init__(self, status: int, retry_after: str | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"HTTP {status}" + (f" (Retry-After: {retry_after[:40]})" if retry_after else ""))


class Fetcher:
    """Thread-safe: each thread that calls get() gets its own Session (connection pool)."""

    def __init__(self, *, timeout: float = 20.0, max_bytes: int = 2 * 1024 * 1024, user_agent: str = USER_AGENT):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = self.user_agent
            s.headers["Accept"] = "application/json"
            s.max_redirects = MAX_REDIRECTS
            # With trust_env, requests re-reads every proxy variable and ~/.netrc on each
            # request: half the CPU of a 304 poll. The environment does not change under a
            # running daemon, so read it once: the CA bundle requests would pick up, and,
            # when no proxy is set (public status pages need no .netrc credentials), no
            # per-request look-up at all. With a proxy, requests keeps its full behaviour
            # (no_proxy included).
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                s.verify = bundle
            if not urllib.request.getproxies():
                s.trust_env = False
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """GET `url`, conditionally if validators are given. Raises FetchError."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        started = time.monotonic()
        connect = min(5.0, self.timeout)
        read = min(10.0, self.timeout)
        try:
            with self.session().get(url, headers=headers, timeout=(connect, read), stream=True) as r:
                if r.status_code == 304:
                    r.content  # reach the (empty) body's end so the connection is kept alive
                    return Fetched(304, None, "", etag, last_modified, r.url)
                if r.status_code >= 400 or r.status_code < 200:
                    raise HTTPStatusError(r.status_code, r.headers.get("Retry-After"))
                buf = bytearray()
                for chunk in _chunks(r):
                    buf += chunk
                    if len(buf) > self.max_bytes:
                        raise FetchError(f"body larger than {self.max_bytes} bytes (decoded); cut off")
                    if time.monotonic() - started > self.timeout:
                        raise FetchError(f"no complete answer within {self.timeout:g} s; cut off")
                return Fetched(
                    status=r.status_code,
                    body=bytes(buf),
                    content_type=r.headers.get("Content-Type", ""),
                    etag=r.headers.get("ETag"),
                    last_modified=r.headers.get("Last-Modified"),
                    url=r.url,
                )
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
            raise FetchError(f"connection failed: {_reason(e)}") from None
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


def _reason(e: Exception) -> str:
    """The innermost useful words of a requests/urllib3 exception, on one line."""
    inner: BaseException = e
    while inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    text = str(reason or inner)
    return " ".join(text.split())[:300]
