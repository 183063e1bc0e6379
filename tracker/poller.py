"""The loop shell: signals, one loop for `tracker run` and `run --once` (rq's work(burst=…)),
reload on SIGHUP, and the service manager told what is going on.

The parts it drives each have a module: `read` (reading a page, in worker threads),
`dispatch` (the bounded hand-off to the pool), `ledger` (what a poll outcome means; the only
writer, on this thread), `outbox` (announcing what was claimed). Fetcher, executor, scheduler
and clock can be passed in, so tests drive the loop with their own. Signal handlers only set
flags; the loop notices within a second.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

import schedule

from . import __version__, memory, metrics, systemd
from .config import Provider, Settings
from .dispatch import Dispatcher
from .errors import StoreError, TrackerError
from .fetch import Fetcher
from .ledger import Ledger
from .notify.worker import Deliverer
from .outbox import Outbox
from .read import Outcome, configured_format, endpoints, read
from .store import Store
from .timetable import Timetable

RECOVER_EVERY = 30.0  # seconds between looks for updates a dead process left unemitted
STOP_GRACE = 5.0  # seconds in-flight polls get to finish after SIGTERM
TICK = (0.25, 1.0)  # bounds of the pause between two looks at the schedule, in seconds
FLUSH_EVERY = 5.0  # seconds between writes of "polled, nothing new" bookkeeping
TRIM_AFTER = 200  # polls handled before free memory is handed back (at a quiet moment)


def _jittered(job_interval: float) -> tuple[float, float]:
    """Bounds for schedule's every(lo).to(hi): ±10 % around the interval, so a hundred
    providers started together drift apart instead of firing in the same second."""
    if job_interval < 10:
        return job_interval, job_interval
    return round(job_interval * 0.9), round(job_interval * 1.1)


def _tick(providers: dict[str, Provider]) -> float:
    """The shortest pause between two looks at the schedule: 1/60 of the shortest interval,
    within TICK."""
    shortest = min((p.interval for p in providers.values()), default=60)
    return min(TICK[1], max(TICK[0], shortest / 60))


class Poller:
    """Runs the providers of `settings` against `store`: forever, or once."""

    def __init__(
        self, settings: Settings, store: Store, log: Any, *, source: str = "run",
        reload: Callable[[], Settings] | None = None, fetcher: Fetcher | None = None,
        executor: Executor | None = None, scheduler: schedule.Scheduler | None = None,
        clock: Callable[[], datetime] | None = None, monotonic: Callable[[], float] = time.monotonic,
        work: Callable[..., Outcome] = read,
    ):
        self.settings = settings
        self.reload = reload  # re-reads the config (SIGHUP); raises ConfigError
        self.providers = {p.id: p for p in settings.providers}
        self.tick = _tick(self.providers)
        self.store = store
        self.log = log
        self.monotonic = monotonic
        self.fetcher = fetcher or Fetcher(timeout=settings.timeout, max_bytes=settings.max_bytes,
                                          workers=settings.workers)
        if executor is None:
            memory.tune()  # before the worker threads exist (see tracker/memory.py)
        self.executor = executor or ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="poll")
        self.handled_since_trim = 0
        self.scheduler = scheduler or Timetable()
        # Notifications: delivery threads with connections of their own, so a slow
        # destination never holds up this loop; the outbox queues with its mark.
        self.deliverer = Deliverer(store.path, settings.notify, log, lease=settings.lease)
        self.outbox = Outbox(store, log, clock=clock, notify=self.deliverer, lease=settings.lease)
        # A dead process's claims are looked for twice a minute, or as often as they run out.
        self.recover_every = min(RECOVER_EVERY, settings.lease)
        self.ledger = Ledger(store, log, self.outbox, source=source, clock=clock, monotonic=monotonic)
        self.dispatcher = Dispatcher(self.executor, work, max_inflight=settings.workers,
                                     context=self._context, monotonic=monotonic)
        self.stop = threading.Event()
        self.force = False
        self.reload_requested = False
        self.jobs: dict[str, schedule.Job] = {}
        self.watchdog = systemd.watchdog_interval()
        self.last_ping = 0.0
        self.status_text = ""

    # -- signals -----------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only set flags here: the main loop notices within a second.
        if self.stop.is_set():
            self.force = True
        self.stop.set()

    def _on_hangup(self, signum: int, frame: Any) -> None:
        self.reload_requested = True

    def _install_signals(self, hangup: bool = False) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        if hangup:
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        return previous

    # -- the loop ----------------------------------------------------------------------

    def run_once(self) -> int:
        return self.run(once=True)

    def run(self, once: bool = False) -> int:
        """The daemon: poll every provider on its interval until SIGTERM/SIGINT. With `once`,
        poll every provider one time (backoff or not), emit what is new, and return."""
        previous = self._install_signals(hangup=not once)
        try:
            self._start("once" if once else "run")
            if once:
                for p in self.providers.values():
                    self.dispatcher.submit(p)
            else:
                for p in self.providers.values():
                    self._schedule(p)
                self.scheduler.run_all()  # first poll of everything now; then each on its interval
                systemd.ready(self._status())  # the database is open and every provider scheduled
            self._loop(once)
            if self.stop.is_set():
                return self._shutdown()
            return self._complete()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _loop(self, once: bool) -> None:
        next_tick = self.monotonic()
        next_flush, next_recover = next_tick + FLUSH_EVERY, next_tick + self.recover_every
        while not self.stop.is_set():
            if once and not self.dispatcher.pending:
                return
            now = self.monotonic()
            if self.reload_requested:
                self.reload_requested = False
                self._reload()
            self._ping(now)
            if not once and now >= next_tick:
                # The polls that fell due meanwhile go out together (the dispatcher batches
                # the quick ones): with a 60 s interval the schedule is looked at once a
                # second, and a poll starts at most a second late on an interval jittered by
                # ±10 % anyway; shorter intervals are looked at more often (down to 0.25 s).
                self.scheduler.run_pending()
                self._publish_status()  # sent only when its text changed
                idle = self.scheduler.idle_seconds
                next_tick = now + max(self.tick, min(TICK[1], idle if idle is not None else TICK[1]))
            if now >= next_flush:
                self.ledger.flush_quiet()
                self._sweep()
                next_flush = now + FLUSH_EVERY
                if self.handled_since_trim >= TRIM_AFTER and not self.dispatcher.pending:
                    # A busy stretch (the first cycle above all) is over: hand its memory back.
                    memory.trim()
                    self.handled_since_trim = 0
            if now >= next_recover:
                self.ledger.recover()
                next_recover = now + self.recover_every
            self.dispatcher.fill()  # what fell due (or came back from an over-running batch)
            wake = next_tick if not once else now + 0.5
            reclaim = self.dispatcher.reclaim_at()  # a batch held by a page turned slow
            if reclaim is not None:
                wake = min(wake, reclaim)
            if self.watchdog is not None:
                wake = min(wake, self.last_ping + self.watchdog)
            self.dispatcher.drain(max(0.0, wake - self.monotonic()), self._handle)

    def _keep_connections(self) -> None:
        """Keep connections to the hosts the providers' pages are on; drop any other's."""
        keep = getattr(self.fetcher, "keep", None)
        if keep is not None:
            keep(url for p in self.providers.values() for url in (p.url, *endpoints(p, configured_format(p))))

    def _sweep(self) -> None:
        sweep = getattr(self.fetcher, "sweep", None)
        if sweep is not None:
            sweep()  # connections their servers keep no longer

    def _start(self, mode: str) -> None:
        self._keep_connections()
        opened = getattr(self.fetcher, "opened", None)
        if opened is not None:
            metrics.connections(opened)
        self.ledger.load(self.providers.values())
        self.deliverer.start()
        self.log.info(
            "tracker_started", version=__version__, providers=len(self.providers),
            workers=self.settings.workers, database=str(self.store.path), mode=mode, owner=self.outbox.owner,
        )
        for warning in self.settings.warnings:
            self.log.warning("polite_interval", detail=warning)
        self.ledger.recover()

    def _complete(self) -> int:
        """The end of `run --once`: everything polled and recorded."""
        self.ledger.flush_quiet()
        self.ledger.recover()
        self.deliverer.finish()  # what is waiting goes out now, for a bounded time
        self.log.info("run_complete", providers=len(self.providers), **self.ledger.counts)
        self.executor.shutdown(wait=True)
        self.fetcher.close()
        if self.ledger.unrecorded:
            # The pages were read but the database would not take what they said: a timer
            # or cron job must see that as a failure (a page failing is not one).
            raise StoreError(
                f"{self.store.path}: {self.ledger.unrecorded} poll(s) could not be recorded: "
                f"{self.ledger.last_store_error}"
            )
        return 0

    def _shutdown(self) -> int:
        """Finish in-flight polls for up to STOP_GRACE seconds, then leave."""
        systemd.stopping(f"stopping: finishing {len(self.dispatcher.inflight)} polls")
        self.log.info("tracker_stopping", in_flight=len(self.dispatcher.inflight))
        self.scheduler.clear()
        self.dispatcher.close()
        deadline = self.monotonic() + STOP_GRACE
        while self.dispatcher.inflight and self.monotonic() < deadline and not self.force:
            self.dispatcher.drain(0.1, self._handle)
        self.ledger.flush_quiet()
        self.deliverer.stop()  # a message being sent gets a few seconds; leases are given back
        abandoned = sorted(self.dispatcher.inflight)
        self.log.info("tracker_stopped", abandoned=abandoned, **self.ledger.counts)
        self.fetcher.close()
        if abandoned:
            # A worker is stuck in a request past its grace. Nothing it holds is written
            # (only this thread writes), so leave without joining it: the next run polls again.
            self.store.close()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return 0

    # -- polling -----------------------------------------------------------------------

    def _context(self, p: Provider) -> tuple:
        """What a worker reads a page with, taken on this thread: a copy of its poll state."""
        state = self.ledger.state(p.id)
        return self.fetcher, replace(state, cache=dict(state.cache)), self.ledger.now()

    def submit(self, provider: Provider) -> None:
        """Scheduler job: queue one provider for a poll unless one is already under way or it
        is backing off."""
        if self.stop.is_set():
            return
        if self.dispatcher.busy(provider.id):
            self.log.debug("poll_skipped", provider_id=provider.id, reason="previous poll not finished")
            return
        until = self.ledger.backing_off(provider.id)
        if until:
            self.log.debug("poll_skipped", provider_id=provider.id, reason="backing off", until=until)
            return
        self.dispatcher.submit(provider)

    def _handle(self, outcome: Outcome) -> None:
        self.handled_since_trim += 1
        result = self.ledger.apply(outcome)
        self.log.debug("poll", provider_id=outcome.provider.id, result=result, ms=outcome.ms)

    def _schedule(self, p: Provider) -> None:
        lo, hi = _jittered(p.interval)
        job = self.scheduler.every(lo)
        if hi > lo:
            job = job.to(hi)
        self.jobs[p.id] = job.seconds.do(self.submit, p)
        if isinstance(self.scheduler, Timetable):
            self.scheduler.track(self.jobs[p.id])

    # -- reload ------------------------------------------------------------------------

    def _reload(self) -> None:
        """SIGHUP: re-read the config. Added providers start polling now, removed ones stop,
        changed ones are rescheduled; their history and poll state stay in the database. A
        config that does not load is logged and the running one kept."""
        if self.reload is None:
            return
        systemd.reloading()
        try:
            self._apply(self.reload())
        except TrackerError as e:
            self.log.error("config_reload_failed", error=str(e), detail="keeping the running configuration")
        finally:
            systemd.ready_again()

    def _apply(self, new: Settings) -> None:
        old = self.providers
        fresh = {p.id: p for p in new.providers}
        added = [pid for pid in fresh if pid not in old]
        removed = [pid for pid in old if pid not in fresh]
        changed = [pid for pid in fresh if pid in old and fresh[pid] != old[pid]]
        for pid in removed + changed:
            self.scheduler.cancel_job(self.jobs.pop(pid))
        for pid in removed:
            metrics.forget(pid)
            self.dispatcher.forget(pid)
        self.providers = fresh
        self.tick = _tick(fresh)
        self._keep_connections()
        self.store.sync_providers(fresh[pid] for pid in added + changed)
        for pid in added + changed:
            self._schedule(fresh[pid])
            self.submit(fresh[pid])
        ignored = [k for k in ("database", "workers", "log_format", "log_level", "log_target", "metrics_listen",
                               "lease")
                   if getattr(new, k) != getattr(self.settings, k)]
        self.fetcher.timeout = new.timeout
        if new.notify != self.settings.notify:
            self.deliverer.update(new.notify)  # destinations are reloaded live
        self.settings = new
        self.log.info("config_reloaded", providers=len(fresh), added=added, removed=removed, changed=changed,
                      **({"needs_restart": ignored} if ignored else {}))
        self._publish_status()

    # -- the service manager -----------------------------------------------------------

    def _ping(self, now: float) -> None:
        """WATCHDOG=1, only while the loop makes progress: no poll has been running for
        longer than any request may take (its deadline plus the read timeout, with margin).
        A stuck worker therefore stops the pings, and systemd restarts the service."""
        if self.watchdog is None or now - self.last_ping < self.watchdog:
            return
        limit = 2 * self.settings.timeout + 30
        stuck = self.dispatcher.stuck(limit)
        if stuck:
            self.log.error("polls_stuck", providers=stuck[:10], seconds=round(limit))
            return
        systemd.alive()
        self.last_ping = now

    def _status(self) -> str:
        n = len(self.providers)
        text = (f"{n} provider{'s' if n != 1 else ''}, {self.ledger.failing} failing, "
                f"{self.ledger.counts['announced']} updates announced since start")
        if self.outbox.last:
            text += f"; last: {self.outbox.last}"
        return text

    def _publish_status(self) -> None:
        text = self._status()
        if text != self.status_text:
            self.status_text = text
            systemd.set_status(text)


__all__ = ["Poller"]
