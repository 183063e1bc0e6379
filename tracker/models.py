"""Plain data passed between adapters, the store and the emitter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

# Statuses after which an incident (or maintenance) is over. First contact announces only
# incidents that are not in one of these (docs/contract.md §4).
CLOSED_STATUSES = frozenset({"resolved", "completed", "postmortem"})


def source_digest(text: str) -> str:
    """SHA-256 (hex) of an update's source text, whitespace at its ends ignored."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


# Update and Incident are named tuples: immutable, and built in a third of the time a frozen
# dataclass takes (it sets each field through object.__setattr__); a cold cycle builds them by
# the ten thousand. `_replace` gives a changed copy.


class Update(NamedTuple):
    """One entry in an incident's timeline, as the page published it."""

    update_id: str
    status: str
    message: str
    created_at: str  # ISO 8601 UTC, fixed width ("2025-11-14T20:53:41.000Z"), so it sorts as text
    components: tuple[str, ...] = ()
    # The page's own text for this update before tracker cleaned it ("" when the page gave none
    # and `message` is a fallback line; None: `message` is the page's text as it is). Edits are
    # told by comparing its digest, so a change in how tracker cleans text is never an edit.
    source: str | None = None
    view: str = ""  # which view of the page gave it (formats read through several)

    @property
    def digest(self) -> str:
        return source_digest(self.message if self.source is None else self.source)

    @property
    def has_text(self) -> bool:
        return (self.message if self.source is None else self.source).strip() != ""


class Incident(NamedTuple):
    """An incident or scheduled maintenance with every update the payload carried."""

    incident_id: str
    title: str
    status: str
    impact: str
    kind: str  # "incident" | "maintenance"
    url: str | None
    created_at: str
    updated_at: str | None = None
    resolved_at: str | None = None
    components: tuple[str, ...] = ()
    updates: tuple[Update, ...] = ()
    scheduled_for: str | None = None  # maintenance window, where the page gives it
    scheduled_until: str | None = None

    @property
    def closing_status(self) -> str:
        """The status an inferred closing gives it."""
        return "completed" if self.kind == "maintenance" else "resolved"

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    def touches(self, wanted: frozenset[str]) -> bool:
        """True if the incident or any of its updates names one of `wanted` (lower-cased)."""
        names = set(self.components)
        for update in self.updates:
            names.update(update.components)
        return any(name.lower() in wanted for name in names)


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What an adapter returns: the incidents, and a warning per item it had to skip."""

    incidents: list[Incident]
    skipped: list[str] = field(default_factory=list)
    # False when a cap cut the payload: what it does not list may still be on the page, so
    # nothing is closed because it is missing.
    complete: bool = True
    # Whether the payload lists only open incidents, when the payload itself says so (Azure's
    # status feed, served anywhere); None: as the format's view says for its URL.
    open_only: bool | None = None
    # The format whose page served this payload, when the payload says it is that platform's
    # copy of another's API (incident.io's Statuspage-compatible copy): `format = "auto"` then
    # asks the page what it is instead of reading it as the copied format.
    served_by: str | None = None
    # Kinds whose list in this payload is at the platform's cap (Statuspage's summary.json lists
    # at most 100 scheduled maintenances): one of those kinds missing from it may only have
    # been pushed off the end, so it is not closed for being missing (docs/contract.md §4).
    capped: frozenset[str] = frozenset()
    # The page's own clock, when the payload states it (Statuspage's `page.updated_at`, ISO
    # UTC): what "before a maintenance's window" is judged on, and what tells a stale copy of
    # the page (its clock older than one already read) from a newer one.
    page_time: str | None = None


@dataclass(frozen=True, slots=True)
class Cached:
    """Validators of one URL, and the digest of the last body whose content was recorded."""

    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None


@dataclass(slots=True)
class PollState:
    """What tracker keeps about polling one provider (the database's `providers` row and its
    `view_cache` rows, mirrored in memory by the process that polls it)."""

    failures: int = 0  # consecutive failed polls
    next_poll_at: str | None = None  # backoff: no poll before this time (ISO)
    detected_format: str | None = None  # what `format = "auto"` found by probing
    polled_format: str | None = None  # the format of the last successful poll
    first_polled_at: str | None = None
    last_ok_at: str | None = None
    cache: dict[str, Cached] = field(default_factory=dict)  # URL -> validators
    # Incidents held open (id -> kind), unless a maintenance unlisted before its window, and
    # those of them missing from the page's open-only views (waiting out the grace period).
    # Read by the worker to tell what left the page, and so which history view to ask.
    # Replaced whole, never changed in place: a worker's copy of the state shares them.
    held: dict[str, str] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()
    # History view URL -> ids of the incidents it listed as still open when last read in full
    # (by this process: it answers for an unchanged body, a 304).
    history_open: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def gone(self) -> int:
        """Incidents missing from the page, waiting out the grace period."""
        return len(self.missing)
