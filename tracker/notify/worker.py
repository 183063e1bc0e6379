"""Delivery workers: one thread per destination, each with its own SQLite connection, sending
what the deliveries table holds for it.

Why threads of their own: a destination that is down, slow or rate limited must never delay
polling or the log, so the main loop only inserts rows (inside the transaction that marks a
record emitted) and wakes the workers. Each worker leases the heads of its lanes (one lane per
provider), sends in order at the destination's rate, retries with exponential backoff and
jitter (or as long as Retry-After says), and drops what outlives the destination's retention.

`tracker run` runs them for its whole life; `run --once` and `backfill` run them beside their
work and then give them a bounded time to finish (`finish`), leaving the rest to the next
process (a daemon on the same database takes it at once).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import requests

from .. import backoff, metrics, times
from ..errors import TrackerError
from ..store import Store, locate
from . import queue

if TYPE_CHECKING:
    from .transport import Sent
from .destinations import Destination

LEASE_SECONDS = 60.0  # a lane leased by a process stays its own this long (renewed while sending)
IDLE_POLL = 2.0  # seconds between looks for deliveries queued by other processes
PER_LANE = 20  # deliveries leased at once from one lane
BACKOFF_BASE = 0.5  # seconds before the first retry; doubled per attempt, with jitter
BACKOFF_MAX = 300.0  # the longest pause between two attempts without a Retry-After
QUIET_FAILURES = 3  # after this many failures in a row, notify_failed repeats at most…
REPEAT_EVERY = 600.0  # …once per this many seconds per destination
STORE_ERRORS_EVERY = 60.0
DRAIN_SECONDS = 30.0  # how long `run --once` and `backfill` give deliveries before exiting
DRAIN_RETRY_WITHIN = 1.0  # while draining, a retry due within this many seconds is waited for
STOP_GRACE = 5.0  # seconds a worker gets to finish the message it is sending


def retry_delay(attempts: int, retry_after: float | None = None, rng: random.Random | Any = random) -> float:
    """Seconds before the next attempt after `attempts` failed ones: what Retry-After asked
    (capped), else exponential from BACKOFF_BASE with "equal jitter" (half to all of it)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), backoff.MAX_RETRY_AFTER)
    return backoff.jitter(backoff.doubling(attempts, BACKOFF_BASE, BACKOFF_MAX), rng)


class RateLimit:
    """At most `count` messages in any `per` seconds (a sliding window), plus pauses a
    destination asks for (429, Discord's X-RateLimit-Remaining: 0)."""

    def __init__(self, rate: tuple[int, float] | None, monotonic: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.monotonic = monotonic
        self.sent: deque[float] = deque(maxlen=rate[0] if rate else 1)
        self.paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.monotonic() + seconds)

    def paused(self) -> float:
        """Seconds left of a pause the destination asked for (0: none)."""
        return max(0.0, self.paused_until - self.monotonic())

    def delay(self) -> float:
        """Seconds to wait before the next message may go."""
        now = self.monotonic()
        wait = max(0.0, self.paused_until - now)
        if self.rate and len(self.sent) == self.rate[0]:
            wait = max(wait, self.sent[0] + self.rate[1] - now)
        return wait

    def wait(self, stop: threading.Event) -> bool:
        """Wait for a free slot; False if `stop` was set meanwhile."""
        while True:
            wait = self.delay()
            if wait <= 0:
                return not stop.is_set()
            if stop.wait(wait):
                return False

    def took(self) -> None:
        if self.rate:
            self.sent.append(self.monotonic())


class Worker(threading.Thread):
    """Sends one destination's deliveries."""

    def __init__(self, owner: "Deliverer", dest: Destination):
        super().__init__(name=f"notify-{dest.name}", daemon=True)
        self.d = owner
        self.dest = dest
        self.limit = RateLimit(dest.rate, owner.monotonic)
        self.wakeup = threading.Event()
        self.stop_event = threading.Event()
        self.idle_gen = -1  # the last generation of wake() after which this worker found nothing to do
        self.failures = 0  # failed attempts in a row, any lane
        self.failing_since: float | None = None
        self.logged_at = -1e9
        self.unlogged = 0
        self.store_errors = (-1e9, 0)
        self.session: requests.Session | None = None
        # Deliveries sent whose mark did not reach the database (it went away): marked before
        # anything is leased again, so this process never sends them twice.
        self.unmarked: list[tuple[int, str]] = []

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        store = None
        try:
            store = Store.open(self.d.path)
            self.q = queue.Queue(store, self.d.owner)
            self.session = requests.Session()
            while not self.stopping:
                self.wakeup.clear()
                generation = self.d.generation
                try:
                    busy = self._round()
                except (sqlite3.Error, TrackerError) as e:
                    self._store_failed(e)
                    self.stop_event.wait(1.0)
                    continue
                if busy is True:
                    continue
                self.idle_gen = generation
                self.wakeup.wait(busy)
        except (sqlite3.Error, TrackerError) as e:  # the database would not open: say so, stop
            self._store_failed(e)
        finally:
            self._close(store)

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def _round(self) -> bool | float:
        """Lease and send one batch. True when there may be more right away; else the seconds
        to sleep (or be woken) before looking again: nothing is due now."""
        dest = self.dest
        pause = self.limit.paused()
        if pause > 0:  # the destination asked for a rest (429, rate limit headers): lease nothing
            if self.d.draining and pause > DRAIN_RETRY_WITHIN:
                return IDLE_POLL  # left for the next process
            self.stop_event.wait(pause)
            return True
        if self.unmarked:
            for delivery_id, at in list(self.unmarked):
                self.q.delivered([delivery_id], at)
                self.unmarked.remove((delivery_id, at))
        now_dt = self.d.clock()
        now = times.iso(now_dt)
        batch = self.q.lease(dest.name, now=now, until=times.iso(now_dt + timedelta(seconds=self.d.lease)),
                             drop_before=times.iso(now_dt - timedelta(seconds=dest.retention)), per_lane=PER_LANE)
        self._dropped(batch.dropped)
        for lane in batch.lanes:
            if lane[0].provider_id in batch.taken:  # a process died sending it (its lease ran out)
                self.d.log.info("notify_taken_over", destination=dest.name, type=dest.type,
                                provider_id=lane[0].provider_id, previous_owner=batch.taken[lane[0].provider_id],
                                deliveries=len(lane))
        if not batch.lanes:
            wait = IDLE_POLL
            if batch.next_due:
                due = (datetime.fromisoformat(batch.next_due.replace("Z", "+00:00")) - now_dt).total_seconds()
                if self.d.draining and due > DRAIN_RETRY_WITHIN:
                    return IDLE_POLL  # left for the next process
                if self.d.draining:
                    self.stop_event.wait(max(0.0, due))
                    return True
                wait = min(wait, max(0.01, due))
            return wait
        self._send_batch(batch)
        return True

    def _send_batch(self, batch: queue.Batch) -> None:
        from .transport import DeliveryFailed

        dest = self.dest
        blocked: set[str] = set()  # lanes whose head failed: released, the rest waits
        renew_at = self.d.monotonic() + self.d.lease / 2
        complete = False
        try:
            for d in _interleave(batch.lanes):
                if d.provider_id in blocked:
                    continue
                if not self.limit.wait(self.stop_event):
                    return
                if self.d.monotonic() > renew_at:
                    self.q.renew(dest.name, times.iso(self.d.clock() + timedelta(seconds=self.d.lease)))
                    renew_at = self.d.monotonic() + self.d.lease / 2
                self.limit.took()
                try:
                    sent = (self.d.send(dest, d.record, self.session, d.action) if d.action is not None
                            else self.d.send(dest, d.record, self.session))
                except DeliveryFailed as e:
                    self._failed(d, e.error, e.retry_after, blocked)
                    if e.retry_after is not None:
                        self.limit.pause(retry_delay(0, e.retry_after))
                        return  # the whole destination asked for a rest
                    continue
                except Exception as e:  # a bug must cost one attempt, not the worker
                    self._failed(d, dest.redact(f"internal error: {type(e).__name__}: {e}"), None, blocked)
                    continue
                at = times.iso(self.d.clock())
                try:
                    self.q.delivered([d.id], at)
                except (sqlite3.Error, TrackerError):
                    self.unmarked.append((d.id, at))
                    self._ok(d)
                    raise
                self._ok(d)
                if sent.pause:
                    self.limit.pause(sent.pause)
            complete = True
        finally:
            if not complete:  # stopped or paused halfway: give the rest back at once
                try:
                    self.q.release(dest.name)
                except (sqlite3.Error, TrackerError) as e:
                    self._store_failed(e)

    # -- outcomes ----------------------------------------------------------------------

    def _ok(self, d: queue.Delivery) -> None:
        metrics.delivery(self.dest.name, "ok")
        self.d.delivered += 1
        if self.failures:
            down = self.d.monotonic() - (self.failing_since or self.d.monotonic())
            self.d.log.info("notify_recovered", destination=self.dest.name, type=self.dest.type,
                            failures=self.failures, seconds=round(down, 1),
                            **({"unlogged": self.unlogged} if self.unlogged else {}))
        self.failures, self.failing_since, self.unlogged, self.logged_at = 0, None, 0, -1e9

    def _failed(self, d: queue.Delivery, error: str, retry_after: float | None, blocked: set[str]) -> None:
        """Record a failed attempt of a lane's head: the lane is released and waits."""
        dest = self.dest
        wait = retry_delay(d.attempts + 1, retry_after, self.d.rng)
        attempts = self.q.failed(d, error, times.iso(self.d.clock() + timedelta(seconds=wait)))
        blocked.add(d.provider_id)
        metrics.delivery(dest.name, "failed")
        self.failures += 1
        self.failing_since = self.failing_since or self.d.monotonic()
        now = self.d.monotonic()
        if self.failures > QUIET_FAILURES and now - self.logged_at < REPEAT_EVERY:
            self.unlogged += 1
        else:
            self.d.log.warning(
                "notify_failed", destination=dest.name, type=dest.type, provider_id=d.provider_id,
                event_id=d.event_id, attempts=attempts, failures=self.failures, error=error,
                retry_in=round(wait, 1), **({"retry_after": retry_after} if retry_after is not None else {}),
                **({"unlogged": self.unlogged} if self.unlogged else {}))
            self.logged_at, self.unlogged = now, 0

    def _dropped(self, rows: Sequence[sqlite3.Row]) -> None:
        for r in rows[:50]:
            metrics.delivery(self.dest.name, "dropped")
            self.d.log.error("notify_dropped", destination=self.dest.name, type=self.dest.type,
                             provider_id=r["provider_id"], event_id=r["event_id"], attempts=r["attempts"],
                             error=r["last_error"], queued_at=r["queued_at"],
                             detail=f"not delivered within the retention ({self.dest.retention:g} s)")
        if len(rows) > 50:
            for _ in rows[50:]:
                metrics.delivery(self.dest.name, "dropped")
            self.d.log.error("notify_dropped", destination=self.dest.name, type=self.dest.type,
                             deliveries=len(rows) - 50, detail="and more, past the retention")

    def _store_failed(self, e: Exception) -> None:
        last, unlogged = self.store_errors
        now = self.d.monotonic()
        if now - last < STORE_ERRORS_EVERY:
            self.store_errors = (last, unlogged + 1)
            return
        self.d.log.error("store_failed", error=str(e), database=str(self.d.path), destination=self.dest.name,
                         **({"unlogged": unlogged} if unlogged else {}))
        self.store_errors = (now, 0)

    def _close(self, store: Store | None) -> None:
        if self.session is not None:
            self.session.close()
        if store is None:
            return
        try:
            self.q.release(self.dest.name)
            if self.d.draining:
                waiting = self.q.waiting(self.dest.name)
                if waiting:
                    self.d.log.info("notify_deferred", destination=self.dest.name, type=self.dest.type,
                                    waiting=waiting, detail="left for the daemon or the next run")
        except (sqlite3.Error, TrackerError) as e:
            self._store_failed(e)
        finally:
            try:
                store.close()
            except (sqlite3.Error, TrackerError):
                pass


def _interleave(lanes: Sequence[Sequence[queue.Delivery]]) -> Iterable[queue.Delivery]:
    """Round robin over lanes, each in its order: a long lane does not starve a short one."""
    for i in range(max((len(lane) for lane in lanes), default=0)):
        for lane in lanes:
            if i < len(lane):
                yield lane[i]


def _send(dest: Destination, record: dict, session: Any, action: str | None = None) -> Sent:
    # The transports (smtplib, the email package, the payload builders) are imported when a
    # first message goes out: a daemon with no destination never loads them.
    from .transport import send

    return send(dest, record, session, action)


class Deliverer:
    """The delivery workers of one process, and its part in the outbox: `enqueue` gives the
    outbox the rows to insert with its mark, `wake` tells the workers after the commit."""

    def __init__(self, path: Any, destinations: Sequence[Destination], log: Any, *,
                 clock: Callable[[], datetime] | None = None, monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, send: Callable[..., Sent] | None = None,
                 owner: str | None = None, lease: float = LEASE_SECONDS):
        from ..outbox import new_owner

        self.lease = lease  # seconds a lane leased stays ours (renewed while sending)
        self.path = locate(path)
        self.destinations = tuple(destinations)
        self.log = log
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        self.send = send or _send
        self.owner = owner or new_owner()
        self.workers: dict[str, Worker] = {}
        self.generation = 0
        self.draining = False
        self.delivered = 0

    # -- the outbox's side -------------------------------------------------------------

    def enqueue(self, rows: Iterable[sqlite3.Row], event: str, now: str) -> Callable[[sqlite3.Connection], int] | None:
        """The deliveries of the records for `rows`, as a function the outbox runs inside the
        transaction that marks them emitted (None: no destination wants any)."""
        if not self.destinations:
            return None
        rows = list(rows)
        return queue.inserter(queue.plan(self.destinations, queue.records(rows, event, now), now,
                                         [queue.touched(r) for r in rows]))

    def wake(self) -> None:
        """New deliveries were committed (or finish() wants an answer): look now."""
        self.generation += 1
        for w in list(self.workers.values()):
            w.wakeup.set()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if not self.destinations:
            return
        metrics.backlog(lambda: queue.backlog(self.path))
        for dest in self.destinations:
            self._start(dest)

    def _start(self, dest: Destination) -> None:
        w = Worker(self, dest)
        self.workers[dest.name] = w
        w.start()

    def update(self, destinations: Sequence[Destination]) -> None:
        """A reloaded config (SIGHUP): new destinations start, removed ones stop (their backlog
        stays in the database), changed ones carry on with their new settings."""
        fresh = {d.name: d for d in destinations}
        self.destinations = tuple(destinations)
        for name in [n for n in self.workers if n not in fresh]:
            self.workers.pop(name).stop_event.set()
        for name, dest in fresh.items():
            w = self.workers.get(name)
            if w is None or not w.is_alive():
                self._start(dest)
            elif w.dest != dest:
                w.dest = dest
                if w.limit.rate != dest.rate:
                    w.limit = RateLimit(dest.rate, self.monotonic)
        if self.destinations:
            metrics.backlog(lambda: queue.backlog(self.path))
        self.wake()

    def finish(self, budget: float = DRAIN_SECONDS) -> None:
        """For `run --once` and `backfill`: deliver what is waiting, for at most `budget`
        seconds, then stop. Retries due later are left to the next process."""
        if not self.workers:
            return
        self.draining = True
        deadline = self.monotonic() + budget
        self.wake()
        generation = self.generation
        while self.monotonic() < deadline:
            if all(w.idle_gen >= generation or not w.is_alive() for w in self.workers.values()):
                break
            time.sleep(0.02)
        self.stop()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop every worker: each finishes the message it is sending (for up to `grace`
        seconds in all) and gives its leases back. One stuck longer is left behind: its leases
        pass to the next process as soon as this one is gone."""
        for w in self.workers.values():
            w.stop_event.set()
        self.wake()
        deadline = self.monotonic() + grace
        for w in self.workers.values():
            w.join(max(0.0, deadline - self.monotonic()))
        abandoned = [name for name, w in self.workers.items() if w.is_alive()]
        if abandoned:
            self.log.warning("notify_abandoned", destinations=abandoned,
                             detail="a message was still being sent; the next process sends it again")


__all__ = ["DRAIN_SECONDS", "Deliverer", "RateLimit", "Worker", "retry_delay"]
