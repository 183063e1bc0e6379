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
before. A batch that runs over its time hands what it has not started back to the head of the
line: the worker does between two polls, and the dispatcher takes it back while the worker is
held by a quick page turned slow (which may take the whole request timeout), so no provider
waits behind another for much longer than BATCH_LIMIT.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from .config import Provider

BATCH_SECONDS = 0.25  # what the polls of one batch may take together, by their last times
BATCH_LIMIT = 2 * BATCH_SECONDS  # a batch past this starts no further poll
BATCH_MAX = 64  # providers in one batch at most


class _Batch:
    """The polls of one hand-off. The worker takes them one at a time; what it has not started
    can be taken back (under the same lock) to go to another worker."""

    def __init__(self, jobs: list[tuple[Provider, tuple]], handed_out: float):
        self.jobs = deque(jobs)
        self.ids = [p.id for p, _ in jobs]  # in flight with this hand-off
        self.handed_out = handed_out
        self.lock = threading.Lock()
        self.started = False  # a worker took its first poll

    def next(self) -> tuple[Provider, tuple] | None:
        with self.lock:
            self.started = True
            return self.jobs.popleft() if self.jobs else None

    @property
    def held_up(self) -> bool:
        """Polls wait behind one a worker is on (nothing to take back before it starts)."""
        return self.started and bool(self.jobs)

    def take_back(self) -> list[Provider]:
        with self.lock:
            back = [p for p, _ in self.jobs]
            self.jobs.clear()
        return back


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
        self.batches: dict[Future, _Batch] = {}
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
        """Hand out what waits in line, as far as the bound allows (first taking back what
        batches running over their time have not started)."""
        now = self.monotonic()
        for batch in self.batches.values():
            if batch.held_up and now - batch.handed_out > BATCH_LIMIT:
                self._give_back(batch)
        while self.waiting and len(self.batches) < self.max_inflight and not self.closed:
            batch = [self.waiting.popleft()]
            left = BATCH_SECONDS - self._cost(batch[0].id)
            while self.waiting and len(batch) < BATCH_MAX:
                cost = self._cost(self.waiting[0].id)
                if cost >= left:
                    break
                left -= cost
                batch.append(self.waiting.popleft())
            handed = _Batch([(p, self.context(p)) for p in batch], self.monotonic())
            future = self.executor.submit(self._run, handed)
            self.batches[future] = handed
            for pid in handed.ids:
                self.waiting_ids.discard(pid)
                self.inflight[pid] = future
            future.add_done_callback(self.results.put)

    def _give_back(self, batch: _Batch) -> None:
        """What `batch` has not started goes back to the head of the line, in its order (or is
        dropped once the dispatcher is closed)."""
        back = batch.take_back()
        for p in reversed(back):
            batch.ids.remove(p.id)
            self.inflight.pop(p.id, None)
            if not self.closed:
                self.waiting.appendleft(p)
                self.waiting_ids.add(p.id)

    def reclaim_at(self) -> float | None:
        """When the earliest batch with polls not started runs over its time (None: none has)."""
        times = [b.handed_out for b in self.batches.values() if b.held_up]
        return min(times) + BATCH_LIMIT if times else None

    def _run(self, batch: _Batch) -> list[tuple[str, Any, float]]:
        """In a worker: the polls of one hand-off in turn, until none is left or the batch has
        run over its time (the rest is given back). Returns (provider id, result, seconds) for
        each poll done."""
        started = self.monotonic()
        done = []
        while (job := batch.next()) is not None:
            p, context = job
            before = self.monotonic()
            result = self.work(p, *context)
            done.append((p.id, result, self.monotonic() - before))
            if self.monotonic() - started > BATCH_LIMIT or self.closed:
                break  # over its time, or stopping: the rest is given back
        return done

    def drain(self, timeout: float, handle: Callable[[Any], None]) -> int:
        """Wait up to `timeout` for finished polls; `handle` every result that is ready.
        Returns how many were handled."""
        try:
            future = self.results.get(timeout=timeout) if timeout > 0 else self.results.get_nowait()
        except queue.Empty:
            return 0
        handled = 0
        while True:
            batch = self.batches.pop(future, None)
            if batch is not None:
                self._give_back(batch)  # what it did not start
                for pid in batch.ids:
                    self.inflight.pop(pid, None)
            if not future.cancelled():  # cancelled before it started (shutdown): nothing happened
                for pid, result, took in future.result():
                    self.took[pid] = took
                    handle(result)
                    handled += 1
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
        return [pid for b in self.batches.values() if now - b.handed_out > limit for pid in b.ids]

    def close(self) -> None:
        """Stop handing out work: drop the line, cancel what has not started."""
        self.closed = True
        self.waiting.clear()
        self.waiting_ids.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["Dispatcher"]
