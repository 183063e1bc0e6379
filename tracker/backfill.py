"""tracker backfill: record the history a status page offers, through the same claim and the
same outbox as `tracker run`.

For each provider it reads every view of the page's format (what `run` polls), then the
format's history walk where it has one (`adapters/history.py`: Statuspage's history pages and
incident details, incident.io's native list in 90-day windows). One request at a time per
host; conditional GETs on history pages; Retry-After honoured. Walkers run in threads and only
fetch and parse; the main thread records.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from . import backoff, times
from .adapters import FORMATS, page_root
from .config import Provider, Settings
from .errors import FetchError, ParseError
from .fetch import Fetcher, HTTPStatusError
from .models import Incident, ParseResult, PollState
from .notify.worker import DRAIN_SECONDS, Deliverer
from .outbox import Outbox
from .policy import Policy
from .read import decode, decode_json, known_format, probe
from .store import Store

MAX_RETRIES = 3  # 429/503 answers honoured per request before giving the provider up
MAX_WAIT = 60.0  # seconds: the longest Retry-After a backfill sleeps through
LEASE_SECONDS = 86400.0  # claimed updates stay ours until the provider's walk ends


@dataclass
class Batch:
    """What a walker hands to the main thread: incidents to record, and the validators of
    the page they came from (stored only once they are recorded)."""

    provider: Provider
    incidents: list[Incident] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cache: tuple[str, str | None, str | None] | None = None  # (url, etag, last_modified)
    done: bool = False
    error: str | None = None
    note: str | None = None
    requests: int = 0
    pages: int = 0


@dataclass
class Summary:
    """Per provider, for the closing record."""

    incidents: int = 0
    updates: int = 0
    new: int = 0
    emitted: int = 0
    pages: int = 0
    requests: int = 0
    announce_ids: list[int] = field(default_factory=list)


class Walker:
    """Fetches one provider's history. Runs in a worker thread; never touches the store."""

    def __init__(self, provider: Provider, fetcher: Fetcher, *, known: dict[str, str],
                 cache: dict[str, tuple[str | None, str | None]], since: str | None,
                 host_lock: threading.Lock, stop: threading.Event, put: Callable[[Batch], None],
                 state: PollState | None = None):
        self.p = provider
        self.fetcher = fetcher
        self.known = known  # incident id -> status, as recorded
        self.cache = cache  # url -> (etag, last_modified)
        self.since = since
        self.host_lock = host_lock
        self.stop = stop
        self.put = put
        self.requests = 0
        self.pages = 0
        self.fmt = known_format(provider, state)
        self.validators: dict[str, tuple[str | None, str | None]] = {}

    def fetch(self, url: str, conditional: bool = True) -> Any:
        """GET; None for a 304. One request at a time per host, and a 429/503 with
        Retry-After waited out (up to MAX_WAIT) a few times."""
        etag, modified = self.cache.get(url, (None, None)) if conditional else (None, None)
        for attempt in range(MAX_RETRIES + 1):
            with self.host_lock:
                self.requests += 1
                try:
                    got = self.fetcher.get(url, etag=etag, last_modified=modified)
                    break
                except HTTPStatusError as e:
                    wait = backoff.parse_retry_after(e.retry_after)
                    if e.status not in (429, 503) or wait is None or attempt == MAX_RETRIES:
                        raise
            # A CLI walking history may wait as asked (the daemon never sleeps in a worker).
            if self.stop.wait(min(wait, MAX_WAIT)):
                raise FetchError("interrupted")
        if got.not_modified:
            return None
        self.validators[url] = (got.etag, got.last_modified)
        return got

    def get(self, url: str, conditional: bool = True) -> Any:
        """GET and decode JSON; None for a 304."""
        got = self.fetch(url, conditional)
        return None if got is None else decode_json(got)

    def keep(self, incidents: list[Incident]) -> list[Incident]:
        return [i for i in incidents if not self.since or i.created_at >= self.since]

    def run(self) -> None:
        batch = Batch(self.p, done=True)
        try:
            self.walk()
        except (FetchError, ParseError) as e:
            batch.error = str(e)
        except Exception as e:  # a bug costs this provider, not the whole backfill
            batch.error = f"unexpected {type(e).__name__}: {e}"
        batch.requests = self.requests
        batch.pages = self.pages
        self.put(batch)

    def walk(self) -> None:
        now = times.now_iso()
        read_before: dict[str, ParseResult] = {}  # url -> what the probe read of it, afresh
        if self.fmt == "auto":
            with self.host_lock:
                found = probe(self.p, self.fetcher, now)
                self.fmt, self.requests = found.format, self.requests + found.requests
            if found.own is not None and found.own.parsed is not None:
                read_before[found.own.url] = found.own.parsed
        spec = FORMATS[self.fmt]
        # 1. What `run` reads: every view of the page, always afresh.
        results: list[ParseResult] = []
        errors: list[str] = []
        for view in spec.views:
            url = view.endpoint(self.p.url)
            if url in read_before:
                results.append(read_before[url])
                continue
            try:
                got = self.fetch(url, conditional=False)
                results.append(view.parse(decode(view, got), base_url=self.p.url, now=now))
            except (FetchError, ParseError) as e:
                if self.stop.is_set():
                    raise
                errors.append(f"{url}: {e}" if len(spec.views) > 1 else str(e))
        if not results:
            raise ParseError("; ".join(errors)) if errors else FetchError("nothing to read")
        recent = spec.merge(results)
        self.put(Batch(self.p, self.keep(recent.incidents), recent.skipped,
                       note="; ".join(f"not read: {e}" for e in errors) or None))
        if spec.history is None:
            return
        # 2. Older incidents, as deep as the format's history walk goes.
        seen = {i.incident_id for i in recent.incidents}
        for found in spec.history(self.get, page_root(self.p.url), seen=seen, known=self.known,
                                  keep=self.keep, stop=self.stop.is_set, now=now, since=self.since):
            self.pages += found.pages
            cache = None
            if found.remember and found.remember in self.validators:
                cache = (found.remember, *self.validators[found.remember])
            if found.incidents or found.skipped or found.note or cache:
                self.put(Batch(self.p, found.incidents, found.skipped, cache=cache, note=found.note))


class Backfill:
    """Runs walkers for `providers` and records what they find."""

    def __init__(self, settings: Settings, store: Store, log: Any, providers: list[Provider], *,
                 since: str | None = None, emit: bool = False, progress: Any = None):
        self.settings = settings
        self.store = store
        self.log = log
        self.providers = providers
        self.since = since
        self.announce = emit
        self.progress = progress  # a progress.Progress line (on a terminal) or None
        self.stop = threading.Event()
        # --emit records go to the destinations with `backfill = true` only (contract §7).
        self.deliverer = Deliverer(store.path, [d for d in settings.notify if d.backfill] if emit else (), log,
                                   lease=settings.lease)
        self.outbox = Outbox(store, log, notify=self.deliverer, lease=settings.lease)
        self.fetcher = Fetcher(timeout=settings.timeout, max_bytes=settings.max_bytes, workers=settings.workers)
        self.fetcher.keep(p.url for p in providers)
        self.results: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self.summaries = {p.id: Summary() for p in providers}
        self.failed: list[str] = []

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop.is_set():
            # A second Ctrl-C: leave now, without waiting for a hung request. What is recorded
            # is committed; updates claimed for --emit but not yet logged stay in the outbox,
            # leased to this (then dead) process, and the next tracker process takes them over.
            if self.progress is not None:
                self.progress.finish(interrupted=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        self.stop.set()  # walkers finish their request; what arrived is recorded

    def run(self) -> int:
        """0 when done, 1 when no provider could be read, 130 when interrupted (a second run
        resumes)."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.fetcher.close()

    def _run(self) -> int:
        self.store.sync_providers(self.providers)
        self.deliverer.start()
        known = self.store.incident_statuses()
        states = self.store.poll_states()
        cache = self.store.http_cache()
        hosts: dict[str, threading.Lock] = {}
        self.log.info("backfill_started", providers=len(self.providers), emit=self.announce,
                      since=self.since, database=str(self.store.path))
        pending = len(self.providers)
        walkers: list[Walker] = []
        with ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="backfill") as pool:
            for p in self.providers:
                host = urlsplit(p.url).netloc
                walker = Walker(p, self.fetcher, known=known.get(p.id, {}), cache=cache, since=self.since,
                                host_lock=hosts.setdefault(host, threading.Lock()), stop=self.stop,
                                put=self.results.put, state=states.get(p.id))
                walkers.append(walker)
                pool.submit(walker.run)
            while pending:
                self._show(walkers, len(self.providers) - pending)
                try:
                    batch = self.results.get(timeout=0.2)
                except queue.Empty:
                    continue
                if batch.done:
                    pending -= 1
                    self._finish(batch)
                else:
                    self._record(batch)
        # Deliver what --emit queued, for a bounded time (Ctrl-C: at once); the rest is sent by
        # the daemon or the next run.
        self.deliverer.finish(0.0 if self.stop.is_set() else DRAIN_SECONDS)
        interrupted = self.stop.is_set()
        if self.progress is not None:
            self._show(walkers, len(self.providers), force=True)
            self.progress.finish(interrupted=interrupted)
        totals = {k: sum(getattr(s, k) for s in self.summaries.values())
                  for k in ("incidents", "updates", "new", "emitted", "requests")}
        self.log.info("backfill_complete", providers=len(self.providers), failed=len(self.failed),
                      interrupted=interrupted, **totals)
        if interrupted:
            return 130
        if self.failed and len(self.failed) == len(self.providers):
            return 1  # nothing could be read: a oneshot unit must not go green
        return 0

    def _show(self, walkers: list[Walker], done: int, force: bool = False) -> None:
        """The progress line: what the walkers did so far (their threads' counters)."""
        if self.progress is not None:
            self.progress.update(done=done, requests=sum(w.requests for w in walkers),
                                 pages=sum(w.pages for w in walkers),
                                 new=sum(s.new for s in self.summaries.values()), force=force)

    def _record(self, batch: Batch) -> None:
        p, s = batch.provider, self.summaries[batch.provider.id]
        if batch.note:
            self.log.info("backfill_note", provider_id=p.id, detail=batch.note)
        for reason in batch.skipped[:20]:
            self.log.warning("item_skipped", provider=p.name, provider_id=p.id, reason=reason)
        if batch.incidents:
            # Claimed updates stay leased to this process for a day: they are emitted (oldest
            # first) when the provider's walk ends. A crash hands them to the next process
            # at once (a dead owner of this host), never to a live daemon in between.
            claim = self.store.record(p.id, batch.incidents, now=times.now_iso(), source="backfill",
                                      policy=Policy(mode="all" if self.announce else "none"),
                                      lease=self.outbox.lease(LEASE_SECONDS))
            s.incidents += len(batch.incidents)
            s.updates += sum(len(i.updates) for i in batch.incidents)
            s.new += claim.new
            s.announce_ids += claim.announce_ids
        if batch.cache:
            self.store.remember(*batch.cache)

    def _finish(self, batch: Batch) -> None:
        p, s = batch.provider, self.summaries[batch.provider.id]
        s.requests, s.pages = batch.requests, batch.pages
        s.emitted = self.outbox.announce(s.announce_ids)
        fields = dict(provider=p.name, provider_id=p.id, incidents=s.incidents, updates=s.updates,
                      new=s.new, emitted=s.emitted, history_pages=s.pages, requests=s.requests)
        if batch.error and not (self.stop.is_set() and batch.error == "interrupted"):
            self.failed.append(p.id)
            self.log.warning("backfill_failed", error=batch.error, **fields)
        else:
            self.log.info("backfill_provider", interrupted=self.stop.is_set(), **fields)
