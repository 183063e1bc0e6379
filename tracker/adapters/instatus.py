"""Instatus public `/summary.json`. Pure: payload in, incidents out.

`{page: {name, url, status: UP|HASISSUES|UNDERMAINTENANCE}, activeIncidents?: [{id, name,
started, status, impact, url, updatedAt}], activeMaintenances?: [{id, name, start, status,
duration, url, updatedAt}]}` (two captures: Instatus' demo page and Gcore). The arrays are
*omitted* when empty, never `[]`; both are read as empty when missing.

The endpoint carries no update texts and no update list. Each incident or maintenance gets
one synthetic update standing for "its state as of `updatedAt`": update id = the
`updatedAt` instant in UTC ("20251004T170817.917Z", so a later change to the item gives a new
update and the old id stays the same), created_at = `updatedAt` (`started`/`start` when it is
missing), message a readable fallback: "Investigating (impact: partial outage)" for an
incident, "Scheduled: 2026-09-10 08:00 to 08:15 UTC (15 minutes)" for a maintenance. Any edit
Instatus makes to the item moves `updatedAt` and so gives one more synthetic update.

Mapping (words in capitals, as Instatus writes them; public docs list the same sets):

* incident status: INVESTIGATING / IDENTIFIED / MONITORING / RESOLVED -> the same word in
  lower case; anything else -> "investigating".
* incident impact: DEGRADEDPERFORMANCE -> minor, MINOROUTAGE -> minor, PARTIALOUTAGE ->
  major, MAJOROUTAGE -> critical, UNDERMAINTENANCE -> maintenance, OPERATIONAL/other -> none.
* maintenance (kind "maintenance", impact "maintenance"): NOTSTARTEDYET -> scheduled,
  INPROGRESS -> in_progress, COMPLETED -> completed. Its window is `start` + `duration`
  minutes (there is no end field); created_at = `start`, and resolved_at = the window's end
  once COMPLETED.
* ids are Instatus' own (cuid strings); url the item's `url`; no components (the endpoint
  names none).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .. import times
from ..errors import ParseError
from ..models import Incident, ParseResult, Update
from .common import UpdateIds, clean_text, describe, ident, json_type, parse_time
from .common import collect

INCIDENT_STATUSES = {
    "INVESTIGATING": "investigating",
    "IDENTIFIED": "identified",
    "MONITORING": "monitoring",
    "RESOLVED": "resolved",
}
IMPACTS = {
    "DEGRADEDPERFORMANCE": "minor",
    "MINOROUTAGE": "minor",
    "PARTIALOUTAGE": "major",
    "MAJOROUTAGE": "critical",
    "UNDERMAINTENANCE": "maintenance",
    "OPERATIONAL": "none",
}
IMPACT_WORDS = {
    "DEGRADEDPERFORMANCE": "degraded performance",
    "MINOROUTAGE": "minor outage",
    "PARTIALOUTAGE": "partial outage",
    "MAJOROUTAGE": "major outage",
    "UNDERMAINTENANCE": "under maintenance",
    "OPERATIONAL": "operational",
}
MAINTENANCE_STATUSES = {"NOTSTARTEDYET": "scheduled", "INPROGRESS": "in_progress", "COMPLETED": "completed"}
PAGE_STATUSES = frozenset({"UP", "HASISSUES", "UNDERMAINTENANCE"})


def _word(value: Any) -> str:
    return value.strip().upper() if isinstance(value, str) else ""


def _url(item: dict[str, Any]) -> str | None:
    url = item.get("url")
    return url.strip() if isinstance(url, str) and url.strip() else None


def _incident(item: dict[str, Any], skipped: list[str]) -> Incident | None:
    incident_id = ident(item.get("id"))
    if incident_id is None:
        skipped.append(f"incident without an id skipped (name {str(item.get('name'))[:80]!r})")
        return None
    started = parse_time(item.get("started"))
    updated = parse_time(item.get("updatedAt"))
    when = updated or started
    if when is None:
        skipped.append(f"incident {incident_id}: no readable started/updatedAt; skipped")
        return None
    status = INCIDENT_STATUSES.get(_word(item.get("status")), "investigating")
    impact_word = _word(item.get("impact"))
    impact = IMPACTS.get(impact_word, "none")
    readable = IMPACT_WORDS.get(impact_word) or (impact_word.lower() if impact_word.isalpha() else "") or "unknown"
    message = f"{status.replace('_', ' ').capitalize()} (impact: {readable})"
    update = Update(update_id=UpdateIds().make(when, message), status=status, message=message, created_at=when)
    return Incident(
        incident_id=incident_id,
        title=clean_text(item.get("name")) or "(untitled)",
        status=status,
        impact=impact,
        kind="incident",
        url=_url(item),
        created_at=started or when,
        updated_at=updated,
        resolved_at=updated if status == "resolved" else None,
        updates=(update,),
    )


def _window(start: str, minutes: int | None) -> tuple[str | None, str]:
    """(end iso or None, "2026-09-10 08:00 to 08:15 UTC (15 minutes)")."""
    begin = datetime.fromisoformat(start[:-1] + "+00:00")
    first = begin.strftime("%Y-%m-%d %H:%M")
    if minutes is None:
        return None, f"{first} UTC"
    try:
        end = begin + timedelta(minutes=minutes)
    except OverflowError:
        return None, f"{first} UTC"
    last = end.strftime("%H:%M") if end.date() == begin.date() else end.strftime("%Y-%m-%d %H:%M")
    return times.iso(end), f"{first} to {last} UTC ({minutes} minute{'s' if minutes != 1 else ''})"


def _maintenance(item: dict[str, Any], skipped: list[str]) -> Incident | None:
    maintenance_id = ident(item.get("id"))
    if maintenance_id is None:
        skipped.append(f"maintenance without an id skipped (name {str(item.get('name'))[:80]!r})")
        return None
    start = parse_time(item.get("start"))
    if start is None:
        skipped.append(f"maintenance {maintenance_id}: no readable start ({str(item.get('start'))[:40]!r}); skipped")
        return None
    duration = item.get("duration")
    is_minutes = isinstance(duration, int) and not isinstance(duration, bool) and 0 <= duration <= 525600  # a year
    minutes = duration if is_minutes else None
    if duration is not None and minutes is None:
        skipped.append(f"maintenance {maintenance_id}: duration {str(duration)[:20]!r} is not minutes; end unknown")
    end, window = _window(start, minutes)
    status = MAINTENANCE_STATUSES.get(_word(item.get("status")), "scheduled")
    updated = parse_time(item.get("updatedAt"))
    when = updated or start
    message = f"{status.replace('_', ' ').capitalize()}: {window}"
    update = Update(update_id=UpdateIds().make(when, message), status=status, message=message, created_at=when)
    return Incident(
        incident_id=maintenance_id,
        title=clean_text(item.get("name")) or "(untitled)",
        status=status,
        impact="maintenance",
        kind="maintenance",
        url=_url(item),
        created_at=start,
        updated_at=updated,
        resolved_at=end if status == "completed" else None,
        updates=(update,),
        scheduled_for=start,
        scheduled_until=end,
    )


def parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """Instatus /summary.json -> active incidents and maintenances, one update each."""
    page = payload.get("page") if isinstance(payload, dict) else None
    known = isinstance(payload, dict) and (
        "activeIncidents" in payload
        or "activeMaintenances" in payload
        or (isinstance(page, dict) and _word(page.get("status")) in PAGE_STATUSES)
    )
    if not known:
        raise ParseError(
            "not an Instatus summary.json payload: expected 'page.status' UP/HASISSUES/UNDERMAINTENANCE "
            f"or 'activeIncidents'/'activeMaintenances', got {describe(payload)}"
        )
    items: list[tuple[str, Any]] = []
    for key, kind in (("activeIncidents", "incident"), ("activeMaintenances", "maintenance")):
        value = payload.get(key)
        if value is None:  # omitted when empty
            continue
        if not isinstance(value, list):
            raise ParseError(f"Instatus '{key}' is a JSON {json_type(value)}, not a list")
        items.extend((kind, item) for item in value)

    def build(pair: tuple[str, Any], skipped: list[str]) -> Incident | None:
        kind, item = pair
        if not isinstance(item, dict):
            article = "an incident" if kind == "incident" else "a maintenance"
            skipped.append(f"{article} that is not an object was skipped")
            return None
        return _incident(item, skipped) if kind == "incident" else _maintenance(item, skipped)

    return collect(items, build, plural="incidents and maintenances")
