"""incident.io status pages, natively (OpenAI, Linear, Groq, …). Pure: payload in, incidents out.

An incident.io page is read as two views of one page with one id space (docs/contract.md §5):

* `GET {page}/proxy/<host>` -> `{"summary": {…, "components": [{id, name}],
  "ongoing_incidents": [...], "scheduled_maintenances": [...]}}`: what is open now, each update
  with its own text (real captures: tests/fixtures/openai-/groq-incidentio-proxy-*.json, and the
  same object embedded in openai-incidentio-page-*.html). This module reads it.
* `GET {page}/api/v2/incidents.json`: the Statuspage-compatible copy, recent incidents including
  resolved ones, with the same incident and update ids. Its bodies were empty strings in the
  November 2025 capture but carry every update's real text, the final `resolved` one included,
  in the July-August 2026 captures (openai-compat-incidents-weekly-2026-W3x.json). The
  statuspage adapter reads it (see adapters/__init__.py).

The native list `GET {page}/proxy/<host>/incidents` (`{"incidents": [...]}`, optionally with
`start_at`/`end_at`) and a per-incident `…/incidents/<id>` (`{"incident": {...}}`) are read by
backfill only: no untrimmed capture of the list exists, and the published ones carry only the
first update of each resolved incident, so "the list carries every update" is unverified.

An incident object: `id, name, status (investigating|identified|monitoring|resolved), type
("incident"|"maintenance"), published_at, affected_components[{component_id, status}],
component_impacts[{component_id, start_at, end_at, status}], updates[{id, published_at,
to_status, message{…}, message_string, component_statuses[{component_id, status}]}]`.
Maintenances use statuses maintenance_scheduled / maintenance_in_progress /
maintenance_complete, mapped to Statuspage's scheduled / in_progress / completed.

The update text is `message_string` (plain text), else the `markdown` rendering, else the text
of the rich-text tree. Impact is the worst component status the incident touched:
full_outage -> critical, partial_outage -> major, degraded_performance -> minor,
under_maintenance -> maintenance. `resolved_at` is the time of the newest update when that
update closes the incident, never taken from a list that may be truncated.

A maintenance can stay listed as "scheduled" long after its window ended (Groq's capture: 11
months). With `now` given, one whose every window has ended is read as completed, so first
contact does not announce it as upcoming.
"""

from __future__ import annotations

import re
from typing import Any

from .. import times
from ..errors import ParseError
from ..models import CLOSED_STATUSES, Incident, ParseResult, Update
from .common import MAX_INCIDENTS, MAX_TEXT, MAX_UPDATES, fallback_message

STATUSES = {
    "maintenance_scheduled": "scheduled",
    "maintenance_in_progress": "in_progress",
    "maintenance_complete": "completed",
    "maintenance_completed": "completed",
}
IMPACTS = {"full_outage": 4, "partial_outage": 3, "degraded_performance": 2, "under_maintenance": 1}
IMPACT_WORDS = {4: "critical", 3: "major", 2: "minor", 1: "maintenance", 0: "none"}


def _text(value: Any) -> str:
    if not isinstance(value, str) or value == "$undefined":
        return ""
    value = value.strip()
    return value[:MAX_TEXT] + " […]" if len(value) > MAX_TEXT else value


def _tree_text(node: Any) -> str:
    """Plain text of a rich-text document (paragraphs and list items on their own lines)."""
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return _text(node.get("text")) if node.get("text") != "$undefined" else ""
    if kind in ("lineBreak", "hardBreak"):
        return "\n"
    parts = [_tree_text(child) for child in node.get("content") or [] if isinstance(child, dict)]
    joined = "".join(parts) if kind in ("paragraph", "heading", "listItem") else "\n".join(p for p in parts if p)
    if kind == "listItem":
        joined = "• " + joined
    return joined


def _message(update: dict[str, Any]) -> str:
    text = _text(update.get("message_string"))
    if not text:
        message = update.get("message")
        if isinstance(message, dict):
            text = _text(message.get("markdown")) or _text(_tree_text(message.get("text_node") or message))
    return text


def _status(value: Any, default: str) -> str:
    word = _text(value).lower()
    return STATUSES.get(word, word) or default


def _names(entries: Any, names: dict[str, str]) -> tuple[str, ...]:
    found: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        name = names.get(str(entry.get("component_id"))) or _text(entry.get("name"))
        if name and name not in found:
            found.append(name)
    return tuple(found)


def _incident(item: dict[str, Any], names: dict[str, str], base_url: str | None, now: str | None,
              skipped: list[str]) -> Incident | None:
    incident_id = _text(item.get("id"))
    if not incident_id:
        skipped.append(f"incident without an id skipped (name {str(item.get('name'))[:80]!r})")
        return None
    maintenance = item.get("type") == "maintenance" or str(item.get("status", "")).startswith("maintenance")
    status = _status(item.get("status"), "scheduled" if maintenance else "investigating")
    worst = 0
    for group in ("affected_components", "component_impacts"):
        for entry in item.get(group) or []:
            if isinstance(entry, dict):
                worst = max(worst, IMPACTS.get(str(entry.get("status")), 0))
    impact = "maintenance" if maintenance else IMPACT_WORDS[worst if worst != 1 else 0]
    impacts = [e for e in item.get("component_impacts") or [] if isinstance(e, dict)]
    ends = [times.parse(e.get("end_at")) for e in impacts]
    starts = [t for t in (times.parse(e.get("start_at")) for e in impacts) if t]
    if maintenance and now and status == "scheduled" and ends and all(e and e < now for e in ends):
        status = "completed"  # a window that ended long ago but is still listed as upcoming

    raw_updates = item.get("updates") or []
    if not isinstance(raw_updates, list):
        skipped.append(f"incident {incident_id}: 'updates' is not a list; incident skipped")
        return None
    if len(raw_updates) > MAX_UPDATES:
        skipped.append(f"incident {incident_id}: {len(raw_updates)} updates, only {MAX_UPDATES} kept")
        raw_updates = raw_updates[:MAX_UPDATES]
    updates: list[Update] = []
    seen: set[str] = set()
    for raw in raw_updates:
        if not isinstance(raw, dict):
            continue
        update_id = _text(raw.get("id"))
        published = times.parse(raw.get("published_at"))
        if not update_id or update_id in seen or published is None:
            skipped.append(f"incident {incident_id}: an update without a usable id or time was skipped")
            continue
        seen.add(update_id)
        u_status = _status(raw.get("to_status"), status)
        text = _message(raw)
        updates.append(Update(
            update_id=update_id,
            status=u_status,
            message=text or fallback_message(u_status, impact),
            source=text,
            created_at=published,
            components=_names(raw.get("component_statuses"), names),
        ))
    updates.sort(key=lambda u: u.created_at)
    created = times.parse(item.get("published_at")) or (updates[0].created_at if updates else None)
    if created is None:
        skipped.append(f"incident {incident_id}: no readable published_at; skipped")
        return None
    if updates and updates[0].created_at < created:
        created = updates[0].created_at  # updates can be back-dated before publication
    return Incident(
        incident_id=incident_id,
        title=_text(item.get("name")) or "(untitled)",
        status=status,
        impact=impact,
        kind="maintenance" if maintenance else "incident",
        url=f"{base_url.rstrip('/')}/incidents/{incident_id}" if base_url else None,
        created_at=created,
        updated_at=updates[-1].created_at if updates else created,
        resolved_at=updates[-1].created_at if updates and updates[-1].status in CLOSED_STATUSES else None,
        components=_names(item.get("affected_components"), names),
        updates=tuple(updates),
        scheduled_for=min(starts) if maintenance and starts else None,
        scheduled_until=max(ends) if maintenance and ends and all(ends) else None,
    )


def _component_names(summary: dict[str, Any]) -> dict[str, str]:
    """component id -> name. Two components may share a name in different groups (OpenAI has
    a "Login" under APIs and one under ChatGPT): those get their group's name in brackets."""
    names = {str(c["id"]): c["name"].strip() for c in summary.get("components") or []
             if isinstance(c, dict) and c.get("id") and isinstance(c.get("name"), str)}
    groups: dict[str, str] = {}
    structure = summary.get("structure") if isinstance(summary.get("structure"), dict) else {}
    for item in structure.get("items") or []:
        group = item.get("group") if isinstance(item, dict) else None
        if isinstance(group, dict) and isinstance(group.get("name"), str):
            for c in group.get("components") or []:
                if isinstance(c, dict) and c.get("component_id"):
                    groups[str(c["component_id"])] = group["name"].strip()
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {cid: f"{name} ({groups[cid]})" if counts[name] > 1 and cid in groups else name
            for cid, name in names.items()}


# incident.io's ids are ULIDs ("01JMDK9XYNY6RXSED6SDWW50WY": 26 characters of Crockford's
# base 32); Statuspage's are 12 lower-case letters and digits ("kctbh9vrtdwd").
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def is_compatible_copy(payload: Any) -> bool:
    """Whether a Statuspage-shaped payload is incident.io's Statuspage-compatible copy: its page
    id (or, without one, its first incident's id) is a ULID. Every capture of the copy
    (tests/fixtures/openai-incidents-*.json, openai-compat-incidents-weekly-*.json) has ULID
    ids; no Statuspage capture does."""
    if not isinstance(payload, dict):
        return False
    page, incidents = payload.get("page"), payload.get("incidents")
    ident = page.get("id") if isinstance(page, dict) else None
    if ident is None and isinstance(incidents, list) and incidents and isinstance(incidents[0], dict):
        ident = incidents[0].get("id")
    return isinstance(ident, str) and _ULID.fullmatch(ident) is not None


def parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """`{"summary": {...}}`, `{"incidents": [...]}` or `{"incident": {...}}` -> incidents."""
    if isinstance(payload, dict) and isinstance(payload.get("incident"), dict) and "incidents" not in payload:
        payload = {**payload, "incidents": [payload["incident"]]}
    if not isinstance(payload, dict) or not ("summary" in payload or "incidents" in payload):
        kind = type(payload).__name__ if not isinstance(payload, dict) else "object with keys " + ", ".join(
            sorted(map(str, payload))[:8])
        raise ParseError(f"not an incident.io status page payload: expected 'summary' or 'incidents', got {kind}")
    items: list[Any] = []
    names: dict[str, str] = {}
    summary = payload.get("summary")
    if summary is not None:
        if not isinstance(summary, dict):
            raise ParseError("incident.io 'summary' is not an object")
        names = _component_names(summary)
        for key in ("ongoing_incidents", "scheduled_maintenances"):
            if not isinstance(summary.get(key) or [], list):
                raise ParseError(f"incident.io summary '{key}' is not a list")
            items += summary.get(key) or []
    if "incidents" in payload:
        listed = payload["incidents"]
        if not isinstance(listed, list):
            raise ParseError("incident.io 'incidents' is not a list")
        if any(isinstance(i, dict) and "incident_updates" in i for i in listed) and not any(
            isinstance(i, dict) and "updates" in i for i in listed
        ):
            raise ParseError("not an incident.io status page payload: this is Statuspage's "
                             "incidents.json (format statuspage reads it)")
        items += listed
    skipped: list[str] = []
    complete = True  # every item read: one missing from the result is missing from the page
    if len(items) > MAX_INCIDENTS:
        skipped.append(f"{len(items)} incidents in one payload, only the first {MAX_INCIDENTS} kept")
        items = items[:MAX_INCIDENTS]
        complete = False
    incidents: dict[str, Incident] = {}
    for item in items:
        if not isinstance(item, dict):
            skipped.append("an incident that is not an object was skipped")
            complete = False
            continue
        incident = _incident(item, names, base_url, now, skipped)
        if incident is None:
            complete = False
            continue
        known = incidents.get(incident.incident_id)
        if known is None or len(incident.updates) > len(known.updates):
            incidents[incident.incident_id] = incident  # the list and the summary may both carry it
    return ParseResult(incidents=list(incidents.values()), skipped=skipped, complete=complete)
