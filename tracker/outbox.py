"""The outbox: how a claimed update leaves the process, shared by `run` and `backfill`.

The claim (store.record) marks the updates to announce and leases them to this process's
`owner`. Announcing reads them back, logs one `incident_update` each (oldest first within a
provider), then marks them emitted: a crash between the log line and the mark re-announces
at worst, never loses. Updates whose process died before announcing them are taken over when
the lease runs out (at once when that process was on this host and is gone).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from . import metrics, times
from .emit import emit
from .store import Store

LEASE_SECONDS = 60.0  # how long an announced-but-unemitted update stays ours


def new_owner() -> str:
    """"host:pid:token": who holds a lease (the token tells two runs of one pid apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Outbox:
    """Announces claimed updates for one process."""

    def __init__(self, store: Store, log: Any, *, owner: str | None = None,
                 clock: Callable[[], datetime] | None = None, notify: Any = None, lease: float = LEASE_SECONDS):
        self.store = store
        self.log = log
        # notify.worker.Deliverer (or None): queues each record's deliveries in the
        # transaction that marks it emitted, and is woken after that commit.
        self.notify = notify
        self.owner = owner or new_owner()
        self.lease_seconds = lease
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.announced = 0
        self.last: str | None = None  # "provider: incident (status)" of the newest announcement

    def lease(self, seconds: float | None = None) -> tuple[str, str]:
        """(owner, until): what store.record needs to lease the updates it claims to us."""
        return self.owner, times.iso(self.clock() + timedelta(seconds=seconds or self.lease_seconds))

    def announce(self, ids: list[int]) -> int:
        """Log every update of `ids` (row ids leased to us), then mark them emitted."""
        if not ids:
            return 0
        rows = self.store.events(ids)
        emit(self.log, rows)
        for provider_id, count in Counter(r["provider_id"] for r in rows).items():
            metrics.announced(provider_id, count)
        self.announced += len(rows)
        if rows:
            last = rows[-1]
            self.last = f"{last['provider']}: {last['incident']} ({last['status']})"
        self._mark(ids, rows, "incident_update")
        return len(rows)

    def announce_edits(self, ids: list[int]) -> int:
        """Log one `incident_update_edited` per edit of `ids` (leased to us), then mark them."""
        if not ids:
            return 0
        rows = self.store.edit_events(ids)
        emit(self.log, rows, "incident_update_edited")
        self.announced += len(rows)
        self._mark(ids, rows, "incident_update_edited", table="edits")
        return len(rows)

    def _mark(self, ids: list[int], rows: list, event: str, table: str = "updates") -> None:
        """Mark `ids` emitted and, in the same transaction, queue their notifications."""
        now = times.iso(self.clock())
        queued = self.notify.enqueue(rows, event, now) if self.notify is not None else None
        self.store.mark_emitted(ids, self.owner, now, table=table, also=queued)
        if queued is not None:
            self.notify.wake()

    def recover(self) -> int:
        """Announce updates (and edits) another process claimed but never emitted (it died).
        Raises the store's errors: the caller decides how loudly to say so."""
        now, until = times.iso(self.clock()), self.lease()[1]
        previous: set[str] = set()
        ids = self.store.lease_pending(self.owner, now, until, previous=previous)
        edits = self.store.lease_pending(self.owner, now, until, table="edits", previous=previous)
        if ids or edits:
            self.log.info("outbox_recovered", updates=len(ids), **({"edits": len(edits)} if edits else {}),
                          previous_owner=sorted(previous))
            self.announce(ids)
            self.announce_edits(edits)
        return len(ids) + len(edits)


__all__ = ["LEASE_SECONDS", "Outbox", "new_owner"]
