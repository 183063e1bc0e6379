"""The daemon loop: a schedule.Scheduler hands due providers to a thread pool; results come
back to the main thread, which alone writes the database and emits records.

Worker threads only fetch and parse (`poll_one`), so no exception and no database handle ever
crosses a thread. Signal handlers only set flags.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import secrets
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

import schedule

from . import __version__, backoff, systemd, times
from .adapters import FORMATS
from .config import Provider, Settings
from .emit import emit
from .errors import FetchError, ParseError, StoreError, TrackerError
from .fetch import Fetcher, HTTPStatusError
from .models import ParseResult
from .store import Store

LEASE_SECONDS = 60  # how long an announced-but-unemitted update stays ours
RECOVER_EVERY = 30.0  # seconds between looks for updates a dead process left unemitted
STOP_GRACE = 5.0  # seconds in-flight polls get to finish after SIGTERM
TICK = (0.25, 1.0)  # bounds of the pause between two looks at the schedule, in seconds
FLUSH_EVERY = 5.0  # seconds between writes of "polled, nothing new" bookkeeping
QUIET_FAILURES = 3  # after this many consecutive failures, poll_failed repeats at most…
REPEAT_EVERY = 600.0  # …once per this many seconds per provider (unless the error changes)


@dataclass
class PollResult:
    """What a worker hands back to the main thread. Exactly one of error/unchanged/parsed."""

    provider: Provider
    ms: int = 0
    error: str | None = None
    unchanged: bool = False
    parsed: ParseResult | None = None
    validators: dict[str, str | None] = field(default_factory=dict)
    retry_after: float | None = None  # seconds the page asked us to wait (429/503)
    format: str = "statuspage"  # the format the page was read in
    url: str = ""  # the URL polled
    detected: str | None = None  # what `format = "auto"` found by probing, to remember
    fallback: str | None = None  # why incident.io's native JSON was not used this time


def probe(provider: Provider, fetcher: Fetcher) -> str:
    """The one probe of `format = "auto"` (SPEC §5), for a URL that does not say its platform:
    incident.io pages answer `/proxy/<host>` with their summary JSON; anything else is read as
    Statuspage, whose API incident.io pages also copy. Raises FetchError if the page cannot be
    asked at all (nothing is remembered then)."""
    url = f"{provider.url.rstrip('/')}/proxy/{urlsplit(provider.url).hostname}"
    try:
        got = fetcher.get(url)
    except HTTPStatusError:
        return "statuspage"  # 404 & co: not incident.io
    try:
        payload = json.loads(got.body or b"")
    except ValueError:
        return "statuspage"
    return "incidentio" if isinstance(payload, dict) and isinstance(payload.get("summary"), dict) else "statuspage"


def _read(provider: Provider, fmt: str, fetcher: Fetcher, state: dict[str, Any], result: PollResult,
          now: str) -> None:
    """Fetch and parse the page in `fmt`, filling `result` (validators, parsed or unchanged)."""
    url = provider.endpoint_for(fmt)
    result.format, result.url = fmt, url
    same_url = state.get("validators_url") == url
    got = fetcher.get(
        url,
        etag=state.get("etag") if same_url else None,
        last_modified=state.get("last_modified") if same_url else None,
    )
    if got.not_modified:
        result.unchanged = True
        return
    body = got.body or b""
    digest = hashlib.sha256(body).hexdigest()
    result.validators = {
        "etag": got.etag, "last_modified": got.last_modified,
        "validators_url": url, "body_sha256": digest,
    }
    if same_url and digest == state.get("body_sha256"):
        # Byte-identical to the last body recorded in full: nothing can be new.
        result.unchanged = True
        return
    spec = FORMATS[fmt]
    if spec.raw:
        payload: Any = body
    else:
        try:
            payload = json.loads(body)
        except ValueError as e:
            ctype = got.content_type.split(";")[0].strip() or "no content type"
            raise ParseError(f"expected JSON, got {ctype} (HTTP {got.status}): {e}") from None
    extra = {"now": now} if fmt == "incidentio" else {}
    if fmt == "incidentio" and isinstance(payload, dict) and "summary" not in payload:
        payload = {**payload, **_incidentio_summary(provider, fetcher)}
    result.parsed = spec.parse(payload, base_url=provider.url, **extra)


def _incidentio_summary(provider: Provider, fetcher: Fetcher) -> dict[str, Any]:
    """The page's summary, read when its incident list changed: the list names components
    by id only, the summary by name too. Without it the updates still arrive, unnamed."""
    try:
        got = fetcher.get(f"{provider.url.rstrip('/')}/proxy/{urlsplit(provider.url).hostname}")
        summary = json.loads(got.body or b"")
    except (FetchError, ValueError):
        return {}
    return {"summary": summary["summary"]} if isinstance(summary, dict) and isinstance(summary.get("summary"), dict) else {}


def poll_one(provider: Provider, fetcher: Fetcher, state: dict[str, Any] | None, now: str | None = None) -> PollResult:
    """Fetch and parse one provider's page. Runs in a worker thread; never raises."""
    started = time.monotonic()
    result = PollResult(provider)
    state = state or {}
    now = now or times.now_iso()
    try:
        fmt = provider.kind
        if fmt == "auto":
            fmt = state.get("detected_format") or probe(provider, fetcher)
            if not state.get("detected_format"):
                result.detected = fmt
        try:
            _read(provider, fmt, fetcher, state, result, now)
        except (ParseError, HTTPStatusError) as e:
            if fmt != "incidentio" or (isinstance(e, HTTPStatusError) and e.status in (429, 503)):
                raise
            # The native JSON failed or changed shape: read the Statuspage-compatible copy
            # (readable fallback messages) rather than go silent.
            result.fallback = f"{result.url}: {e}"
            result.parsed, result.unchanged, result.validators = None, False, {}
            _read(provider, "statuspage", fetcher, state, result, now)
    except HTTPStatusError as e:
        result.error = str(e)
        result.retry_after = backoff.parse_retry_after(e.retry_after)
    except (FetchError, ParseError) as e:
        result.error = str(e)
    except Exception as e:  # an adapter bug must cost one poll, not the daemon
        result.error = f"unexpected {type(e).__name__}: {e}"
    result.ms = int((time.monotonic() - started) * 1000)
    return result


def _lease_until() -> str:
    return times.iso(datetime.now(timezone.utc) + timedelta(seconds=LEASE_SECONDS))


def _jittered(job_interval: float) -> tuple[float, float]:
    """Bounds for schedule's every(lo).to(hi): ±10 % around the interval, so a hundred
    providers started together drift apart instead of firing in the same second."""
    if job_interval < 10:
        return job_interval, job_interval
    return round(job_interval * 0.9), round(job_interval * 1.1)


class Poller:
    """Runs the providers of `settings` against `store`: forever, or once."""

    def __init__(
        self, settings: Settings, store: Store, log: Any, *, source: str = "run",
        reload: Callable[[], Settings] | None = None,
    ):
        self.settings = settings
        self.reload = reload  # re-reads the config (SIGHUP); raises ConfigError
        self.providers = {p.id: p for p in settings.providers}
        self.store = store
        self.log = log
        self.source = source
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.fetcher = Fetcher(timeout=settings.timeout, max_bytes=settings.max_bytes)
        self.executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="poll")
        self.scheduler = schedule.Scheduler()
        # Polls handed to the pool, at most two per worker: a parsed page waits in memory
        # until this thread records it, so an unbounded hand-off (1,000 providers due at
        # start) would hold hundreds of parsed pages at once. The rest wait in line here.
        self.max_inflight = settings.workers * 2
        self.inflight: dict[str, Future] = {}
        self.waiting: deque[Provider] = deque()
        self.waiting_ids: set[str] = set()
        self.results: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        self.state: dict[str, dict[str, Any]] = {}
        # "Polled, nothing new" for providers with nothing else to record, written in one
        # transaction every FLUSH_EVERY seconds rather than one commit per poll.
        self.quiet: dict[str, str] = {}
        self.stop = threading.Event()
        self.force = False
        self.counts = {"polls": 0, "failed": 0, "new": 0, "announced": 0}
        # provider id -> (monotonic time of the last poll_failed record, its error, failures since)
        self.failure_log: dict[str, tuple[float, str | None, int]] = {}
        self.fallbacks: set[str] = set()  # providers whose format_fallback was logged
        self._store_errors: tuple[float, int] = (-1e9, 0)  # (last store_failed record, unlogged since)
        # The daemon leaves a failing provider alone until its backoff has passed; an explicit
        # `run --once` polls everything it was asked to.
        self.honour_backoff = True
        self.jobs: dict[str, schedule.Job] = {}
        self.started_at: dict[str, float] = {}  # provider id -> when its running poll was handed out
        self.reload_requested = False
        self.watchdog = systemd.watchdog_interval()
        self.last_ping = 0.0
        self.status_text = ""
        self.last_update: str | None = None  # "provider: incident (status)" of the newest emission

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

    # -- lifecycle ---------------------------------------------------------------------

    def _start(self, mode: str) -> None:
        self.store.sync_providers(self.providers.values())
        self.state = {k: dict(v) for k, v in self.store.poll_states().items()}
        self.log.info(
            "tracker_started", version=__version__, providers=len(self.providers),
            workers=self.settings.workers, database=str(self.store.path), mode=mode,
        )
        for warning in self.settings.warnings:
            self.log.warning("polite_interval", detail=warning)
        self.recover()

    def run(self) -> int:
        """The daemon: poll every provider on its interval until SIGTERM/SIGINT."""
        previous = self._install_signals(hangup=True)
        try:
            self._start("run")
            for p in self.providers.values():
                self._schedule(p)
            self.scheduler.run_all()  # first poll of everything now; then each on its interval
            # Ready: the database is open and every provider has its schedule.
            systemd.notify("READY=1", systemd.status(self._status()))
            next_tick = time.monotonic()
            next_flush, next_recover = next_tick + FLUSH_EVERY, next_tick + RECOVER_EVERY
            while not self.stop.is_set():
                now = time.monotonic()
                if self.reload_requested:
                    self.reload_requested = False
                    self._reload()
                self._ping(now)
                if now >= next_tick:
                    # Looking at the schedule costs a pass over every job, so it is done a
                    # few times a second at most; a poll may start up to TICK[0] s late.
                    self.scheduler.run_pending()
                    self._publish_status()  # sent only when its text changed
                    idle = self.scheduler.idle_seconds
                    next_tick = now + min(TICK[1], max(TICK[0], idle if idle is not None else TICK[1]))
                if now >= next_flush:
                    self.flush_quiet()
                    next_flush = now + FLUSH_EVERY
                if now >= next_recover:
                    self.recover()
                    next_recover = now + RECOVER_EVERY
                wake = next_tick if self.watchdog is None else min(next_tick, self.last_ping + self.watchdog)
                self.drain(timeout=max(0.0, wake - time.monotonic()))
            return self._shutdown()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def run_once(self) -> int:
        """One poll of every provider, emit what is new, return."""
        previous = self._install_signals()
        self.honour_backoff = False
        try:
            self._start("once")
            for p in self.providers.values():
                self.submit(p)
            while (self.inflight or self.waiting) and not self.stop.is_set():
                self.drain(timeout=0.5)
            if self.stop.is_set():
                return self._shutdown()
            self.flush_quiet()
            self.recover()
            self.log.info("run_complete", providers=len(self.providers), **self.counts)
            self.executor.shutdown(wait=True)
            self.fetcher.close()
            if self.counts.get("unrecorded"):
                # The pages were read but the database would not take what they said: a
                # timer or cron job must see that as a failure (a page failing is not one).
                raise StoreError(
                    f"{self.store.path}: {self.counts['unrecorded']} poll(s) could not be recorded: "
                    f"{self.last_store_error}"
                )
            return 0
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _shutdown(self) -> int:
        """Finish in-flight polls for up to STOP_GRACE seconds, then leave."""
        systemd.notify("STOPPING=1", systemd.status(f"stopping: finishing {len(self.inflight)} polls"))
        self.log.info("tracker_stopping", in_flight=len(self.inflight))
        self.scheduler.clear()
        self.waiting.clear()
        self.waiting_ids.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + STOP_GRACE
        while self.inflight and time.monotonic() < deadline and not self.force:
            self.drain(timeout=0.1)
        self.flush_quiet()
        abandoned = sorted(self.inflight)
        self.log.info("tracker_stopped", abandoned=abandoned, **self.counts)
        self.fetcher.close()
        if abandoned:
            # A worker is stuck in a request past its grace. Nothing it holds is written
            # (only this thread writes), so leave without joining it: the next run polls again.
            self.store.close()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return 0

    def _schedule(self, p: Provider) -> None:
        lo, hi = _jittered(p.interval)
        job = self.scheduler.every(lo)
        if hi > lo:
            job = job.to(hi)
        self.jobs[p.id] = job.seconds.do(self.submit, p)

    def _reload(self) -> None:
        """SIGHUP: re-read the config. Added providers start polling now, removed ones stop,
        changed ones are rescheduled; their history and poll state stay in the database. A
        config that does not load is logged and the running one kept."""
        if self.reload is None:
            return
        # systemctl shows "reloading" until READY=1 comes back (sd_notify(3), Type=notify).
        systemd.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            self._apply(self.reload())
        except TrackerError as e:
            self.log.error("config_reload_failed", error=str(e), detail="keeping the running configuration")
        finally:
            systemd.notify("READY=1")

    def _apply(self, new: Settings) -> None:
        old = self.providers
        fresh = {p.id: p for p in new.providers}
        added = [pid for pid in fresh if pid not in old]
        removed = [pid for pid in old if pid not in fresh]
        changed = [pid for pid in fresh if pid in old and fresh[pid] != old[pid]]
        for pid in removed + changed:
            self.scheduler.cancel_job(self.jobs.pop(pid))
        self.providers = fresh
        self.store.sync_providers(fresh[pid] for pid in added + changed)
        for pid in added + changed:
            self._schedule(fresh[pid])
            self.submit(fresh[pid])
        ignored = [k for k in ("database", "workers", "log_format", "log_level", "log_target")
                   if getattr(new, k) != getattr(self.settings, k)]
        self.fetcher.timeout = new.timeout
        self.settings = new
        self.log.info("config_reloaded", providers=len(fresh), added=added, removed=removed, changed=changed,
                      **({"needs_restart": ignored} if ignored else {}))
        self._publish_status()

    def _ping(self, now: float) -> None:
        """WATCHDOG=1, only while the loop makes progress: no poll has been running for
        longer than any request may take (its deadline plus the read timeout, with margin).
        A stuck worker therefore stops the pings, and systemd restarts the service."""
        if self.watchdog is None or now - self.last_ping < self.watchdog:
            return
        limit = 2 * self.settings.timeout + 30
        stuck = [pid for pid, t in self.started_at.items() if now - t > limit]
        if stuck:
            self.log.error("polls_stuck", providers=stuck[:10], seconds=round(limit))
            return
        systemd.notify("WATCHDOG=1")
        self.last_ping = now

    def _status(self) -> str:
        failing = sum(1 for s in self.state.values() if s.get("failures"))
        n = len(self.providers)
        text = (f"{n} provider{'s' if n != 1 else ''}, {failing} failing, "
                f"{self.counts['announced']} updates announced since start")
        if self.last_update:
            text += f"; last: {self.last_update}"
        return text

    def _publish_status(self) -> None:
        text = self._status()
        if text != self.status_text:
            self.status_text = text
            systemd.notify(systemd.status(text))

    # -- polling -----------------------------------------------------------------------

    def submit(self, provider: Provider) -> None:
        """Scheduler job: queue one provider for a poll unless one is already under way."""
        if self.stop.is_set():
            return
        if provider.id in self.inflight or provider.id in self.waiting_ids:
            self.log.debug("poll_skipped", provider_id=provider.id, reason="previous poll not finished")
            return
        not_before = self.state.get(provider.id, {}).get("next_poll_at")
        if self.honour_backoff and not_before and not_before > times.now_iso():
            self.log.debug("poll_skipped", provider_id=provider.id, reason="backing off", until=not_before)
            return
        self.waiting.append(provider)
        self.waiting_ids.add(provider.id)
        self._fill()

    def _fill(self) -> None:
        """Hand waiting providers to the pool while it has room."""
        while self.waiting and len(self.inflight) < self.max_inflight and not self.stop.is_set():
            p = self.waiting.popleft()
            self.waiting_ids.discard(p.id)
            future = self.executor.submit(poll_one, p, self.fetcher, dict(self.state.get(p.id, {})), times.now_iso())
            self.inflight[p.id] = future
            self.started_at[p.id] = time.monotonic()
            future.add_done_callback(lambda f, pid=p.id: self.results.put((pid, f)))

    def drain(self, timeout: float) -> None:
        """Wait up to `timeout` for finished polls and record every one that is ready."""
        try:
            item = self.results.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._finish(*item)
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return

    def _finish(self, provider_id: str, future: Future) -> None:
        self.inflight.pop(provider_id, None)
        self.started_at.pop(provider_id, None)
        if not future.cancelled():  # cancelled before it started (shutdown): nothing happened
            result: PollResult = future.result()
            try:
                self.handle(result)
            except (sqlite3.Error, TrackerError) as e:
                # Nothing of this poll was committed; the next poll finds the same updates.
                self._store_failed(e, provider_id=provider_id)
        self._fill()

    def handle(self, result: PollResult) -> None:
        """Record one poll's result (main thread only) and emit what it claimed."""
        p = result.provider
        state = self.state.setdefault(p.id, {})
        now = times.now_iso()
        self.counts["polls"] += 1
        new = 0
        self.quiet.pop(p.id, None)  # whatever is written now supersedes it
        if result.detected and result.error is None:
            self.store.remember_format(p.id, result.detected)
            state["detected_format"] = result.detected
            self.log.info("format_detected", provider=p.name, provider_id=p.id, format=result.detected)
        if result.fallback and p.id not in self.fallbacks:
            self.fallbacks.add(p.id)  # said once per process, not every poll
            self.log.warning("format_fallback", provider=p.name, provider_id=p.id, reason=result.fallback,
                             detail="reading the Statuspage-compatible copy: messages are fallbacks")
        if result.error is not None:
            self.counts["failed"] += 1
            wait = backoff.delay((state.get("failures") or 0) + 1, p.interval, result.retry_after)
            not_before = times.iso(datetime.now(timezone.utc) + timedelta(seconds=wait))
            state["failures"] = self.store.record_failure(p.id, result.error, now, not_before)
            state["next_poll_at"] = not_before
            self._log_failure(p, result, state["failures"], wait)
            outcome = "error"
        elif result.unchanged:
            if state.get("failures") or (result.validators and result.validators.get("etag") != state.get("etag")):
                self._recovered(p, self.store.record_not_modified(p.id, now, result.validators or None))
                state.update(result.validators, failures=0)
            else:
                self.quiet[p.id] = now
            outcome = "not_modified"
        else:
            assert result.parsed is not None
            for reason in result.parsed.skipped[:20]:
                self.log.warning("item_skipped", provider=p.name, provider_id=p.id, reason=reason)
            claim = self.store.record(
                p, result.parsed.incidents, now=now, source=self.source, owner=self.owner,
                lease_until=_lease_until(), validators=result.validators, fmt=result.format,
            )
            state.update(result.validators, failures=0)
            self._recovered(p, claim.recovered_after)
            if claim.first_contact:
                self.log.info(
                    "first_contact", provider=p.name, provider_id=p.id, format=result.format,
                    incidents=len(result.parsed.incidents),
                    updates=sum(len(i.updates) for i in result.parsed.incidents),
                    announced=len(claim.announce_ids),
                )
            new = claim.new
            self.counts["new"] += new
            self._emit(claim.announce_ids)
            outcome = "ok"
        self.log.debug("poll", provider_id=p.id, result=outcome, new=new, ms=result.ms)

    def _log_failure(self, p: Provider, result: PollResult, failures: int, wait: float) -> None:
        """One poll_failed per failure, but a page down for hours does not flood the log:
        past QUIET_FAILURES in a row, the same error is repeated once per REPEAT_EVERY
        seconds, with the number of failures left unlogged in between."""
        last = self.failure_log.get(p.id)
        now = time.monotonic()
        if failures > QUIET_FAILURES and last and last[1] == result.error and now - last[0] < REPEAT_EVERY:
            self.failure_log[p.id] = (last[0], last[1], last[2] + 1)
            return
        self.log.warning(
            "poll_failed", provider=p.name, provider_id=p.id, url=result.url or p.endpoint, error=result.error,
            failures=failures, retry_in=round(wait, 1),
            **({"retry_after": result.retry_after} if result.retry_after is not None else {}),
            **({"unlogged": last[2]} if last and last[2] else {}),
        )
        self.failure_log[p.id] = (now, result.error, 0)

    def flush_quiet(self) -> None:
        """Write the pending "polled, nothing new" results in one transaction."""
        if self.quiet:
            pending, self.quiet = self.quiet, {}
            try:
                self.store.record_quiet(pending)
            except (sqlite3.Error, TrackerError) as e:
                self._store_failed(e)

    def _store_failed(self, error: Exception, **fields: Any) -> None:
        """A write failed (disk full, read-only, a lock held past the busy timeout): nothing
        of it was committed, the next poll tries again. Logged at most once a minute, with the
        number of failures in between, so a full disk does not also fill the journal."""
        self.counts["unrecorded"] = self.counts.get("unrecorded", 0) + 1
        self.last_store_error = f"{error}"
        now = time.monotonic()
        last, unlogged = self._store_errors
        if now - last < 60.0:
            self._store_errors = (last, unlogged + 1)
            return
        self.log.error("store_failed", error=str(error), database=str(self.store.path), **fields,
                       **({"unlogged": unlogged} if unlogged else {}))
        self._store_errors = (now, 0)

    def _recovered(self, p: Provider, failures_before: int) -> None:
        self.failure_log.pop(p.id, None)
        self.state.get(p.id, {}).pop("next_poll_at", None)
        if failures_before:
            self.log.info("provider_recovered", provider=p.name, provider_id=p.id, failures=failures_before)

    def _emit(self, ids: list[int]) -> None:
        if not ids:
            return
        rows = self.store.events(ids)
        emit(self.log, rows)
        self.counts["announced"] += len(rows)
        if rows:
            last = rows[-1]
            self.last_update = f"{last['provider']}: {last['incident']} ({last['status']})"
        self.store.mark_emitted(ids, self.owner, times.now_iso())

    def recover(self) -> None:
        """Emit updates that were recorded for announcement by a process that died before
        emitting them (their lease ran out). At-least-once: nothing recorded is lost."""
        try:
            ids = self.store.lease_pending(self.owner, times.now_iso(), _lease_until())
            if ids:
                self.log.info("outbox_recovered", updates=len(ids))
                self._emit(ids)
        except (sqlite3.Error, TrackerError) as e:
            self._store_failed(e)
