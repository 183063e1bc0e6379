"""Atlassian Statuspage API v2 (and pages that copy it, such as incident.io's).

Reads `/api/v2/incidents.json` ({"page", "incidents"}), and the same incident objects where
other endpoints carry them: `summary.json` and `scheduled-maintenances.json`
("scheduled_maintenances") and `incidents/<id>.json` ({"incident"}). Pure: payload in,
incidents out.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from .. import times
from ..errors import ParseError
from ..models import Incident, ParseResult, Update
from .common import (MAINTENANCE_STATUSES, MAX_UPDATES, clean_text, clip, collect, fallback_message, ident,
                     json_type, objects_only)
from .common import MAX_INCIDENTS, MAX_TEXT  # noqa: F401 - re-exported

# `summary.json` lists at most this many upcoming and active maintenances (a big page's list is
# always full); what is pushed off its end is still scheduled (docs/contract.md §4).
MAINTENANCE_CAP = 100


def _text(value: Any) -> str:
    """The body as the page wrote it (stripped, capped at MAX_TEXT): not reduced."""
    if not isinstance(value, str):
        return ""
    return clip(value.strip())


# Statuspage bodies are plain text (often Markdown) that may carry HTML tags; a literal
# "<SOME/ALL>" in Atlassian's text is not one. Only real HTML elements make a body markup.
_HTML = re.compile(
    r"</?(?:a|b|br|blockquote|code|div|em|h[1-6]|hr|i|li|ol|p|pre|s|small|span|strong|sub|sup|table|"
    r"tbody|td|th|thead|tr|u|ul)(?:\s[^<>]*)?/?>|&(?:nbsp|amp|lt|gt|quot|#\d+|#x[0-9a-fA-F]+);",
    re.IGNORECASE,
)


def _is_html(body: str) -> bool:
    return ("<" in body or "&" in body) and _HTML.search(body) is not None


def _names(items: Any) -> tuple[str, ...]:
    """Component names from `components` / `affected_components` (either may be null)."""
    if not items or not isinstance(items, list):
        return ()
    names: list[str] = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and (name := name.strip()) and name not in names:
            names.append(name)
    return tuple(names)


def _incident(item: dict[str, Any], page_url: str | None, skipped: list[str]) -> Incident | None:
    incident_id = ident(item.get("id"))
    if incident_id is None:
        skipped.append(f"incident without an id skipped (name {str(item.get('name'))[:80]!r})")
        return None
    status = _text(item.get("status")).lower() or "investigating"
    impact = _text(item.get("impact")).lower() or "none"
    maintenance = (
        impact == "maintenance"
        or item.get("scheduled_for") is not None
        or status in MAINTENANCE_STATUSES
    )
    created_at = times.parse(item.get("created_at")) or times.parse(item.get("started_at"))
    raw_updates = item.get("incident_updates")
    if raw_updates is None:
        raw_updates = []
    if not isinstance(raw_updates, list):
        skipped.append(f"incident {incident_id}: 'incident_updates' is not a list; incident skipped")
        return None
    if len(raw_updates) > MAX_UPDATES:
        # The API lists newest first: keep the newest, say how many older ones were dropped.
        skipped.append(f"incident {incident_id}: {len(raw_updates)} updates, only the newest {MAX_UPDATES} kept")
        raw_updates = raw_updates[:MAX_UPDATES]

    updates: list[Update] = []
    seen: set[str] = set()
    # Pages list updates newest first; walking them oldest first keeps publication order for
    # updates that share a timestamp (incident.io's copy has whole-second times) through the
    # stable sort below.
    for raw in reversed(raw_updates):
        if not isinstance(raw, dict):
            skipped.append(f"incident {incident_id}: an update that is not an object was skipped")
            continue
        update_id = ident(raw.get("id"))
        if update_id is None:
            skipped.append(f"incident {incident_id}: an update without an id was skipped")
            continue
        if update_id in seen:
            skipped.append(f"incident {incident_id}: duplicate update id {update_id} skipped")
            continue
        # created_at is when the update was published; display_at (null on postmortems)
        # only stands in when created_at is missing or unreadable.
        published = times.parse(raw.get("created_at")) or times.parse(raw.get("display_at"))
        if published is None:
            skipped.append(
                f"incident {incident_id}: update {update_id} has no readable created_at "
                f"({str(raw.get('created_at'))[:40]!r}); skipped"
            )
            continue
        seen.add(update_id)
        u_status = _text(raw.get("status")).lower() or status
        body = _text(raw.get("body"))
        updates.append(
            Update(
                update_id=update_id,
                status=u_status,
                # The body reduced to plain text like every format's (docs/contract.md §3);
                # its source is the body as written, so the reduction is never an edit.
                message=(clean_text(body, markup=_is_html(body)) if body else "") or fallback_message(u_status, impact),
                source=body,
                created_at=published,
                components=_names(raw.get("affected_components")),
            )
        )
    updates.sort(key=lambda u: u.created_at)
    if created_at is None:
        created_at = updates[0].created_at if updates else None
    if created_at is None:
        skipped.append(f"incident {incident_id}: no readable created_at; skipped")
        return None

    url = None
    if page_url:
        url = f"{page_url.rstrip('/')}/incidents/{incident_id}"
    elif isinstance(item.get("shortlink"), str):
        url = item["shortlink"]
    return Incident(
        incident_id=incident_id,
        title=_text(item.get("name")) or "(untitled)",
        status=status,
        impact=impact,
        kind="maintenance" if maintenance else "incident",
        url=url,
        created_at=created_at,
        updated_at=times.parse(item.get("updated_at")),
        resolved_at=times.parse(item.get("resolved_at")),
        components=_names(item.get("components")),
        updates=tuple(updates),
        scheduled_for=times.parse(item.get("scheduled_for")) if maintenance else None,
        scheduled_until=times.parse(item.get("scheduled_until")) if maintenance else None,
    )


def parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """Statuspage JSON -> incidents with their updates, oldest update first."""
    if not isinstance(payload, dict):
        raise ParseError(f"expected a JSON object with an 'incidents' list, got a JSON {json_type(payload)}")
    items: list[Any] = []
    found = False
    if isinstance(payload.get("incident"), dict):
        items.append(payload["incident"])
        found = True
    for key in ("incidents", "scheduled_maintenances"):
        if key in payload:
            if not isinstance(payload[key], list):
                raise ParseError(f"'{key}' is a JSON {json_type(payload[key])}, not a list")
            items.extend(payload[key])
            found = True
    if not found:
        keys = ", ".join(sorted(str(k) for k in payload)[:8]) or "none"
        raise ParseError(f"not a Statuspage incidents payload: no 'incidents' list (keys: {keys})")

    page = payload.get("page") if isinstance(payload.get("page"), dict) else {}
    page_url = page.get("url") if isinstance(page.get("url"), str) and page.get("url") else base_url

    result = collect(items, objects_only(lambda item, skipped: _incident(item, page_url, skipped)))
    maintenances = payload.get("scheduled_maintenances")
    capped = frozenset({"maintenance"}) if isinstance(maintenances, list) and len(maintenances) >= MAINTENANCE_CAP \
        else frozenset()
    return replace(result, capped=capped, page_time=times.parse(page.get("updated_at")))
