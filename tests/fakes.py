"""Fakes for in-process tests of the poll loop's parts: a clock that moves only when told, an
executor that runs jobs on the calling thread, and a fetcher that serves bytes from a dict
(with ETags, 304s and 404s) instead of the network."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from datetime import datetime, timedelta, timezone

from tracker.fetch import Fetched, HTTPStatusError


class Clock:
    """Wall time and monotonic time that move only when told."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 8, 1, 12, 0, tzinfo=timezone.utc)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


class SyncExecutor:
    """Runs each job at once on the calling thread; or holds them until release() (hold=True)."""

    def __init__(self, hold: bool = False):
        self.hold = hold
        self.held: list[tuple[Future, tuple]] = []

    def submit(self, fn, *args):
        future: Future = Future()
        if self.hold:
            self.held.append((future, (fn, *args)))
        else:
            future.set_result(fn(*args))
        return future

    def release(self, n: int = 1) -> None:
        for future, (fn, *args) in self.held[:n]:
            future.set_result(fn(*args))
        del self.held[:n]

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        for future, _ in self.held:
            future.cancel()
        self.held.clear()


class PageFetcher:
    """A Fetcher serving bytes from a dict (url -> body, or an exception), with ETags and 304s."""

    def __init__(self, pages: dict):
        self.pages = pages
        self.dates: dict[str, str] = {}  # url -> the Date header its answers carry
        self.requests: list[str] = []
        self.timeout = 20.0

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        self.requests.append(url)
        page = self.pages.get(url, HTTPStatusError(404))
        if isinstance(page, Exception):
            raise page
        tag = '"' + hashlib.sha1(page).hexdigest() + '"'
        if etag == tag:
            return Fetched(304, None, "", tag, None, url)
        return Fetched(200, page, "application/json", tag, None, url, date=self.dates.get(url))

    def close(self) -> None:
        pass
