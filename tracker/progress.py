"""A progress line for `tracker backfill` on a terminal, that never shares a line with a log
record.

The line lives on stderr (only when stderr is a terminal); log records go to stdout. When
both are the same terminal, a record written while the line is shown would land in the
middle of it, so the log stream is wrapped (`Progress.stream`): before each record the line
is erased, after it the line is drawn again below. It counts what is known as it happens
(requests, history pages, providers done, updates recorded), never a percentage of an
unknown total, and an interrupted run ends as "interrupted", not at 100 %.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

CLEAR = "\r\x1b[K"  # carriage return, erase to the end of the line


class Progress:
    """One status line on `out` (a terminal). Thread-safe: walkers' counts are read by the main
    thread, log records may come from anywhere."""

    def __init__(self, out: TextIO, total: int, label: str = "Backfilling", min_interval: float = 0.1):
        self.out = out
        self.total = total
        self.label = label
        self.min_interval = min_interval
        self.started = time.monotonic()
        self.done = 0
        self.requests = 0
        self.pages = 0
        self.new = 0
        self.shown = False
        self.last_draw = 0.0
        self.finished = False
        self._lock = threading.RLock()

    def text(self, interrupted: bool = False) -> str:
        elapsed = time.monotonic() - self.started
        counts = (f"{self.requests:,} requests, {self.pages:,} history pages, {self.new:,} new updates "
                  f"({elapsed:.0f} s)")
        if interrupted:
            return f"Interrupted after {counts}"
        return f"{self.label}: {self.done}/{self.total} providers done, {counts}"

    def update(self, *, done: int | None = None, requests: int | None = None, pages: int | None = None,
               new: int | None = None, force: bool = False) -> None:
        with self._lock:
            if done is not None:
                self.done = done
            if requests is not None:
                self.requests = requests
            if pages is not None:
                self.pages = pages
            if new is not None:
                self.new = new
            now = time.monotonic()
            if force or now - self.last_draw >= self.min_interval:
                self._draw()
                self.last_draw = now

    def _draw(self) -> None:
        if self.finished:
            return
        self.out.write(CLEAR + self.text())
        self.out.flush()
        self.shown = True

    def clear(self) -> None:
        with self._lock:
            if self.shown:
                self.out.write(CLEAR)
                self.out.flush()
                self.shown = False

    def finish(self, interrupted: bool = False) -> None:
        """The last state on a line of its own: done, or where it was interrupted."""
        with self._lock:
            if self.finished:
                return
            self.out.write(CLEAR + self.text(interrupted) + "\n")
            self.out.flush()
            self.shown = False
            self.finished = True

    def stream(self, inner: TextIO) -> "_Around":
        """`inner` (stdout) with the progress line erased before every write and redrawn after."""
        return _Around(inner, self)


class _Around:
    """A text stream that keeps the progress line off the log records' lines."""

    def __init__(self, inner: TextIO, progress: Progress):
        self.inner = inner
        self.progress = progress

    def write(self, text: str) -> int:
        with self.progress._lock:
            self.progress.clear()
            n = self.inner.write(text)
            self.inner.flush()
            if text.endswith("\n") and not self.progress.finished:
                self.progress._draw()
            return n

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


__all__ = ["Progress"]
