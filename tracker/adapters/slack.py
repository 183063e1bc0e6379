"""Slack status API v2.0.0 `/api/v2.0.0/current` (slack-status.com; status.slack.com
redirects there). Pure: payload in, incidents out.

`{status: "ok"|"active", date_created, date_updated, active_incidents[{id (int), title, type,
status, url, date_created, date_updated, services[], notes[{date_created, body}]}]}`.
Five real captures (2021-07 to 2026-09) show the response drifting; all shapes are read:

* notes newest first (2021-2024) -> oldest first (2026): notes are sorted by time here,
  whatever the capture's order, so ids and order do not depend on it;
* plain-text bodies with `\\r\\n` (2022) -> HTML bodies (`<p>`, `<br>`, `&nbsp;`, 2026):
  every body is reduced to plain text (paragraphs become blank lines);
* timestamps carry the US Pacific offset (-07:00 / -08:00); they are normalised to UTC;
* `services` may be `[]`, and key order changed (not significant).

The endpoint lists active incidents only: every listed incident has `status: "active"`
(1,738 archived snapshots), and a resolved incident simply disappears; its closing note is
only in `/api/v2.0.0/history`, which this adapter does not read. So incidents and notes read
here are "investigating" ("active" -> investigating); a listed incident whose status says
"resolved" (as `/history` items do) is "resolved" with its newest note "resolved".

Impact from `type` (Slack has no severity field): outage -> major, incident -> minor,
notice -> none (any other type -> minor). Every type is kind "incident": a notice is an
announcement about a live problem, not a scheduled maintenance.

Ids: incident id = `id` as text ("1576"). Notes have no id: each gets its `date_created` in
UTC, "20260813T212141Z" (stored under the incident, so the key is incident id + note time);
a second note at the same instant gets "-" + 8 hex digits of the SHA-1 of its text. The UTC
form keeps the id when Slack changes the offset it writes.

Components: `services` (names only; Slack has no component ids), on the incident; notes
carry none of their own.
"""

from __future__ import annotations

from typing import Any

from ..errors import ParseError
from ..models import Incident, ParseResult, Update
from .common import UpdateIds, add_unique, cap_components, clean_text, describe, ident, json_type, parse_time
from .common import collect, objects_only
from .common import MAX_UPDATES, fallback_message

IMPACTS = {"outage": "major", "incident": "minor", "notice": "none"}
STATUSES = {"active": "investigating", "resolved": "resolved"}


def _incident(item: dict[str, Any], skipped: list[str]) -> Incident | None:
    incident_id = ident(item.get("id"))
    if incident_id is None:
        skipped.append(f"incident without an id skipped (title {str(item.get('title'))[:80]!r})")
        return None
    kind_word = item.get("type").strip().lower() if isinstance(item.get("type"), str) else ""
    impact = IMPACTS.get(kind_word, "minor")
    word = item.get("status").strip().lower() if isinstance(item.get("status"), str) else ""
    status = STATUSES.get(word, "investigating")

    raw_notes = item.get("notes")
    if raw_notes is None:
        raw_notes = []
    if not isinstance(raw_notes, list):
        skipped.append(f"incident {incident_id}: 'notes' is not a list; incident skipped")
        return None

    notes: list[tuple[str, str]] = []
    for raw in raw_notes:
        if not isinstance(raw, dict):
            skipped.append(f"incident {incident_id}: a note that is not an object was skipped")
            continue
        published = parse_time(raw.get("date_created"))
        if published is None:
            skipped.append(
                f"incident {incident_id}: note with no readable date_created "
                f"({str(raw.get('date_created'))[:40]!r}) skipped"
            )
            continue
        notes.append((published, clean_text(raw.get("body"))))
    # Oldest first whatever the capture's order. Two notes at one instant keep a fixed order
    # (by text), so the same payload in either order gives the same ids.
    notes.sort(key=lambda n: (n[0], n[1]))
    if len(notes) > MAX_UPDATES:
        skipped.append(f"incident {incident_id}: {len(notes)} notes, only the newest {MAX_UPDATES} kept")
        notes = notes[-MAX_UPDATES:]

    ids = UpdateIds()
    updates: list[Update] = []
    for n, (published, text) in enumerate(notes):
        u_status = "resolved" if status == "resolved" and n == len(notes) - 1 else "investigating"
        updates.append(
            Update(
                update_id=ids.make(published, text),
                status=u_status,
                message=text or fallback_message(u_status, impact),
                created_at=published,
            )
        )

    created_at = parse_time(item.get("date_created")) or (updates[0].created_at if updates else None)
    if created_at is None:
        skipped.append(f"incident {incident_id}: no readable date_created; skipped")
        return None
    updated_at = parse_time(item.get("date_updated")) or (updates[-1].created_at if updates else None)

    names: list[str] = []
    services = item.get("services")
    if isinstance(services, list):
        for service in services:
            add_unique(names, clean_text(service))
    url = item.get("url").strip() if isinstance(item.get("url"), str) and item.get("url").strip() else None
    return Incident(
        incident_id=incident_id,
        title=clean_text(item.get("title")) or "(untitled)",
        status=status,
        impact=impact,
        kind="incident",
        url=url,
        created_at=created_at,
        updated_at=updated_at,
        resolved_at=updated_at if status == "resolved" else None,
        components=cap_components(names, f"incident {incident_id}", skipped),
        updates=tuple(updates),
    )


def parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """Slack /api/v2.0.0/current -> active incidents with their notes, oldest note first."""
    if not isinstance(payload, dict) or "active_incidents" not in payload:
        raise ParseError(
            f"not a Slack status /current payload: expected an object with 'active_incidents', got {describe(payload)}"
        )
    items = payload["active_incidents"]
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ParseError(f"Slack 'active_incidents' is a JSON {json_type(items)}, not a list")
    return collect(items, objects_only(_incident))
