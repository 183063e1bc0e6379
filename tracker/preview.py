"""`tracker probe URL`: read one page once, the way `tracker run` would, and say what first
contact would announce. No database: a throwaway provider, an empty poll state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import times
from .config import Provider
from .fetch import Fetcher
from .models import Incident, Update
from .policy import Policy
from .read import Outcome, configured_format, read


@dataclass
class Preview:
    """What one read of a page gave."""

    url: str
    format: str
    found_by: str  # "option" (--format), "url" (the URL names the platform) or "probe"
    outcome: Outcome
    announce: list[tuple[Incident, Update]] = field(default_factory=list)  # oldest first

    @property
    def incidents(self) -> list[Incident]:
        return list(self.outcome.parsed.incidents) if self.outcome.parsed else []

    @property
    def counts(self) -> dict[str, int]:
        found = self.incidents
        return {"incidents": len(found), "open_incidents": sum(1 for i in found if i.is_open),
                "updates": sum(len(i.updates) for i in found)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url, "format": self.format, "found_by": self.found_by,
            "endpoints": [{"view": v.name, "url": v.url, "error": v.error} for v in self.outcome.views],
            **self.counts,
            "skipped": list(self.outcome.parsed.skipped) if self.outcome.parsed else [],
            "first_contact": [
                {"incident_id": i.incident_id, "update_id": u.update_id, "created_at": u.created_at,
                 "status": u.status, "incident": i.title, "impact": i.impact, "kind": i.kind,
                 "components": list(u.components or i.components), "message": u.message, "url": i.url}
                for i, u in self.announce
            ],
            "ms": self.outcome.ms,
        }


def probe_provider(url: str, fmt: str = "auto") -> Provider:
    host = urlsplit(url).hostname or "page"
    return Provider(id="probe", name=host, url=url, format=fmt)


def preview(url: str, fmt: str = "auto", *, fetcher: Fetcher | None = None, timeout: float = 20.0,
            now: str | None = None) -> Preview:
    """Read `url` once through `tracker.read` (never raises: a page that cannot be read leaves
    `outcome.error` set)."""
    provider = probe_provider(url, fmt)
    own = fetcher is None
    fetcher = fetcher or Fetcher(timeout=timeout)
    try:
        outcome = read(provider, fetcher, None, now or times.now_iso())
    finally:
        if own:
            fetcher.close()
    found_by = "option" if fmt != "auto" else ("url" if configured_format(provider) != "auto" else "probe")
    result = Preview(url, outcome.format, found_by, outcome)
    if outcome.parsed is not None:
        policy = Policy.for_provider(provider)
        chosen = [(u.created_at, n, i, u) for n, i in enumerate(outcome.parsed.incidents)
                  if policy.announces(i, first_contact=True) for u in i.updates]
        result.announce = [(i, u) for _, _, i, u in sorted(chosen, key=lambda c: (c[0], c[1]))]
    return result


__all__ = ["Preview", "preview", "probe_provider"]
