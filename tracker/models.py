"""Plain data passed between adapters, the store and the emitter."""

from __future__ import annotations

from dataclasses import dataclass, field

# Statuses after which an incident (or maintenance) is over. First contact announces only
# incidents that are not in one of these (SPEC §4).
CLOSED_STATUSES = frozenset({"resolved", "completed", "postmortem"})


@dataclass(frozen=True)
class Update:
    """One entry in an incident's timeline, as the page published it."""

    update_id: str
    status: str
    message: str
    created_at: str  # ISO 8601 UTC, fixed width ("2025-11-14T20:53:41.000Z"), so it sorts as text
    components: tuple[str, ...] = ()


@dataclass(frozen=True)
class Incident:
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

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    def touches(self, wanted: frozenset[str]) -> bool:
        """True if the incident or any of its updates names one of `wanted` (lower-cased)."""
        names = set(self.components)
        for update in self.updates:
            names.update(update.components)
        return any(name.lower() in wanted for name in names)


@dataclass(frozen=True)
class ParseResult:
    """What an adapter returns: the incidents, and a warning per item it had to skip."""

    incidents: list[Incident]
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Cached:
    """Validators of one URL, and the digest of the last body whose content was recorded."""

    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None


@dataclass
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
