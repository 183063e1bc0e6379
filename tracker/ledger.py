"""The ledger: what the outcome of one poll means, on the main thread (the only one that
writes). It records new updates through the claim and hands them to the outbox, keeps each
provider's typed poll state (failures, backoff, validators), batches "polled, nothing new"
bookkeeping, and keeps the log readable when a page or the database misbehaves for hours.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from . import backoff, metrics, times
from .config import Provider
from .errors import TrackerError
from .models import PollState
from .outbox import Outbox
from .policy import Policy
from .read import Outcome
from .store import PollRecord, Store

QUIET_FAILURES = 3  # after this many consecutive failures, poll_failed repeats at most…
REPEAT_EVERY = 600.0  # …once per this many seconds per provider (unless the error changes)
STORE_ERRORS_EVERY = 60.0  # seconds between two store_failed records


class Ledger:
    """Applies poll outcomes to the store and the log. `clock` gives the wall time (UTC),
    `monotonic` the time used for throttling; tests pass their own."""

    def __init__(self, store: Store, log: Any, outbox: Outbox, *, source: str = "run",
                 clock: Callable[[], datetime] | None = None, monotonic: Callable[[], float] | None = None,
                 rng: random.Random | None = None):
        self.store = store
        self.log = log
        self.outbox = outbox
        self.source = source
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.monotonic = monotonic or time.monotonic
        self.rng = rng
        self.states: dict[str, PollState] = {}
        # "Polled, nothing new" for providers with nothing else to record, written in one
        # transaction now and then (flush_quiet) rather than one commit per poll.
        self.quiet: dict[str, str] = {}
        self.counts = {"polls": 0, "failed": 0, "new": 0, "announced": 0}
        self.unrecorded = 0
        self.last_store_error: str | None = None
        # provider id -> (monotonic time of the last poll_failed record, its error, failures since)
        self.failure_log: dict[str, tuple[float, str | None, int]] = {}
        self.view_log: dict[tuple[str, str], tuple[float, str | None, int]] = {}
        self._store_errors: tuple[float, int] = (-1e9, 0)  # (last store_failed record, unlogged since)
        self.components_checked: set[str] = set()

    def now(self) -> str:
        return times.iso(self.clock())

    def load(self, providers: Iterable[Provider]) -> None:
        """Make sure every provider has a row, and read their poll states. A provider still
        backing off after a restart is said so once, since its first poll waits (up to 10
        minutes of silence otherwise); `run --once` polls it anyway, so says nothing."""
        providers = list(providers)
        self.store.sync_providers(providers)
        self.states = self.store.poll_states()
        now = self.clock()
        for p in providers:
            state = self.state(p.id)
            metrics.provider(p.id, state.failures, state.last_ok_at)
            until = self.backing_off(p.id)
            if until and self.source != "once":
                wait = (datetime.fromisoformat(until.replace("Z", "+00:00")) - now).total_seconds()
                self.log.info("provider_backing_off", provider=p.name, provider_id=p.id, until=until,
                              failures=state.failures, retry_in=round(max(0.0, wait), 1))

    def state(self, provider_id: str) -> PollState:
        return self.states.setdefault(provider_id, PollState())

    def backing_off(self, provider_id: str) -> str | None:
        """The time before which this provider is not to be polled, if that is still ahead."""
        not_before = self.state(provider_id).next_poll_at
        return not_before if not_before and not_before > self.now() else None

    @property
    def failing(self) -> int:
        return sum(1 for s in self.states.values() if s.failures)

    # -- one outcome -------------------------------------------------------------------

    def apply(self, outcome: Outcome) -> str:
        """Record one poll's outcome and announce what it claimed. Returns "ok",
        "not_modified" or "error". A database error is counted and logged (throttled):
        nothing of that poll was committed and the next poll finds the same updates."""
        try:
            result = self._apply(outcome)
        except (sqlite3.Error, TrackerError) as e:
            self.store_failed(e, provider_id=outcome.provider.id)
            result = "unrecorded"
        state = self.state(outcome.provider.id)
        metrics.poll(outcome.provider.id, "error" if outcome.error is not None else result,
                     outcome.ms / 1000, state.failures, state.last_ok_at)
        return result

    def _apply(self, outcome: Outcome) -> str:
        p = outcome.provider
        state = self.state(p.id)
        now = self.now()
        self.counts["polls"] += 1
        self.quiet.pop(p.id, None)  # whatever is written now supersedes it
        detected = outcome.detected if outcome.error is None else None
        if detected:
            self.log.info("format_detected", provider=p.name, provider_id=p.id, format=detected)
            if outcome.parsed is None:  # nothing else to write: remember it alone
                self.store.remember_format(p.id, detected)
                state.detected_format = detected
        for view in outcome.failed_views:
            self._log_view_failure(p, view.url, view.error)
        if outcome.error is not None:
            self.counts["failed"] += 1
            wait = backoff.delay(state.failures + 1, p.interval, outcome.retry_after, self.rng)
            not_before = times.iso(self.clock() + timedelta(seconds=wait))
            state.failures = self.store.record_failure(p.id, outcome.error, now, not_before)
            state.next_poll_at = not_before
            self._log_failure(p, outcome, state.failures, wait)
            return "error"
        for view in outcome.views + outcome.confirms:
            if view.error is None and (p.id, view.url) in self.view_log:
                self.view_log.pop((p.id, view.url))
                self.log.info("view_recovered", provider=p.name, provider_id=p.id, url=view.url)
        if outcome.parsed is None:
            if state.failures or outcome.cache:
                self._recovered(p, self.store.record_not_modified(p.id, now, outcome.cache))
                self._keep(state, outcome)
            else:
                self.quiet[p.id] = now
            state.last_ok_at = now
            if state.gone:
                # Incidents missing from the page wait out the grace period even while the
                # page does not change (or, vouched for by a history view, wait on).
                claim = self.store.close_gone(p.id, now=now, source=self.source, policy=self._policy(p),
                                              lease=self.outbox.lease(), poll=self._poll_record(outcome))
                self._track(state, outcome, claim)
                self._announce(p, claim)
            return "not_modified"
        for reason in outcome.parsed.skipped[:20]:
            self.log.warning("item_skipped", provider=p.name, provider_id=p.id, reason=reason)
        claim = self.store.record(
            p.id, outcome.parsed.incidents, now=now, source=self.source, policy=self._policy(p),
            lease=self.outbox.lease(), poll=self._poll_record(outcome, detected),
        )
        state.detected_format = detected or state.detected_format
        self._keep(state, outcome)
        self._track(state, outcome, claim)
        state.polled_format, state.last_ok_at = outcome.format, now
        for row in claim.unlisted:
            self.log.info("maintenance_unlisted", provider=p.name, provider_id=p.id, incident_id=row["incident_id"],
                          incident=row["title"], scheduled_for=row["scheduled_for"],
                          page_time=outcome.page_time or now,
                          detail="left the page's list before its window began: not completed; "
                                 "if it is listed again it carries on")
        if claim.stale:
            self.log.debug("page_stale", provider_id=p.id, page_time=outcome.page_time,
                           detail="an older copy of the page than one already read: nothing closed")
        state.first_polled_at = state.first_polled_at or now
        self._recovered(p, claim.recovered_after)
        if claim.moved_from:
            self.log.info("url_changed", provider=p.name, provider_id=p.id, previous_url=claim.moved_from,
                          url=p.url, detail="a new first contact: the new page's history is recorded silently")
        if claim.first_contact:
            self.log.info(
                "first_contact", provider=p.name, provider_id=p.id, format=outcome.format,
                incidents=len(outcome.parsed.incidents),
                updates=sum(len(i.updates) for i in outcome.parsed.incidents),
                announced=len(claim.announce_ids),
            )
        self.counts["new"] += claim.new
        self._announce(p, claim)
        self._check_components(p, outcome)
        return "ok"

    @staticmethod
    def _poll_record(outcome: Outcome, detected: str | None = None) -> PollRecord:
        return PollRecord(outcome.format, outcome.cache, url=outcome.provider.url, listed=outcome.listed,
                          grace=outcome.grace, detected=detected, capped=outcome.capped, vouched=outcome.vouched,
                          page_time=outcome.page_time, track=any(v.open_only for v in outcome.views))

    @staticmethod
    def _track(state: PollState, outcome: Outcome, claim: Any) -> None:
        """What the worker needs to tell what left the page next time (docs/contract.md §4)."""
        if claim.held is not None:
            state.held, state.missing = claim.held, claim.missing
        elif not claim.gone:
            state.missing = frozenset()
        if outcome.history_open:
            state.history_open = {**state.history_open, **outcome.history_open}

    def _policy(self, p: Provider) -> Policy:
        return Policy.for_provider(p)

    def _announce(self, p: Provider, claim: Any) -> None:
        self.counts["announced"] += self.outbox.announce(claim.announce_ids)
        if claim.edit_ids:
            self.counts["announced"] += self.outbox.announce_edits(claim.edit_ids)

    def _check_components(self, p: Provider, outcome: Outcome) -> None:
        """A `components` name that matches no component the page has ever listed is warned
        about once per process: a typo would otherwise announce nothing, silently."""
        if not p.components or p.id in self.components_checked:
            return
        names = {n.lower() for n in self.store.component_names(p.id)}
        assert outcome.parsed is not None
        for inc in outcome.parsed.incidents:
            names.update(n.lower() for n in inc.components)
        if not names:
            return  # the page has named no component yet: nothing to compare with
        self.components_checked.add(p.id)
        unknown = [c for c in p.components if c.lower() not in names]
        if unknown:
            self.log.warning("components_unknown", provider=p.name, provider_id=p.id, components=unknown,
                             detail="no incident on this page has named these; check their spelling",
                             known=sorted(names)[:20])

    @staticmethod
    def _keep(state: PollState, outcome: Outcome) -> None:
        for url, cached in outcome.cache.items():
            known = state.cache.get(url)
            if cached.body_sha256 is None and known is not None:
                cached = type(cached)(cached.etag, cached.last_modified, known.body_sha256)
            state.cache[url] = cached
        state.failures = 0

    def _recovered(self, p: Provider, failures_before: int) -> None:
        self.failure_log.pop(p.id, None)
        self.state(p.id).next_poll_at = None
        if failures_before:
            self.log.info("provider_recovered", provider=p.name, provider_id=p.id, failures=failures_before)

    # -- keeping the log readable --------------------------------------------------------

    def _throttled(self, book: dict, key: Any, error: str | None, failures: int) -> int | None:
        """None when this repeat of `error` is to be left out of the log (past QUIET_FAILURES
        in a row, the same error is logged once per REPEAT_EVERY seconds); else the number of
        repeats left out since the last record."""
        last = book.get(key)
        now = self.monotonic()
        if failures > QUIET_FAILURES and last and last[1] == error and now - last[0] < REPEAT_EVERY:
            book[key] = (last[0], last[1], last[2] + 1)
            return None
        book[key] = (now, error, 0)
        return last[2] if last else 0

    def _log_failure(self, p: Provider, outcome: Outcome, failures: int, wait: float) -> None:
        """One poll_failed per failure, but a page down for hours does not flood the log."""
        unlogged = self._throttled(self.failure_log, p.id, outcome.error, failures)
        if unlogged is None:
            return
        self.log.warning(
            "poll_failed", provider=p.name, provider_id=p.id, url=outcome.url, error=outcome.error,
            failures=failures, retry_in=round(wait, 1),
            **({"retry_after": outcome.retry_after} if outcome.retry_after is not None else {}),
            **({"unlogged": unlogged} if unlogged else {}),
        )

    def _log_view_failure(self, p: Provider, url: str, error: str | None) -> None:
        """One view of a page failed while another was read: a warning, not a failed poll.
        Said once per outage of that view (whatever its errors), again every REPEAT_EVERY
        seconds while it lasts, with the failures left out in between."""
        last = self.view_log.get((p.id, url))
        if last and self.monotonic() - last[0] < REPEAT_EVERY:
            self.view_log[(p.id, url)] = (last[0], error, last[2] + 1)
            return
        self.view_log[(p.id, url)] = (self.monotonic(), error, 0)
        self.log.warning("view_failed", provider=p.name, provider_id=p.id, url=url, error=error,
                         detail="read the page's other views; nothing is lost",
                         **({"unlogged": last[2]} if last and last[2] else {}))

    def flush_quiet(self) -> None:
        """Write the pending "polled, nothing new" results in one transaction."""
        if self.quiet:
            pending, self.quiet = self.quiet, {}
            try:
                self.store.record_quiet(pending)
            except (sqlite3.Error, TrackerError) as e:
                self.store_failed(e)

    def recover(self) -> None:
        """Announce what a dead process claimed but never emitted."""
        try:
            self.counts["announced"] += self.outbox.recover()
        except (sqlite3.Error, TrackerError) as e:
            self.store_failed(e)

    def store_failed(self, error: Exception, **fields: Any) -> None:
        """A write failed (disk full, read-only, a lock held past the busy timeout): nothing
        of it was committed, the next poll tries again. Logged at most once a minute, with the
        number of failures in between, so a full disk does not also fill the journal."""
        self.unrecorded += 1
        self.last_store_error = f"{error}"
        now = self.monotonic()
        last, unlogged = self._store_errors
        if now - last < STORE_ERRORS_EVERY:
            self._store_errors = (last, unlogged + 1)
            return
        self.log.error("store_failed", error=str(error), database=str(self.store.path), **fields,
                       **({"unlogged": unlogged} if unlogged else {}))
        self._store_errors = (now, 0)


__all__ = ["Ledger", "QUIET_FAILURES", "REPEAT_EVERY"]
