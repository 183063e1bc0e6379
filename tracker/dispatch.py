"""The dispatcher: the bounded hand-off of due providers to the worker pool.

Polls handed to the pool are at most `max_inflight` (two per worker): a parsed page waits in
memory until the main thread records it, so an unbounded hand-off (1,000 providers due at
start) would hold hundreds of parsed pages at once. The rest wait in line here, and a
provider already in flight or in line is not queued twice.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from .config import Provider


class Dispatcher:
    """Hands `work(provider, *context(provider))` to `executor`; results come back through
    `drain`, on the thread that calls it."""

    def __init__(self, executor: Executor, work: Callable[..., Any], *, max_inflight: int,
                 context: Callable[[Provider], tuple] = lambda p: (),
                 monotonic: Callable[[], float] = time.monotonic):
        self.executor = executor
        self.work = work  # work(provider, *context(provider)), in a worker thread
        self.context = context  # called on this thread when the poll is handed out
        self.max_inflight = max_inflight
        self.monotonic = monotonic
        self.inflight: dict[str, Future] = {}
        self.started_at: dict[str, float] = {}  # provider id -> when its running poll was handed out
        self.waiting: deque[Provider] = deque()
        self.waiting_ids: set[str] = set()
        self.results: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        self.closed = False

    def busy(self, provider_id: str) -> bool:
        return provider_id in self.inflight or provider_id in self.waiting_ids

    @property
    def pending(self) -> bool:
        return bool(self.inflight or self.waiting)

    def submit(self, provider: Provider) -> bool:
        """Queue one poll; False when one of that provider is already under way."""
        if self.closed or self.busy(provider.id):
            return False
        self.waiting.append(provider)
        self.waiting_ids.add(provider.id)
        self._fill()
        return True

    def _fill(self) -> None:
        while self.waiting and len(self.inflight) < self.max_inflight and not self.closed:
            p = self.waiting.popleft()
            self.waiting_ids.discard(p.id)
            future = self.executor.submit(self.work, p, *self.context(p))
            self.inflight[p.id] = future
            self.started_at[p.id] = self.monotonic()
            future.add_done_callback(lambda f, pid=p.id: self.results.put((pid, f)))

    def drain(self, timeout: float, handle: Callable[[Any], None]) -> int:
        """Wait up to `timeout` for finished polls; `handle` every result that is ready.
        Returns how many were handled."""
        try:
            item = self.results.get(timeout=timeout) if timeout > 0 else self.results.get_nowait()
        except queue.Empty:
            return 0
        handled = 0
        while True:
            pid, future = item
            self.inflight.pop(pid, None)
            self.started_at.pop(pid, None)
            if not future.cancelled():  # cancelled before it started (shutdown): nothing happened
                handle(future.result())
                handled += 1
            self._fill()
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return handled

    def stuck(self, limit: float) -> list[str]:
        """Providers whose poll has been running for longer than `limit` seconds."""
        now = self.monotonic()
        return [pid for pid, t in self.started_at.items() if now - t > limit]

    def close(self) -> None:
        """Stop handing out work: drop the line, cancel what has not started."""
        self.closed = True
        self.waiting.clear()
        self.waiting_ids.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["Dispatcher"]
