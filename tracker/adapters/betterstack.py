"""Better Stack (Better Uptime) status page `/index.json`. Pure: payload in, incidents out.

NO real capture of this endpoint exists in this repository: the adapter is built from Better
Stack's public documentation.

* https://betterstack.com/docs/uptime/status-pages/subscribing-to-status-updates/subscribing-to-api
  ("JSON API status"): add `/index.json` to a status page URL; the answer is JSON:API,
  `{"data": {"id", "type": "status_page", "attributes": {company_name, company_url,
  contact_url, logo_url, timezone, subdomain, custom_domain, announcement, aggregate_state,
  created_at, updated_at}, "relationships": {sections, resources, status_reports}},
  "included": [...]}`; `included` holds status page sections, resources ("individual
  monitors with availability and status history"; status values operational, degraded,
  downtime, maintenance, not_monitored) and the status reports with their updates.
* The Uptime API pages for the same objects give their attributes:
  https://betterstack.com/docs/uptime/api/list-existing-reports-on-a-status-page/ and
  https://betterstack.com/docs/uptime/api/status-page-reports-api-response-params: a
  `status_report` is `{id, type, attributes: {title, report_type (manual | automatic |
  maintenance), starts_at, ends_at (set for maintenances), status_page_id,
  affected_resources[{status_page_resource_id, status}], aggregate_state},
  relationships: {status_updates: {data: [{id, type: "status_update"}]}}}`;
  https://betterstack.com/docs/uptime/api/list-all-existing-status-updates-for-a-status-page-report/
  and .../create-a-new-status-update: a `status_update` is `{id, type, attributes: {message,
  published_at, published_at_timezone, notify_subscribers, status_report_id,
  affected_resources[{status_page_resource_id, status}]}}`, resource status one of
  resolved, degraded, downtime (maintenance for maintenance reports).

One trimmed third-party recording of a real `/index.json` (not used as a fixture: it was cut
down to a few resources) was read only to cross-check names. It agrees with the above and
adds what this adapter tolerates: `aggregate_state` "resolved" on finished reports,
`ends_at` null on resolved manual reports, included updates without `status_report_id`
(linked only through the report's relationships), relationship lists not in time order and
naming updates that are not included. The report's page URL,
`https://<page>/incident/<report id>`, comes from public code linking to Better Stack
reports, not from the docs.

Mapping:
* one `status_report` -> one incident (kind "maintenance" when `report_type` is
  maintenance); its updates are the included `status_update`s named by its relationships or
  carrying its `status_report_id`, oldest first. Ids are Better Stack's own.
* update status from its `affected_resources[].status`: incidents -> "resolved" when every
  one is resolved/operational, else "investigating" (Better Stack has no
  identified/monitoring stage); maintenances -> "completed" when all resolved/operational,
  else "scheduled" if published before `starts_at`, "in_progress" after. No resources: the
  previous update's status.
* report status: `aggregate_state` resolved/operational -> resolved (completed for
  maintenances); else the newest update's status (none: investigating / scheduled).
* impact: the worst state on the report and its updates: downtime -> critical (the docs:
  "service unavailable"), degraded -> minor; maintenances "maintenance"; else none.
* components: names (`public_name`) of the affected `status_page_resource`s found in
  `included`; resources not included are left out (an id is no name). Updates carry the
  names of the resources they touch.
* message: Markdown as published (HTML, if any, reduced to plain text).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..errors import ParseError
from ..models import Incident, ParseResult, Update
from .common import add_unique, cap_components, clean_text, describe, ident, json_type, parse_time
from .common import MAX_INCIDENTS, MAX_UPDATES, fallback_message

CLEAR = frozenset({"resolved", "operational"})
_IMPACT = {"downtime": "critical", "degraded": "minor"}
_ORDER = ["none", "minor", "major", "critical"]


def _attrs(obj: dict[str, Any]) -> dict[str, Any]:
    attrs = obj.get("attributes")
    return attrs if isinstance(attrs, dict) else {}


def _states(affected: Any) -> list[tuple[str, str]]:
    """[(resource id, status)] of an `affected_resources` list."""
    out: list[tuple[str, str]] = []
    if isinstance(affected, list):
        for entry in affected:
            if isinstance(entry, dict):
                state = entry.get("status")
                word = state.strip().lower() if isinstance(state, str) else ""
                out.append((ident(entry.get("status_page_resource_id")) or "", word))
    return out


def _page_root(data: dict[str, Any], base_url: str | None) -> str | None:
    attrs = _attrs(data)
    domain = attrs.get("custom_domain")
    if isinstance(domain, str) and domain.strip():
        return "https://" + domain.strip().strip("/")
    sub = attrs.get("subdomain")
    if isinstance(sub, str) and sub.strip():
        return f"https://{sub.strip()}.betteruptime.com"
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def _worse(a: str, b: str) -> str:
    return a if _ORDER.index(a) >= _ORDER.index(b) else b


def _report(
    report: dict[str, Any],
    updates_by_id: dict[str, dict[str, Any]],
    updates_by_report: dict[str, list[dict[str, Any]]],
    resource_names: dict[str, str],
    page_root: str | None,
    skipped: list[str],
) -> Incident | None:
    report_id = ident(report.get("id"))
    attrs = _attrs(report)
    if report_id is None:
        skipped.append(f"status report without an id skipped (title {str(attrs.get('title'))[:80]!r})")
        return None
    maintenance = isinstance(attrs.get("report_type"), str) and attrs["report_type"].strip().lower() == "maintenance"
    starts_at = parse_time(attrs.get("starts_at"))
    ends_at = parse_time(attrs.get("ends_at"))

    # The report's updates: named by its relationships, or pointing back at it.
    chosen: dict[str, dict[str, Any]] = {}
    relationships = report.get("relationships")
    refs = relationships.get("status_updates") if isinstance(relationships, dict) else None
    ref_data = refs.get("data") if isinstance(refs, dict) else None
    if isinstance(ref_data, list):
        for ref in ref_data:
            key = ident(ref.get("id")) if isinstance(ref, dict) else None
            if key and key in updates_by_id:
                chosen[key] = updates_by_id[key]
    for raw in updates_by_report.get(report_id, []):
        chosen.setdefault(ident(raw.get("id")) or "", raw)

    parsed: list[tuple[str, str, str, list[tuple[str, str]]]] = []
    for key, raw in chosen.items():
        u_attrs = _attrs(raw)
        published = parse_time(u_attrs.get("published_at"))
        if published is None:
            skipped.append(
                f"report {report_id}: update {key} with no readable published_at "
                f"({str(u_attrs.get('published_at'))[:40]!r}) skipped"
            )
            continue
        parsed.append((published, key, clean_text(u_attrs.get("message")), _states(u_attrs.get("affected_resources"))))
    parsed.sort(key=lambda p: (p[0], p[1]))
    if len(parsed) > MAX_UPDATES:
        skipped.append(f"report {report_id}: {len(parsed)} updates, only the newest {MAX_UPDATES} kept")
        parsed = parsed[-MAX_UPDATES:]

    report_states = _states(attrs.get("affected_resources"))
    aggregate = attrs.get("aggregate_state").strip().lower() if isinstance(attrs.get("aggregate_state"), str) else ""
    impact = "none"
    for _, state in report_states + [("", aggregate)] + [s for p in parsed for s in p[3]]:
        impact = _worse(impact, _IMPACT.get(state, "none"))
    if maintenance:
        impact = "maintenance"

    updates: list[Update] = []
    previous = "scheduled" if maintenance else "investigating"
    for published, key, text, states in parsed:
        values = [state for _, state in states]
        if not values:
            status = previous
        elif all(value in CLEAR for value in values):
            status = "completed" if maintenance else "resolved"
        elif maintenance:
            status = "scheduled" if starts_at and published < starts_at else "in_progress"
        else:
            status = "investigating"
        previous = status
        names: list[str] = []
        for resource_id, _ in states:
            add_unique(names, resource_names.get(resource_id, ""))
        updates.append(
            Update(
                update_id=key,
                status=status,
                message=text or fallback_message(status, impact),
                created_at=published,
                components=cap_components(names, f"report {report_id} update {key}", skipped),
            )
        )

    if aggregate in CLEAR:
        status = "completed" if maintenance else "resolved"
    elif updates:
        status = updates[-1].status
    else:
        status = "scheduled" if maintenance else "investigating"

    created_at = starts_at or (updates[0].created_at if updates else None)
    if created_at is None:
        skipped.append(f"report {report_id}: no readable starts_at and no updates; skipped")
        return None
    names = []
    for resource_id, _ in report_states:
        add_unique(names, resource_names.get(resource_id, ""))
    for update in updates:
        for name in update.components:
            add_unique(names, name)
    closed = status in ("resolved", "completed")
    return Incident(
        incident_id=report_id,
        title=clean_text(attrs.get("title")) or "(untitled)",
        status=status,
        impact=impact,
        kind="maintenance" if maintenance else "incident",
        url=f"{page_root}/incident/{report_id}" if page_root else None,
        created_at=created_at,
        updated_at=updates[-1].created_at if updates else None,
        resolved_at=(ends_at or (updates[-1].created_at if updates else None)) if closed else None,
        components=cap_components(names, f"report {report_id}", skipped),
        updates=tuple(updates),
    )


def parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """Better Stack /index.json -> status reports with their updates, oldest update first."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or data.get("type") != "status_page":
        raise ParseError(
            "not a Better Stack /index.json payload: expected JSON:API 'data' of type 'status_page', "
            f"got {describe(payload)}"
        )
    included = payload.get("included")
    if included is None:
        included = []
    if not isinstance(included, list):
        raise ParseError(f"Better Stack 'included' is a JSON {json_type(included)}, not a list")

    reports: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    updates_by_id: dict[str, dict[str, Any]] = {}
    updates_by_report: dict[str, list[dict[str, Any]]] = {}
    resource_names: dict[str, str] = {}
    skipped: list[str] = []
    for obj in included:
        if not isinstance(obj, dict):
            skipped.append("an included item that is not an object was skipped")
            continue
        kind = obj.get("type")
        key = ident(obj.get("id"))
        if kind == "status_report":
            if key is None:
                skipped.append(f"status report without an id skipped (title {str(_attrs(obj).get('title'))[:80]!r})")
            elif key not in reports:
                reports[key] = obj
                order.append(key)
        elif kind == "status_update" and key is not None:
            updates_by_id.setdefault(key, obj)
            owner = ident(_attrs(obj).get("status_report_id"))
            if owner:
                updates_by_report.setdefault(owner, []).append(obj)
        elif kind == "status_page_resource" and key is not None:
            name = clean_text(_attrs(obj).get("public_name"))
            if name:
                resource_names[key] = name

    # Report order: the page's own relationship list first, then any other included report.
    ranked: list[str] = []
    relationships = data.get("relationships")
    refs = relationships.get("status_reports") if isinstance(relationships, dict) else None
    ref_data = refs.get("data") if isinstance(refs, dict) else None
    if isinstance(ref_data, list):
        for ref in ref_data:
            key = ident(ref.get("id")) if isinstance(ref, dict) else None
            if key in reports and key not in ranked:
                ranked.append(key)
    ranked += [key for key in order if key not in ranked]
    if len(ranked) > MAX_INCIDENTS:
        skipped.append(f"{len(ranked)} status reports in one payload, only the first {MAX_INCIDENTS} kept")
        ranked = ranked[:MAX_INCIDENTS]

    page_root = _page_root(data, base_url)
    incidents: list[Incident] = []
    for key in ranked:
        incident = _report(reports[key], updates_by_id, updates_by_report, resource_names, page_root, skipped)
        if incident is not None:
            incidents.append(incident)
    return ParseResult(incidents=incidents, skipped=skipped)
