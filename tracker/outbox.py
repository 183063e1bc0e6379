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
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from . import times
from .emit import emit
from .store import Store

LEASE_SECONDS = 60.0  # how long an announced-but-unemitted update stays ours


def new_owner() -> str:
    """"host:pid:token": who holds a lease (the token tells two runs of one pid apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Outbox:
    """Announces claimed updates for one process."""

    def __init__(self, store: Store, log: Any, *, owner: str | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.store = store
        self.log = log
        self.owner = owner or new_owner()
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.announced = 0
        self.last: str | None = None  # "provider: incident (status)" of the newest announcement

    def lease(self, seconds: float = LEASE_SECONDS) -> tuple[str, str]:
        """(owner, until): what store.record needs to lease the updates it claims to us."""
        return self.owner, times.iso(self.clock() + timedelta(seconds=seconds))

    def announce(self, ids: list[int]) -> int:
        """Log every update of `ids` (row ids leased to us), then mark them emitted."""
        if not ids:
            return 0
        rows = self.store.events(ids)
        emit(self.log, rows)
        self.announced += len(rows)
        if rows:
            last = rows[-1]
            self.last = f"{last['provider']}: {last['incident']} ({last['status']})"
        self.store.mark_emitted(ids, self.owner, times.iso(self.clock()))
        return len(rows)

    def recover(self) -> int:
        """Announce updates another process claimed but never emitted (it died). Raises the
        store's errors: the caller decides how loudly to say so."""
        ids = self.store.lease_pending(self.owner, times.iso(self.clock()), self.lease()[1])
        if ids:
            self.log.info("outbox_recovered", updates=len(ids))
            self.announce(ids)
        return len(ids)


__all__ = ["LEASE_SECONDS", "Outbox", "new_owner"]
