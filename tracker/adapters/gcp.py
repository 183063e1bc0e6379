"""Google Cloud status `https://status.cloud.google.com/incidents.json`. Pure: payload in,
incidents out.

The payload is a top-level JSON array of incidents `{id, number, begin, created, end,
modified, external_desc, updates[{created, modified, when, text, status,
affected_locations}], most_recent_update, status_impact, severity, service_key,
service_name, affected_products[{title, id}], currently_affected_locations,
previously_affected_locations, uri}` with updates newest first (all 157 incidents of the 2022
capture). It holds about a year of incidents, all of them (open and closed).

Mapping (decided from the 2022 capture: 157 incidents, 770 updates):

* incident id = `id`; title = `external_desc`; url = "https://status.cloud.google.com/" + `uri`.
* created_at = `created` (when it was published; `begin`, the start of impact, stands in when
  it is missing), updated_at = `modified`, resolved_at = `end`.
* impact from `severity`: low -> minor, medium -> major, high -> critical (in the capture
  severity and `status_impact` always agree: SERVICE_INFORMATION/DISRUPTION/OUTAGE; the latter
  stands in when severity is missing).
* update status from the update's `status`, a per-update severity word rather than a stage:
  SERVICE_INFORMATION / SERVICE_DISRUPTION / SERVICE_OUTAGE (and anything unknown) ->
  "investigating" (Google publishes no identified/monitoring stage, and the word adds
  nothing to the text, which always says what is going on, so it is not copied into the
  message); AVAILABLE -> "resolved"; an AVAILABLE update that follows a resolved one ->
  "postmortem" (in the capture every such update is the "Mini Incident Report" / "Incident
  Report" Google posts after closing: 98 incidents have one). An incident with an `end` but
  no AVAILABLE update (2 in the capture: Google closed them without a closing text) gets its
  newest update marked "resolved" so the timeline ends closed.
* incident status: "postmortem" if the newest update is the report, "resolved" if `end` is
  set or the newest update is AVAILABLE, else "investigating".
* update ids: updates have none. Each gets its `created` time in UTC, "20220701T192545Z";
  a second update with the same `created` gets "-" + 8 hex digits of the SHA-1 of its text
  (none in the capture). Google edits texts after posting (`modified` is later than
  `created`), so the text is not part of the normal id: an edit does not re-announce.
* text: Markdown ("**Summary:**", "# Mini Incident Report", two `[link](url)`s, a literal
  "<->"), kept as published: it reads as plain text and stripping it would lose the report's
  structure. Only line endings, no-break spaces and trailing spaces are normalised. Inline
  HTML, which Markdown passes through to the page (none in the capture), would be reduced to
  text like the other adapters' HTML; "<->" and "<https://…>" are not mistaken for tags.
* components: `affected_products[].title`, else `service_name`. Regions
  (`affected_locations`) are not components: an event's components list products so a
  components filter can name "Google BigQuery".
"""

from __future__ import annotations

from typing import Any

from ..errors import ParseError
from ..models import Incident, ParseResult, Update
from .common import UpdateIds, add_unique, cap_components, clean_text, describe, ident, parse_time
from .common import collect, objects_only
from .common import MAX_UPDATES, fallback_message

PAGE_URL = "https://status.cloud.google.com/"
SEVERITY = {"low": "minor", "medium": "major", "high": "critical"}
STATUS_IMPACT = {"SERVICE_INFORMATION": "minor", "SERVICE_DISRUPTION": "major", "SERVICE_OUTAGE": "critical"}


def _looks_like_gcp(item: Any) -> bool:
    return isinstance(item, dict) and "id" in item and ("external_desc" in item or "updates" in item)


def _incident(item: dict[str, Any], skipped: list[str]) -> Incident | None:
    incident_id = ident(item.get("id"))
    if incident_id is None:
        skipped.append(f"incident without an id skipped (external_desc {str(item.get('external_desc'))[:80]!r})")
        return None
    severity = item.get("severity")
    impact = SEVERITY.get(severity.strip().lower(), "") if isinstance(severity, str) else ""
    if not impact:
        status_impact = item.get("status_impact")
        impact = STATUS_IMPACT.get(status_impact.strip().upper(), "none") if isinstance(status_impact, str) else "none"

    raw_updates = item.get("updates")
    if raw_updates is None:
        raw_updates = []
    if not isinstance(raw_updates, list):
        skipped.append(f"incident {incident_id}: 'updates' is not a list; incident skipped")
        return None
    if len(raw_updates) > MAX_UPDATES:
        # Newest first: keep the newest, say how many older ones were dropped.
        skipped.append(f"incident {incident_id}: {len(raw_updates)} updates, only the newest {MAX_UPDATES} kept")
        raw_updates = raw_updates[:MAX_UPDATES]

    parsed: list[tuple[str, str, str]] = []  # (created_at, vendor status, text)
    for raw in reversed(raw_updates):  # oldest first; a stable sort keeps ties in page order
        if not isinstance(raw, dict):
            skipped.append(f"incident {incident_id}: an update that is not an object was skipped")
            continue
        published = parse_time(raw.get("created")) or parse_time(raw.get("when"))
        if published is None:
            skipped.append(
                f"incident {incident_id}: update with no readable created "
                f"({str(raw.get('created'))[:40]!r}) skipped"
            )
            continue
        vendor = raw.get("status").strip().upper() if isinstance(raw.get("status"), str) else ""
        parsed.append((published, vendor, clean_text(raw.get("text"))))
    parsed.sort(key=lambda p: p[0])

    ended = parse_time(item.get("end"))
    statuses: list[str] = []
    for _, vendor, _ in parsed:
        if vendor == "AVAILABLE":
            closed_before = bool(statuses) and statuses[-1] in ("resolved", "postmortem")
            statuses.append("postmortem" if closed_before else "resolved")
        else:
            statuses.append("investigating")
    if ended and statuses and "resolved" not in statuses:
        statuses[-1] = "resolved"

    ids = UpdateIds()
    updates = [
        Update(
            update_id=ids.make(published, text),
            status=status,
            message=text or fallback_message(status, impact),
            created_at=published,
        )
        for (published, _, text), status in zip(parsed, statuses)
    ]

    if statuses and statuses[-1] == "postmortem":
        status = "postmortem"
    elif ended or (statuses and statuses[-1] == "resolved"):
        status = "resolved"
    else:
        status = "investigating"

    created_at = (
        parse_time(item.get("created"))
        or parse_time(item.get("begin"))
        or (updates[0].created_at if updates else None)
    )
    if created_at is None:
        skipped.append(f"incident {incident_id}: no readable created/begin; skipped")
        return None

    names: list[str] = []
    products = item.get("affected_products")
    if isinstance(products, list):
        for product in products:
            if isinstance(product, dict):
                add_unique(names, clean_text(product.get("title")))
    if not names:
        add_unique(names, clean_text(item.get("service_name")))

    uri = item.get("uri")
    if isinstance(uri, str) and uri.strip().startswith(("http://", "https://")):
        url = uri.strip()
    elif isinstance(uri, str) and uri.strip():
        url = PAGE_URL + uri.strip().lstrip("/")
    else:
        url = f"{PAGE_URL}incidents/{incident_id}"

    return Incident(
        incident_id=incident_id,
        title=clean_text(item.get("external_desc")) or "(untitled)",
        status=status,
        impact=impact,
        kind="incident",
        url=url,
        created_at=created_at,
        updated_at=parse_time(item.get("modified")),
        resolved_at=ended if status in ("resolved", "postmortem") else None,
        components=cap_components(names, f"incident {incident_id}", skipped),
        updates=tuple(updates),
    )


def parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """Google Cloud incidents.json -> incidents with their updates, oldest update first."""
    if not isinstance(payload, list):
        raise ParseError(
            f"not a Google Cloud incidents.json payload: expected a JSON array of incidents, got {describe(payload)}"
        )
    if payload and not any(_looks_like_gcp(item) for item in payload):
        raise ParseError(
            "not a Google Cloud incidents.json payload: no item has 'id' and 'external_desc'/'updates' "
            f"({describe(payload)})"
        )
    return collect(payload, objects_only(_incident))
