"""What is announced: a pure decision per incident, outside storage (docs/contract.md §4).

The store records every update it is given; which of the new ones are announced (logged and
delivered) is decided here, from the provider's filters and whether this poll is its first
contact. Backfill announces all or nothing (`--emit`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Incident

# min_impact judges incidents only (maintenance is filtered by `kinds`)
IMPACT_RANK = {"none": 0, "minor": 1, "major": 2, "critical": 3}


@dataclass(frozen=True)
class Policy:
    """`mode`: "poll" (first contact announces only open incidents, later polls everything
    new), "all" or "none" (backfill with or without --emit, filters aside). `components`:
    lower-cased names, an incident touching none of them is recorded silently (empty: no
    filter); `kinds`: the kinds announced; `min_impact`: incidents below it are silent."""

    mode: str = "poll"
    components: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset({"incident", "maintenance"})
    min_impact: str = "none"

    @classmethod
    def for_provider(cls, provider: object, mode: str = "poll") -> "Policy":
        return cls(
            mode=mode,
            components=frozenset(c.lower() for c in getattr(provider, "components", ())),
            kinds=frozenset(getattr(provider, "kinds", ("incident", "maintenance"))),
            min_impact=getattr(provider, "min_impact", "none"),
        )

    def announces(self, incident: Incident, first_contact: bool) -> bool:
        """Whether the new updates of `incident` are announced."""
        if self.mode != "poll":
            return self.mode == "all"  # backfill: --emit announces what it records, filters aside
        if self.mode == "poll" and first_contact and not incident.is_open:
            return False
        if self.components and not incident.touches(self.components):
            return False
        if incident.kind not in self.kinds:
            return False
        if incident.kind == "incident" and IMPACT_RANK.get(incident.impact, 0) < IMPACT_RANK[self.min_impact]:
            return False
        return True


__all__ = ["Policy"]
