"""The dispatcher: the bounded hand-off of due providers to the worker pool.

Hand-offs to the pool are at most `max_inflight` (one per worker): a parsed page waits in
memory until the main thread records it, so an unbounded hand-off (1,000 providers due at
start) would hold hundreds of parsed pages at once. The rest wait in line here, and a
provider already in flight or in line is not queued twice.

Quick polls travel together. Waking a worker thread, and the main thread for its result,
costs more than a poll answered 304 on a near page (tests/benchmarks/bench_poll.py: 17 polls
a second cost 0.57 ms each read in turn by one worker, 1.01 ms handed one by one to 8
threads), so providers whose last poll took little time are handed out in one batch that
one worker reads in turn, and their results come back together. A provider whose last poll
was slow, or that has not been polled yet, goes alone: slow pages keep a worker each, as
before. A batch that runs over its time (a quick page turned slow) hands what it has not
started back to the line, so no provider waits long behind another.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from .config import Provider

BATCH_SECONDS = 0.25  # what the polls of one batch may take together, by their last times
BATCH_LIMIT = 2 * BATCH_SECONDS  # a batch past this starts no further poll
BATCH_MAX = 64  # providers in one batch at most


class Dispatcher:
    """Hands `work(provider, *context(provider))` to `executor`; results come back through
    `drain`, on the thread that calls it."""

    def __init__(self, executor: Executor, work: Callable[..., Any], *, max_inflight: int,
                 context: Callable[[Provider], tuple] = lambda p: (),
                 monotonic: Callable[[], float] = time.monotonic):
        self.executor = executor
        self.work = work  # work(provider, *context(provider)), in a worker thread
        self.context = context  # called on this thread when the poll is handed out
        self.max_inflight = max_inflight  # hand-offs (single polls or batches) at once
        self.monotonic = monotonic
        self.inflight: dict[str, Future] = {}  # provider id -> the hand-off it is part of
        self.batches: dict[Future, tuple[list[str], float]] = {}  # hand-off -> its provider ids, when
        self.took: dict[str, float] = {}  # provider id -> seconds its last poll took
        self.waiting: deque[Provider] = deque()
        self.waiting_ids: set[str] = set()
        self.results: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self.closed = False

    def busy(self, provider_id: str) -> bool:
        return provider_id in self.inflight or provider_id in self.waiting_ids

    @property
    def pending(self) -> bool:
        return bool(self.inflight or self.waiting)

    def submit(self, provider: Provider) -> bool:
        """Put one poll in line; False when one of that provider is already under way. The
        line is handed out by `fill()` (and as results come in), so the polls falling due in
        one look at the schedule can travel together."""
        if self.closed or self.busy(provider.id):
            return False
        self.waiting.append(provider)
        self.waiting_ids.add(provider.id)
        return True

    def _cost(self, provider_id: str) -> float:
        return self.took.get(provider_id, BATCH_SECONDS)  # never polled: as slow as a batch

    def fill(self) -> None:
        """Hand out what waits in line, as far as the bound allows."""
        while self.waiting and len(self.batches) < self.max_inflight and not self.closed:
            batch = [self.waiting.popleft()]
            left = BATCH_SECONDS - self._cost(batch[0].id)
            while self.waiting and len(batch) < BATCH_MAX:
                cost = self._cost(self.waiting[0].id)
                if cost >= left:
                    break
                left -= cost
                batch.append(self.waiting.popleft())
            jobs = [(p, self.context(p)) for p in batch]
            future = self.executor.submit(self._run, jobs)
            ids = [p.id for p in batch]
            self.batches[future] = ids, self.monotonic()
            for pid in ids:
                self.waiting_ids.discard(pid)
                self.inflight[pid] = future
            future.add_done_callback(self.results.put)

    def _run(self, jobs: list[tuple[Provider, tuple]]) -> tuple[list[tuple[str, Any, float]], list[Provider]]:
        """In a worker: the polls of one hand-off in turn. Returns (provider id, result,
        seconds) for each poll done, and the providers not started (the batch ran over)."""
        started = self.monotonic()
        done = []
        for n, (p, context) in enumerate(jobs):
            before = self.monotonic()
            if n and (before - started > BATCH_LIMIT or self.closed):  # over its time, or stopping
                return done, [q for q, _ in jobs[n:]]
            result = self.work(p, *context)
            done.append((p.id, result, self.monotonic() - before))
        return done, []

    def drain(self, timeout: float, handle: Callable[[Any], None]) -> int:
        """Wait up to `timeout` for finished polls; `handle` every result that is ready.
        Returns how many were handled."""
        try:
            future = self.results.get(timeout=timeout) if timeout > 0 else self.results.get_nowait()
        except queue.Empty:
            return 0
        handled = 0
        while True:
            ids, _ = self.batches.pop(future, ([], 0.0))
            for pid in ids:
                self.inflight.pop(pid, None)
            if not future.cancelled():  # cancelled before it started (shutdown): nothing happened
                done, unstarted = future.result()
                for pid, result, took in done:
                    self.took[pid] = took
                    handle(result)
                    handled += 1
                if not self.closed:  # back to the head of the line, in their order
                    for p in reversed(unstarted):
                        self.waiting.appendleft(p)
                        self.waiting_ids.add(p.id)
            self.fill()
            try:
                future = self.results.get_nowait()
            except queue.Empty:
                return handled

    def forget(self, provider_id: str) -> None:
        """A provider left the configuration: drop what was measured of it."""
        self.took.pop(provider_id, None)

    def stuck(self, limit: float) -> list[str]:
        """Providers whose poll has been running for longer than `limit` seconds."""
        now = self.monotonic()
        return [pid for ids, t in self.batches.values() if now - t > limit for pid in ids]

    def close(self) -> None:
        """Stop handing out work: drop the line, cancel what has not started."""
        self.closed = True
        self.waiting.clear()
        self.waiting_ids.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["Dispatcher"]
