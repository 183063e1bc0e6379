"""What every adapter does with the list of items a payload carries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..models import Incident, ParseResult

MAX_INCIDENTS = 500  # per payload; more is a broken or hostile page

T = TypeVar("T")


def collect(
    items: Sequence[T],
    build: Callable[[T, list[str]], Incident | None],
    *,
    what: str = "incident",
    plural: str = "incidents",
    skipped: list[str] | None = None,
) -> ParseResult:
    """Build an Incident from each item, in order: at most MAX_INCIDENTS of them, an item
    `build` returns None for skipped (with the warning it added), a repeated id skipped.

    `build(item, skipped)` appends its own warnings to `skipped`."""
    skipped = [] if skipped is None else skipped
    if len(items) > MAX_INCIDENTS:
        skipped.append(f"{len(items)} {plural} in one payload, only the first {MAX_INCIDENTS} kept")
        items = items[:MAX_INCIDENTS]
    incidents: list[Incident] = []
    seen: set[str] = set()
    for item in items:
        incident = build(item, skipped)
        if incident is None:
            continue
        if incident.incident_id in seen:
            skipped.append(f"duplicate {what} id {incident.incident_id} skipped")
            continue
        seen.add(incident.incident_id)
        incidents.append(incident)
    return ParseResult(incidents=incidents, skipped=skipped)


def objects_only(build: Callable[[dict[str, Any], list[str]], Incident | None], what: str = "an incident"):
    """Wrap `build` so an item that is not a JSON object is skipped with a warning."""

    def wrapped(item: Any, skipped: list[str]) -> Incident | None:
        if not isinstance(item, dict):
            skipped.append(f"{what} that is not an object was skipped")
            return None
        return build(item, skipped)

    return wrapped
