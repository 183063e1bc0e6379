"""status.io public status API `GET https://api.status.io/1.0/status/<statuspage_id>`. Pure:
payload in, incidents out.

Where each part comes from (no real capture with an incident or a maintenance exists):

From the real capture (GitLab, `tests/fixtures/gitlab-statusio-status-2026-07-01.json`):
`{"result": {status_overall{updated, status, status_code}, status[{id, name, status,
status_code, containers[{id, name, updated, status, status_code}], updated}], incidents: [],
maintenance: {active: [], upcoming: []}}}` -- the envelope, the component list (used here to
name components an incident gives by id only), and that empty lists are `[]`.

From status.io's documentation, https://kb.status.io/developers/public-status-api: the same
envelope, and that the response "includes active incidents, active maintenances and
scheduled maintenances" (`incidents`, `maintenance.active`, `maintenance.upcoming`). Resolved
incidents and finished maintenances are not listed: they drop out of the response.

From status.io's own API clients (vendor code, so read as documentation):
* statusio/statusio-go `status_types.go`, `StatusSummaryResponse` (the type its
  `StatusSummary` call decodes this endpoint into): an incident is `{_id, name,
  datetime_open, status, status_code, messages[{details, datetime, state, status}],
  components_affected[{_id, name}], containers_affected[{_id, name}]}`; a maintenance has the
  same plus `datetime_planned_start`, `datetime_planned_end`.
* statusio/status.io.net `CommonModel.cs`: message `state` (IncidentState) 100 Investigating,
  200 Identified, 300 Monitoring; message `status` (IncidentStatus) 100 Operational,
  300 Degraded Performance, 400 Partial Service Disruption, 500 Service Disruption,
  600 Security Event. Its `Message` also carries an `_id` (used as the update id when present).

Not documented, taken from third-party public code reading this endpoint: message state 400
= resolved (the official enum stops at 300; a resolve normally removes the incident from the
response anyway).

Mapping:
* incident status per message from `state` (100 investigating, 200 identified, 300
  monitoring, 400 resolved; anything else keeps the previous message's status, first one
  "investigating"); the incident's status is its newest message's.
* impact: the worst of the messages' `status` and the incident's `status_code`: 300 -> minor,
  400 -> major, 500 and 600 -> critical, else none. Maintenances: impact "maintenance".
* maintenance status from the list it is in: `upcoming` -> scheduled, `active` ->
  in_progress; a message of an active maintenance published before `datetime_planned_start`
  is "scheduled", later ones "in_progress" (message states of maintenances are not
  documented, so they are not read).
* ids: `_id` (or `id`) of the incident/maintenance; a message's `_id` when present, else its
  `datetime` in UTC ("20211206T164903Z", "-" + 8 hex of the text's SHA-1 on a tie).
* components: `components_affected[].name` (ids resolved against `result.status[]`);
  containers are infrastructure/locations shared between components (GitLab: "Google Compute
  Engine", "AWS"), not components, and are left out.
* message: `details`, any HTML reduced to plain text; url: the provider's page URL when it is
  not the api.status.io endpoint (the payload carries no link), else none.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..errors import ParseError
from ..models import Incident, ParseResult, Update
from .common import UpdateIds, add_unique, cap_components, clean_text, describe, ident, json_type, parse_time
from .common import collect
from .common import MAX_UPDATES, fallback_message

STATES = {100: "investigating", 200: "identified", 300: "monitoring", 400: "resolved"}
IMPACTS = {300: "minor", 400: "major", 500: "critical", 600: "critical"}
_ORDER = ["none", "minor", "major", "critical"]
API_HOSTS = ("api.status.io", "status-api.hostedstatus.com")


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _page_url(base_url: str | None) -> str | None:
    if not base_url:
        return None
    parts = urlsplit(base_url)
    if not parts.scheme or not parts.netloc or parts.netloc.lower() in API_HOSTS:
        return None
    return base_url


def _components(item: dict[str, Any], names_by_id: dict[str, str]) -> list[str]:
    names: list[str] = []
    affected = item.get("components_affected")
    if isinstance(affected, list):
        for entry in affected:
            if isinstance(entry, dict):
                name = clean_text(entry.get("name"))
                key = ident(entry.get("_id")) or ident(entry.get("id"))
                add_unique(names, name or names_by_id.get(key or "", ""))
            elif isinstance(entry, str):
                add_unique(names, names_by_id.get(entry.strip(), ""))
    return names


def _event(
    item: dict[str, Any],
    kind: str,
    bucket: str,
    names_by_id: dict[str, str],
    page_url: str | None,
    skipped: list[str],
) -> Incident | None:
    label = "incident" if kind == "incident" else "maintenance"
    event_id = ident(item.get("_id")) or ident(item.get("id"))
    if event_id is None:
        skipped.append(f"{label} without an _id skipped (name {str(item.get('name'))[:80]!r})")
        return None
    raw_messages = item.get("messages")
    if raw_messages is None:
        raw_messages = []
    if not isinstance(raw_messages, list):
        skipped.append(f"{label} {event_id}: 'messages' is not a list; skipped")
        return None

    planned_start = parse_time(item.get("datetime_planned_start"))
    messages: list[tuple[str, Any, str, int | None, int | None]] = []
    for raw in raw_messages:
        if not isinstance(raw, dict):
            skipped.append(f"{label} {event_id}: a message that is not an object was skipped")
            continue
        published = parse_time(raw.get("datetime"))
        if published is None:
            skipped.append(
                f"{label} {event_id}: message with no readable datetime ({str(raw.get('datetime'))[:40]!r}) skipped"
            )
            continue
        text = clean_text(raw.get("details"))
        messages.append((published, ident(raw.get("_id")), text, _int(raw.get("state")), _int(raw.get("status"))))
    messages.sort(key=lambda m: m[0])
    if len(messages) > MAX_UPDATES:
        skipped.append(f"{label} {event_id}: {len(messages)} messages, only the newest {MAX_UPDATES} kept")
        messages = messages[-MAX_UPDATES:]

    if kind == "incident":
        worst = IMPACTS.get(_int(item.get("status_code")) or 0, "none")
        for *_, code in messages:
            candidate = IMPACTS.get(code or 0, "none")
            if _ORDER.index(candidate) > _ORDER.index(worst):
                worst = candidate
        impact = worst
    else:
        impact = "maintenance"

    ids = UpdateIds()
    updates: list[Update] = []
    previous = "investigating" if kind == "incident" else "scheduled"
    for published, message_id, text, state, _ in messages:
        if kind == "incident":
            status = STATES.get(state or 0, previous)
        elif bucket == "upcoming":
            status = "scheduled"
        else:
            status = "scheduled" if planned_start and published < planned_start else "in_progress"
        previous = status
        if message_id is None or message_id in ids.seen:
            update_id = ids.make(published, text)
        else:
            ids.seen.add(message_id)
            update_id = message_id
        message = text or fallback_message(status, impact)
        updates.append(Update(update_id=update_id, status=status, message=message, created_at=published))

    if kind == "incident":
        status = updates[-1].status if updates else "investigating"
    else:
        status = "in_progress" if bucket == "active" else "scheduled"
    created_at = parse_time(item.get("datetime_open")) or planned_start or (updates[0].created_at if updates else None)
    if created_at is None:
        skipped.append(f"{label} {event_id}: no readable datetime_open; skipped")
        return None
    return Incident(
        incident_id=event_id,
        title=clean_text(item.get("name")) or "(untitled)",
        status=status,
        impact=impact,
        kind=kind,
        url=page_url,
        created_at=created_at,
        updated_at=updates[-1].created_at if updates else None,
        resolved_at=updates[-1].created_at if status == "resolved" and updates else None,
        components=cap_components(_components(item, names_by_id), f"{label} {event_id}", skipped),
        updates=tuple(updates),
        scheduled_for=planned_start if kind == "maintenance" else None,
        scheduled_until=parse_time(item.get("datetime_planned_end")) if kind == "maintenance" else None,
    )


def parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """status.io /1.0/status/<id> -> active incidents and active/upcoming maintenances."""
    result = payload.get("result") if isinstance(payload, dict) else None
    if not isinstance(result, dict) or not any(k in result for k in ("status_overall", "incidents", "maintenance")):
        raise ParseError(
            "not a status.io /1.0/status payload: expected 'result' with 'status_overall'/'incidents', "
            f"got {describe(payload)}"
        )
    names_by_id: dict[str, str] = {}
    components = result.get("status")
    if isinstance(components, list):
        for component in components:
            if isinstance(component, dict):
                key = ident(component.get("id")) or ident(component.get("_id"))
                name = clean_text(component.get("name"))
                if key and name:
                    names_by_id[key] = name

    items: list[tuple[str, str, Any]] = []
    incidents_raw = result.get("incidents")
    if incidents_raw is None:
        incidents_raw = []
    if not isinstance(incidents_raw, list):
        raise ParseError(f"status.io 'incidents' is a JSON {json_type(incidents_raw)}, not a list")
    items.extend(("incident", "incidents", item) for item in incidents_raw)
    maintenance = result.get("maintenance")
    if maintenance is None:
        maintenance = {}
    if not isinstance(maintenance, dict):
        raise ParseError(f"status.io 'maintenance' is a JSON {json_type(maintenance)}, not an object")
    for bucket in ("active", "upcoming"):
        value = maintenance.get(bucket)
        if value is None:
            continue
        if not isinstance(value, list):
            raise ParseError(f"status.io 'maintenance.{bucket}' is a JSON {json_type(value)}, not a list")
        items.extend(("maintenance", bucket, item) for item in value)

    page_url = _page_url(base_url)
    def build(entry: tuple[str, str, Any], skipped: list[str]) -> Incident | None:
        kind, bucket, item = entry
        if not isinstance(item, dict):
            skipped.append(f"an item of '{bucket}' that is not an object was skipped")
            return None
        return _event(item, kind, bucket, names_by_id, page_url, skipped)

    return collect(items, build, plural="incidents and maintenances")
