"""tracker backfill: record the history a status page offers, through the same claim as
`tracker run`.

For a Statuspage page it reads `incidents.json` (the 50 most recent incidents, every update),
then walks `/history?page=N` (JSON when asked with `Accept: application/json`: months of incident
codes, a quarter or so a page) and fetches `/api/v2/incidents/<code>.json` for each incident
not yet recorded in full. One request at a time per host; conditional GETs; Retry-After
honoured. Walkers run in threads and only fetch and parse; the main thread records.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

from . import backoff, times
from .adapters import FORMATS
from .config import Provider, Settings
from .emit import emit
from .errors import FetchError, ParseError
from .fetch import Fetcher, HTTPStatusError
from .models import CLOSED_STATUSES, Incident
from .poller import probe
from .store import Store

MAX_PAGES = 200  # history pages walked per provider at most (GitHub had 51 in 2023)
MAX_RETRIES = 3  # 429/503 answers honoured per request before giving the provider up
MAX_WAIT = 60.0  # seconds: the longest Retry-After a backfill sleeps through


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


def base_url(provider: Provider) -> str:
    """The page's root: its URL, or scheme://host when the URL names a .json endpoint."""
    parts = urlsplit(provider.url)
    if parts.path.endswith(".json"):
        return f"{parts.scheme}://{parts.netloc}"
    return provider.url.rstrip("/")


class Walker:
    """Fetches one provider's history. Runs in a worker thread; never touches the store."""

    def __init__(self, provider: Provider, fetcher: Fetcher, *, known: dict[str, str],
                 cache: dict[str, tuple[str | None, str | None]], since: str | None,
                 host_lock: threading.Lock, stop: threading.Event, put: Callable[[Batch], None],
                 detected: str = "auto"):
        self.p = provider
        self.fetcher = fetcher
        self.known = known  # incident id -> status, as recorded
        self.cache = cache  # url -> (etag, last_modified)
        self.since = since
        self.host_lock = host_lock
        self.stop = stop
        self.put = put
        self.requests = 0
        self.fmt = provider.kind if provider.kind != "auto" else detected

    def get(self, url: str, conditional: bool = True, raw: bool = False) -> Any | None:
        """GET and decode JSON; None for a 304. One request at a time per host, and a 429/503
        with Retry-After waited out (up to MAX_WAIT) a few times."""
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
        self.last_validators = (url, got.etag, got.last_modified)
        if raw:
            return got.body or b""
        try:
            payload = json.loads(got.body or b"")
        except ValueError:
            ctype = got.content_type.split(";")[0].strip() or "no content type"
            raise ParseError(f"expected JSON, got {ctype} (HTTP {got.status})") from None
        return payload

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
        batch.pages = getattr(self, "pages", 0)
        self.put(batch)

    def parse(self, payload: Any) -> Any:
        spec = FORMATS[self.fmt]
        extra = {"now": times.now_iso()} if self.fmt == "incidentio" else {}
        return spec.parse(payload, base_url=self.p.url, **extra)

    def walk(self) -> None:
        base = base_url(self.p)
        if self.fmt == "auto":
            with self.host_lock:
                self.requests += 1
                self.fmt = probe(self.p, self.fetcher)
        # 1. The recent incidents, with every update: always read afresh.
        payload = self.get(self.p.endpoint_for(self.fmt), conditional=False, raw=FORMATS[self.fmt].raw)
        recent = self.parse(payload)
        self.put(Batch(self.p, self.keep(recent.incidents), recent.skipped))
        seen = {i.incident_id for i in recent.incidents}
        if self.fmt != "statuspage":
            return
        # 2. Older incidents, a history page at a time.
        self.pages = 0
        for number in range(1, MAX_PAGES + 1):
            if self.stop.is_set():
                return
            url = f"{base}/history?page={number}"
            try:
                page = self.get(url)
            except ParseError as e:
                if number == 1:  # the page offers no JSON history: what incidents.json gave is all
                    self.put(Batch(self.p, note=f"no history pages ({e})"))
                    return
                raise
            except HTTPStatusError as e:
                if e.status == 404 and number == 1:
                    self.put(Batch(self.p, note="no history pages (HTTP 404)"))
                    return
                raise
            self.pages += 1
            if page is None:  # 304: everything it lists was recorded by an earlier run
                continue
            validators = self.last_validators
            codes = history_codes(page)
            fresh = [c for c in codes if c not in seen]
            if not codes or not fresh:
                return  # past the last page (or a page that ignores ?page=)
            seen.update(fresh)
            found: list[Incident] = []
            skipped: list[str] = []
            older = 0
            for code in fresh:
                if self.stop.is_set():
                    self.put(Batch(self.p, found, skipped))  # keep what this page gave so far
                    return
                if self.known.get(code) in CLOSED_STATUSES:
                    continue  # recorded whole by an earlier run: resume past it
                detail = self.get(f"{base}/api/v2/incidents/{code}.json", conditional=False)
                result = self.parse(detail)
                skipped += result.skipped
                kept = self.keep(result.incidents)
                older += len(result.incidents) - len(kept)
                found += kept
            self.put(Batch(self.p, found, skipped, cache=validators))
            if self.since and older and not found:
                return  # this page is already older than --since


def history_codes(page: Any) -> list[str]:
    """Incident codes of a `/history?page=N` JSON page: {"months": [{"incidents": [{"code"…}]}]}."""
    if not isinstance(page, dict) or not isinstance(page.get("months"), list):
        raise ParseError("history page is not {'months': [...]}")
    codes = []
    for month in page["months"]:
        for item in (month.get("incidents") or []) if isinstance(month, dict) else []:
            code = item.get("code") if isinstance(item, dict) else None
            if isinstance(code, str) and code and code not in codes:
                codes.append(code)
    return codes


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
        self.progress = progress  # click progress bar (on a terminal) or None
        self.stop = threading.Event()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.fetcher = Fetcher(timeout=settings.timeout, max_bytes=settings.max_bytes)
        self.results: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self.summaries = {p.id: Summary() for p in providers}
        self.failed: list[str] = []

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop.set()  # walkers finish their request; what arrived is recorded

    def run(self) -> int:
        """0 when done, 130 when interrupted (a second run resumes)."""
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
        known = self.store.incident_statuses()
        detected = {pid: row["detected_format"] for pid, row in self.store.poll_states().items()}
        cache = self.store.http_cache()
        hosts: dict[str, threading.Lock] = {}
        self.log.info("backfill_started", providers=len(self.providers), emit=self.announce,
                      since=self.since, database=str(self.store.path))
        pending = len(self.providers)
        with ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="backfill") as pool:
            for p in self.providers:
                host = urlsplit(p.url).netloc
                walker = Walker(p, self.fetcher, known=known.get(p.id, {}), cache=cache, since=self.since,
                                host_lock=hosts.setdefault(host, threading.Lock()), stop=self.stop,
                                put=self.results.put, detected=detected.get(p.id) or "auto")
                pool.submit(walker.run)
            while pending:
                try:
                    batch = self.results.get(timeout=0.5)
                except queue.Empty:
                    continue
                if batch.done:
                    pending -= 1
                    self._finish(batch)
                else:
                    self._record(batch)
        interrupted = self.stop.is_set()
        totals = {k: sum(getattr(s, k) for s in self.summaries.values())
                  for k in ("incidents", "updates", "new", "emitted", "requests")}
        self.log.info("backfill_complete", providers=len(self.providers), failed=len(self.failed),
                      interrupted=interrupted, **totals)
        if interrupted:
            return 130
        return 0

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
            lease = times.iso(datetime.now(timezone.utc) + timedelta(days=1))
            claim = self.store.record(p, batch.incidents, now=times.now_iso(), source="backfill",
                                      owner=self.owner, lease_until=lease, emit=self.announce)
            s.incidents += len(batch.incidents)
            s.updates += sum(len(i.updates) for i in batch.incidents)
            s.new += claim.new
            s.announce_ids += claim.announce_ids
        if batch.cache:
            self.store.remember(*batch.cache)

    def _finish(self, batch: Batch) -> None:
        p, s = batch.provider, self.summaries[batch.provider.id]
        s.requests, s.pages = batch.requests, batch.pages
        if s.announce_ids:
            rows = self.store.events(s.announce_ids)
            s.emitted = emit(self.log, rows)
            self.store.mark_emitted(s.announce_ids, self.owner, times.now_iso())
        fields = dict(provider=p.name, provider_id=p.id, incidents=s.incidents, updates=s.updates,
                      new=s.new, emitted=s.emitted, history_pages=s.pages, requests=s.requests)
        if batch.error and not (self.stop.is_set() and batch.error == "interrupted"):
            self.failed.append(p.id)
            self.log.warning("backfill_failed", error=batch.error, **fields)
        else:
            self.log.info("backfill_provider", interrupted=self.stop.is_set(), **fields)
        if self.progress is not None:
            self.progress.update(1)
