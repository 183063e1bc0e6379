"""AWS service health, both public shapes. Pure: payload in, incidents out.

1. The legacy Service Health Dashboard `https://status.aws.amazon.com/data.json` (until 2023):
   `{"archive": [...], "current": [...]}`; each entry is one event
   `{service_name, summary, date, status, details, description, service}` with `date` = epoch
   seconds *as a string*, `summary` = "[RESOLVED] Increased Error Rates" once over, and
   `description` = HTML, one `<div><span class="yellowfg"> 6:02 PM PDT</span>&nbsp;text</div>`
   per posted update. A span carries a wall-clock time in US Pacific time and, only when the
   day changes, a date ("Sep 2,  1:15 AM PDT"); the day of the first update comes from `date`
   (which is the first update's time: checked on all 86 events of the 2022 capture).

2. The AWS Health Dashboard `https://health.aws.amazon.com/public/currentevents` (since 2023):
   a top-level array of events `{arn, date, region_name, service, service_name, status,
   summary, event_log[{summary, message, status, timestamp}], impacted_services{key:
   {service_name, current, max}}, impacted_service_status_changes[...]}`. The endpoint serves
   UTF-16 with a BOM; tracker hands adapters `json.loads(raw_bytes)`, which detects and
   decodes that (tests/test_adapter_vendors.py serves the real bytes to `tracker run
   --once`). Epoch units are mixed: `date` is seconds as a string, `event_log[].timestamp`
   seconds as a number (the `impacted_service_status_changes` milliseconds are not read).

One event -> one incident; one event_log entry (or one legacy `<div>`) -> one update.

Status codes (the dashboard's legend, as public code such as a Go adapter's "AWS Health
status codes, per the dashboard's own legend" states it, and consistent with both captures):
0 = operating normally, 1 = informational, 2 = degradation, 3 = disruption. In the 2026
capture both events are open with status "3", their logs climb 1 -> 2 -> 3 as the outage
grew, and `impacted_services` recovered services read `current: "0"`. (One public script
maps "3" to resolved; the capture contradicts it.) Mapping:

* impact: the worst code seen on the event, its log entries and `impacted_services[].max`:
  1 -> minor, 2 -> major, 3 -> critical (none if nothing above 0). Same ladder as the GCP
  adapter's low/medium/high.
* incident status: "resolved" when the event status is "0", the summary starts with
  "[RESOLVED]", the newest log entry has status 0, or (legacy) the event sits in `archive`;
  otherwise "investigating". AWS publishes no investigating/identified/monitoring stage, so
  every open-incident update is "investigating" and the closing one "resolved".
* ids: incident id = the event's `arn` (currentevents) or `"<service>-<date>"` (legacy, the
  service key plus the first update's epoch, both stable for an event's lifetime). Update
  ids are the update's UTC time, "20260301T123125Z" (see `UpdateIds`); the stored key
  (provider, incident, update) therefore is arn + timestamp.
* components: `"<service name> (<region>)"` for each impacted service, the legacy service
  names' own form ("Amazon Elastic Compute Cloud (N. Virginia)"), so a components filter
  reads the same on both shapes; capped at MAX_COMPONENTS.
* text: HTML reduced to plain text (tags dropped, entities decoded, `<a>` kept as its text,
  line breaks kept).

The helpers it shares with the other vendor adapters (HTML reduction, update ids, epoch
parsing) live in adapters/common.py.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .. import times
from ..errors import ParseError
from ..models import Incident, ParseResult, Update
from .common import (  # noqa: F401 - MAX_COMPONENTS re-exported
    MAX_COMPONENTS, MAX_UPDATES, json_type, describe, ident, clean_text,
    epoch_iso, UpdateIds, cap_components, add_unique, collect, fallback_message,
)


DASHBOARD_URL = "https://health.aws.amazon.com/health/status"
LEGACY_DASHBOARD_URL = "https://status.aws.amazon.com/"

# --------------------------------------------------------------------------- AWS proper

_RESOLVED_MARK = re.compile(r"^\s*\[resolved\]\s*", re.IGNORECASE)
_IMPACTS = {1: "minor", 2: "major", 3: "critical"}


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _impact(codes: list[int | None]) -> str:
    worst = max((c for c in codes if c is not None), default=0)
    return _IMPACTS.get(min(worst, 3), "none")


def _update_status(code: int | None) -> str:
    return "resolved" if code == 0 else "investigating"


def _event(item: dict[str, Any], skipped: list[str]) -> Incident | None:
    arn = ident(item.get("arn"))
    if arn is None:
        skipped.append(f"event without an arn skipped (summary {str(item.get('summary'))[:80]!r})")
        return None
    region = clean_text(item.get("region_name"))
    summary = clean_text(item.get("summary"))
    resolved_mark = bool(_RESOLVED_MARK.match(summary))
    title = _RESOLVED_MARK.sub("", summary) or clean_text(item.get("service_name")) or "(untitled)"

    raw_log = item.get("event_log")
    if raw_log is None:
        raw_log = []
    if not isinstance(raw_log, list):
        skipped.append(f"event {arn}: 'event_log' is not a list; event skipped")
        return None
    if len(raw_log) > MAX_UPDATES:
        # Oldest first: keep the newest entries.
        skipped.append(f"event {arn}: {len(raw_log)} log entries, only the newest {MAX_UPDATES} kept")
        raw_log = raw_log[-MAX_UPDATES:]

    codes: list[int | None] = [_code(item.get("status"))]
    entries: list[tuple[str, int | None, str]] = []
    for raw in raw_log:
        if not isinstance(raw, dict):
            skipped.append(f"event {arn}: a log entry that is not an object was skipped")
            continue
        published = epoch_iso(raw.get("timestamp"))
        if published is None:
            skipped.append(
                f"event {arn}: log entry with no readable timestamp ({str(raw.get('timestamp'))[:40]!r}) skipped"
            )
            continue
        code = _code(raw.get("status"))
        codes.append(code)
        entries.append((published, code, clean_text(raw.get("message"))))
    entries.sort(key=lambda e: e[0])  # stable: same-second entries keep the log's order

    services = item.get("impacted_services")
    names: list[str] = []
    if isinstance(services, dict):
        for service in services.values():
            if not isinstance(service, dict):
                continue
            codes.append(_code(service.get("max")))
            name = clean_text(service.get("service_name"))
            if name:
                add_unique(names, f"{name} ({region})" if region else name)
    if not names:
        name = clean_text(item.get("service_name"))
        if name:
            add_unique(names, f"{name} ({region})" if region else name)
    components = cap_components(names, f"event {arn}", skipped)

    impact = _impact(codes)
    resolved = _code(item.get("status")) == 0 or resolved_mark or (bool(entries) and entries[-1][1] == 0)
    status = "resolved" if resolved else "investigating"

    ids = UpdateIds()
    updates: list[Update] = []
    for n, (published, code, message) in enumerate(entries):
        u_status = _update_status(code)
        if resolved and n == len(entries) - 1:
            u_status = "resolved"
        updates.append(
            Update(
                update_id=ids.make(published, message),
                status=u_status,
                message=message or fallback_message(u_status, impact),
                created_at=published,
            )
        )
    created_at = epoch_iso(item.get("date")) or (updates[0].created_at if updates else None)
    if created_at is None:
        skipped.append(f"event {arn}: no readable date; skipped")
        return None
    last = updates[-1].created_at if updates else None
    return Incident(
        incident_id=arn,
        title=title,
        status=status,
        impact=impact,
        kind="incident",
        url=DASHBOARD_URL,
        created_at=created_at,
        updated_at=last,
        resolved_at=last if resolved else None,
        components=components,
        updates=tuple(updates),
    )


# Legacy data.json: one <div> per update, its time in a <span>.
_DIV = re.compile(r"<div[^>]*>(.*?)</div>", re.IGNORECASE | re.DOTALL)
_SPAN_TIME = re.compile(
    r"^\s*<span[^>]*>\s*(?:(?P<mon>[A-Z][a-z]{2})\s+(?P<day>\d{1,2}),\s*)?"
    r"(?P<h>\d{1,2}):(?P<m>\d\d)\s*(?P<ampm>[AP]M)\s+(?P<zone>[A-Z]{2,4})\s*</span>",
    re.IGNORECASE,
)
_ZONES = {"PDT": -7, "PST": -8, "MDT": -6, "MST": -7, "CDT": -5, "CST": -6, "EDT": -4, "EST": -5, "UTC": 0, "GMT": 0}
_MONTHS = {m: n for n, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def _legacy_updates(description: str, start: datetime | None) -> list[tuple[str | None, str]]:
    """The legacy description's updates as (iso time or None, text), oldest first."""
    blocks = _DIV.findall(description)
    if not blocks:
        text = clean_text(description)
        return [(times.iso(start) if start else None, text)] if text else []
    out: list[tuple[str | None, str]] = []
    current_day = None  # local calendar date of the previous update
    previous: datetime | None = None
    for block in blocks:
        match = _SPAN_TIME.match(block)
        text = clean_text(block[match.end():] if match else block)
        when: datetime | None = None
        if match and start is not None and match.group("zone").upper() in _ZONES:
            tz = timezone(timedelta(hours=_ZONES[match.group("zone").upper()]))
            local_start = start.astimezone(tz)
            if current_day is None:
                current_day = local_start.date()
            hour = int(match.group("h")) % 12 + (12 if match.group("ampm").upper() == "PM" else 0)
            minute = int(match.group("m"))
            day = current_day
            explicit = False
            month = _MONTHS.get((match.group("mon") or "").lower())
            if month and match.group("day"):
                year = local_start.year + (1 if month < local_start.month else 0)
                try:
                    day = day.replace(year=year, month=month, day=int(match.group("day")))
                    explicit = True
                except ValueError:
                    day = current_day
            try:
                when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
            except ValueError:
                when = None
            if when is not None and previous is not None and not explicit and when < previous:
                try:
                    when += timedelta(days=1)  # past midnight without a date in the span
                except OverflowError:
                    when = None
            if when is not None:
                current_day = when.date()
                previous = when
        stamp = times.iso(when) if when else None
        out.append((stamp if stamp and len(stamp) == 24 else None, text))
    return out


def _legacy(item: dict[str, Any], archived: bool, skipped: list[str]) -> Incident | None:
    service = ident(item.get("service"))
    date = ident(item.get("date"))
    summary = clean_text(item.get("summary"))
    if service is None or date is None:
        skipped.append(f"entry without service/date skipped (summary {summary[:80]!r})")
        return None
    incident_id = f"{service}-{date}"
    created_at = epoch_iso(date)
    if created_at is None:
        skipped.append(f"entry {incident_id}: date {date[:40]!r} is not epoch seconds; skipped")
        return None
    start = datetime.fromisoformat(created_at[:-1] + "+00:00")
    code = _code(item.get("status"))
    impact = _impact([code])
    resolved = archived or code == 0 or bool(_RESOLVED_MARK.match(summary))
    status = "resolved" if resolved else "investigating"

    description = item.get("description") if isinstance(item.get("description"), str) else ""
    details = item.get("details") if isinstance(item.get("details"), str) else ""
    parts = _legacy_updates(description or details, start)
    if len(parts) > MAX_UPDATES:
        skipped.append(f"entry {incident_id}: {len(parts)} updates, only the newest {MAX_UPDATES} kept")
        parts = parts[-MAX_UPDATES:]
    ids = UpdateIds()
    updates: list[Update] = []
    previous = created_at
    for n, (when, text) in enumerate(parts):
        when = when or previous  # an update without a readable time sits with the one before
        previous = when
        u_status = "resolved" if resolved and n == len(parts) - 1 else "investigating"
        updates.append(
            Update(
                update_id=ids.make(when, text),
                status=u_status,
                message=text or fallback_message(u_status, impact),
                created_at=when,
            )
        )
    updates.sort(key=lambda u: u.created_at)
    names: list[str] = []
    add_unique(names, clean_text(item.get("service_name")))
    last = updates[-1].created_at if updates else None
    return Incident(
        incident_id=incident_id,
        title=_RESOLVED_MARK.sub("", summary) or "(untitled)",
        status=status,
        impact=impact,
        kind="incident",
        url=LEGACY_DASHBOARD_URL,
        created_at=created_at,
        updated_at=last,
        resolved_at=last if resolved else None,
        components=tuple(names),
        updates=tuple(updates),
    )


def parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """AWS currentevents (array) or legacy data.json (object) -> incidents, oldest update first."""
    items: list[tuple[Any, bool]] = []
    legacy = False
    if isinstance(payload, list):
        dicts = [item for item in payload if isinstance(item, dict)]
        if payload and not any("arn" in item or "event_log" in item for item in dicts):
            raise ParseError(f"not an AWS Health currentevents payload: no event has an 'arn' ({describe(payload)})")
        items = [(item, False) for item in payload]
    elif isinstance(payload, dict) and ("archive" in payload or "current" in payload):
        legacy = True
        for key in ("current", "archive"):
            value = payload.get(key, [])
            if value is None:
                value = []
            if not isinstance(value, list):
                raise ParseError(f"AWS data.json '{key}' is a JSON {json_type(value)}, not a list")
            items.extend((item, key == "archive") for item in value)
    else:
        raise ParseError(
            "not an AWS payload: expected the currentevents array or a data.json object with "
            f"'archive'/'current', got {describe(payload)}"
        )

    def build(pair: tuple[Any, bool], skipped: list[str]) -> Incident | None:
        item, archived = pair
        if not isinstance(item, dict):
            skipped.append("an event that is not an object was skipped")
            return None
        return _legacy(item, archived, skipped) if legacy else _event(item, skipped)

    return collect(items, build, what="event", plural="events")
