"""What is announced: a pure decision per incident, outside storage (docs/contract.md §4).

The store records every update it is given; which of the new ones are announced (logged and
delivered) is decided here, from the provider's filters and whether this poll is its first
contact. Backfill announces all or nothing (`--emit`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Incident


@dataclass(frozen=True)
class Policy:
    """`mode`: "poll" (first contact announces only open incidents, later polls everything
    new), "all" or "none" (backfill with or without --emit, filters aside). `components`: lower-cased names,
    an incident touching none of them is recorded silently (empty: no filter)."""

    mode: str = "poll"
    components: frozenset[str] = frozenset()

    @classmethod
    def for_provider(cls, provider: object, mode: str = "poll") -> "Policy":
        return cls(mode=mode, components=frozenset(c.lower() for c in getattr(provider, "components", ())))

    def announces(self, incident: Incident, first_contact: bool) -> bool:
        """Whether the new updates of `incident` are announced."""
        if self.mode != "poll":
            return self.mode == "all"  # backfill: --emit announces what it records, filters aside
        if self.mode == "poll" and first_contact and not incident.is_open:
            return False
        if self.components and not incident.touches(self.components):
            return False
        return True


__all__ = ["Policy"]
