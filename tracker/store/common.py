"""What every part of the store shares: the SQL for "still open", chunking, stored names."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..models import CLOSED_STATUSES, Cached

# "status NOT IN (…)" of an incident still open, for SQL (the statuses are constants, not input);
# "i.{OPEN}" for a table named i
OPEN = "status NOT IN (" + ",".join(f"'{x}'" for x in sorted(CLOSED_STATUSES)) + ")"
CHUNK = 400  # rows per multi-row statement (well under SQLite's variable limit)
Conn = Any  # a connection as the engines hand it out: sqlite3.Connection or postgres.Connection
Row = Any  # a row of it: read by name or position


@functools.lru_cache(maxsize=4096)
def _json_names(names: tuple[str, ...]) -> str:
    """Component names as stored (a JSON list); pages repeat the same few sets endlessly."""
    return json.dumps(list(names)) if names else "[]"


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


@dataclass(frozen=True)
class Claim:
    """What one recorded poll changed."""

    new: int  # updates recorded for the first time, announced or not
    announce_ids: list[int]  # row ids of those to emit, oldest first
    first_contact: bool
    recovered_after: int  # consecutive failures before this success (0: none)
    edit_ids: list[int] = field(default_factory=list)  # edits rows to emit
    edits: int = 0  # updates whose source text changed on the page
    closed: int = 0  # incidents closed because they left a page listing only open ones
    moved_from: str | None = None  # the URL of the last poll, when this one read another
    gone: int = 0  # incidents missing from the page, waiting out the grace period
    # Maintenances this poll found unlisted before their window (rows: incident_id, title,
    # scheduled_for), each found by one process only: the maintenance_unlisted records.
    unlisted: list[Any] = field(default_factory=list)
    stale: bool = False  # the open-only view was older than one already read: no evidence
    # With PollRecord.track: the incidents held open afterwards (id -> kind) and which of them
    # are missing (the worker's PollState.held and .missing). None: not asked.
    held: dict[str, str] | None = None
    missing: frozenset[str] | None = None


CLOSED_MESSAGE = "No longer listed on the status page"


@dataclass
class Shut:
    """What `_close_missing` did: closings claimed (row id, announce, created_at), incidents
    still waiting out the grace, maintenances unlisted before their window, and (when asked)
    what is held open afterwards."""

    closing: list[tuple[int, int, str]] = field(default_factory=list)
    gone: int = 0
    unlisted: list[Any] = field(default_factory=list)
    held: dict[str, str] | None = None
    missing: frozenset[str] | None = None


@dataclass(frozen=True)
class PollRecord:
    """A successful poll of a provider's own page: the format it was read in, and the URL
    validators to keep now that what those URLs returned is recorded."""

    format: str
    cache: dict[str, Cached]
    url: str | None = None  # the page's configured URL (another one: a new first contact)
    # Incident ids listed by the views that list only open incidents, when such a view was read
    # in full this poll (None: none was, so nothing can be found missing).
    listed: frozenset[str] | None = None
    grace: float = 0.0  # seconds an incident must stay missing before it is closed
    # What `format = "auto"` found by probing this poll, to remember with the rest (one commit
    # instead of two on a first contact: each costs a WAL write and an fsync).
    detected: str | None = None
    capped: frozenset[str] = frozenset()  # kinds whose open-only list was at its cap: none missing
    vouched: frozenset[str] = frozenset()  # ids a history view lists as still open: not missing
    page_time: str | None = None  # the page's clock, as the open-only views state it
    track: bool = False  # the page has open-only views: say what is held open afterwards


__all__ = ["CHUNK", "CLOSED_MESSAGE", "OPEN", "Claim", "PollRecord", "Shut"]
