"""What each destination type receives for one record (docs/contract.md §7). Pure functions:
a record dict in (an `incident_update` or `incident_update_edited`, the fields of §3), a body
out. No I/O.

Text from a status page is untrusted: it is cut to each service's documented limits, Slack
mrkdwn control characters are escaped (no mentions, no fake links), Discord is told to parse no
mentions, and mail headers carry no line breaks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..text import clean
from .destinations import Destination

USER_AGENT = f"tracker/{__version__} (status page notifications)"

# Documented limits (characters unless said otherwise).
SLACK_HEADER = 150  # header block plain_text
SLACK_SECTION = 3000  # section block text
SLACK_FIELD = 2000  # each section field
SLACK_CONTEXT = 3000  # a context element's text
SLACK_FALLBACK = 4000  # top-level "text" (Slack truncates past 40,000; it is only the notification line)
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_FIELD_NAME = 256
DISCORD_FIELD_VALUE = 1024
DISCORD_FOOTER = 2048
DISCORD_AUTHOR = 256
DISCORD_TOTAL = 6000  # every text of one embed together
TEAMS_BYTES = 27 * 1024  # Teams refuses a message above about 28 KB
MAIL_SUBJECT = 200

CLOSED = {"resolved", "completed", "postmortem"}
EMOJI = {"critical": "🔴", "major": "🟠", "minor": "🟡", "none": "⚪"}
COLORS = {"critical": 0xE01E5A, "major": 0xF2711C, "minor": 0xF2C744, "none": 0x9AA5B1,
          "maintenance": 0x3B82F6, "closed": 0x2EB67D}
TEAMS_COLORS = {"critical": "Attention", "major": "Warning", "minor": "Warning", "none": "Default",
                "maintenance": "Accent", "closed": "Good"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(value: Any, limit: int) -> str:
    return clean(value if value is not None else "", limit=limit)


def _message(record: dict[str, Any], limit: int) -> str:
    return _cut(clean(record.get("message") or "", multiline=True), limit)


def tone(record: dict[str, Any]) -> str:
    """What the update looks like: "closed" (over), "maintenance", or the incident's impact."""
    if record.get("status") in CLOSED:
        return "closed"
    if record.get("kind") == "maintenance":
        return "maintenance"
    impact = record.get("impact")
    return impact if impact in EMOJI else "none"


def emoji(record: dict[str, Any]) -> str:
    t = tone(record)
    return {"closed": "✅", "maintenance": "🛠️"}.get(t) or EMOJI[t]


def notes(record: dict[str, Any]) -> list[str]:
    """The lines that set this record apart: maintenance window, inferred closing, an edit,
    backfill, a test."""
    found = []
    if record.get("kind") == "maintenance":
        window = " → ".join(_when(record[k]) for k in ("scheduled_for", "scheduled_until") if record.get(k))
        found.append("🛠️ Scheduled maintenance" + (f": {window}" if window else ""))
    if record.get("inferred"):
        found.append("ℹ️ Closed by tracker: the incident is no longer listed on the status page")
    if record.get("event") == "incident_update_edited":
        found.append("✏️ Edited: the status page changed the text of this update")
    if record.get("backfill"):
        found.append("🗄️ From history (tracker backfill)")
    if record.get("test"):
        found.append("🧪 Test message from `tracker notify test`")
    return found


def _when(iso: Any) -> str:
    text = str(iso or "")
    return text[:16].replace("T", " ") + " UTC" if len(text) >= 16 else text


def headline(record: dict[str, Any], limit: int = 300) -> str:
    """"[GitHub] investigating: Title" (and "(edited)", "(maintenance)")."""
    extra = " (edited)" if record.get("event") == "incident_update_edited" else ""
    if record.get("kind") == "maintenance":
        extra += " (maintenance)"
    return _one_line(f"[{record.get('provider', '')}] {record.get('status', '')}{extra}: "
                     f"{record.get('incident', '')}", limit)


# -- webhook --------------------------------------------------------------------------------

def header_value(text: str) -> str:
    """An HTTP header value from `text`: printable ASCII, anything else percent-encoded."""
    return quote(text, safe="".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%"))


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>` (the X-Tracker-Signature header)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook(record: dict[str, Any], dest: Destination) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"X-Tracker-Event-Id": header_value(str(record.get("event_id", ""))),
               "X-Tracker-Event": header_value(str(record.get("event", "")))}
    if dest.secret:
        headers["X-Tracker-Signature"] = signature(dest.secret, body)
    return body, headers


# -- Slack ----------------------------------------------------------------------------------

def slack_escape(text: str) -> str:
    """Slack mrkdwn's three control characters (so "<!channel>" or "<url|label>" in a page's
    text stays text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: Any, label: str) -> str:
    if isinstance(url, str) and url.startswith(("https://", "http://")) and not any(c in url for c in "<>| "):
        return f"<{url}|{label}>"
    return label


def slack(record: dict[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message with Block Kit blocks and a plain `text` fallback (what
    notifications and old clients show)."""
    provider = _one_line(record.get("provider"), 80)
    title = _one_line(record.get("incident"), 500)
    components = ", ".join(_one_line(c, 100) for c in record.get("components") or []) or "—"
    status = _one_line(record.get("status"), 60)
    impact = _one_line(record.get("impact"), 40)
    header = _cut(f"{emoji(record)} {provider} · {status}", SLACK_HEADER)
    linked = _slack_link(record.get("url"), f"*{slack_escape(title)}*")
    lines = notes(record)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(linked, SLACK_SECTION)}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*Status*\n{slack_escape(status)}", SLACK_FIELD)},
            {"type": "mrkdwn", "text": _cut(f"*Impact*\n{slack_escape(impact)}", SLACK_FIELD)},
            {"type": "mrkdwn", "text": _cut(f"*Provider*\n{slack_escape(provider)}", SLACK_FIELD)},
            {"type": "mrkdwn", "text": _cut(f"*Components*\n{slack_escape(components)}", SLACK_FIELD)},
        ]},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": _cut(slack_escape(_message(record, SLACK_SECTION)) or "—", SLACK_SECTION)}},
    ]
    if record.get("event") == "incident_update_edited" and record.get("previous_message"):
        before = slack_escape(clean(record["previous_message"], limit=SLACK_CONTEXT - 20))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(f"Before: {before}", SLACK_CONTEXT)}]})
    footer = [slack_escape(line) for line in lines]
    footer.append(f"{_when(record.get('created_at'))} · `{slack_escape(_one_line(record.get('event_id'), 300))}`")
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _cut(line, SLACK_CONTEXT)} for line in footer][:10]})
    fallback = f"{emoji(record)} {headline(record)}"
    if lines:
        fallback += " — " + "; ".join(lines)
    return {"text": _cut(slack_escape(fallback), SLACK_FALLBACK), "blocks": blocks}


# -- Discord --------------------------------------------------------------------------------

def discord(record: dict[str, Any]) -> dict[str, Any]:
    """An execute-webhook body with one embed; no mentions parsed whatever the text says."""
    provider = _one_line(record.get("provider"), 80)
    kind = "maintenance" if record.get("kind") == "maintenance" else "incident"
    author = _cut(f"{emoji(record)} {provider} · {kind}", DISCORD_AUTHOR)
    title = _one_line(record.get("incident"), DISCORD_TITLE)
    fields = [
        {"name": "Status", "value": _one_line(record.get("status"), 100) or "—", "inline": True},
        {"name": "Impact", "value": _one_line(record.get("impact"), 100) or "—", "inline": True},
        {"name": "Components", "value": _cut(", ".join(_one_line(c, 100) for c in record.get("components") or [])
                                             or "—", DISCORD_FIELD_VALUE), "inline": False},
    ]
    lines = notes(record)
    if lines:
        fields.append({"name": "Note", "value": _cut("\n".join(lines), DISCORD_FIELD_VALUE), "inline": False})
    if record.get("event") == "incident_update_edited" and record.get("previous_message"):
        fields.append({"name": "Before", "value": _one_line(record["previous_message"], DISCORD_FIELD_VALUE),
                       "inline": False})
    footer = _cut(_one_line(record.get("event_id"), DISCORD_FOOTER), DISCORD_FOOTER)
    used = len(author) + len(title) + len(footer) + sum(len(f["name"]) + len(f["value"]) for f in fields)
    description = _message(record, max(1, min(DISCORD_DESCRIPTION, DISCORD_TOTAL - used)))
    embed: dict[str, Any] = {"author": {"name": author}, "title": title, "description": description or "—",
                             "color": COLORS[tone(record)], "fields": fields, "footer": {"text": footer}}
    url = record.get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        embed["url"] = url
    created = record.get("created_at")
    if isinstance(created, str) and created:
        embed["timestamp"] = created
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}


# -- Microsoft Teams ------------------------------------------------------------------------

def teams(record: dict[str, Any]) -> dict[str, Any]:
    """A Workflows ("Post to a channel when a webhook request is received") message holding
    one Adaptive Card 1.4."""
    provider = _one_line(record.get("provider"), 80)
    lines = notes(record)
    facts = [
        {"title": "Status", "value": _one_line(record.get("status"), 100)},
        {"title": "Impact", "value": _one_line(record.get("impact"), 100)},
        {"title": "Components", "value": ", ".join(_one_line(c, 100) for c in record.get("components") or []) or "—"},
        {"title": "Published", "value": _when(record.get("created_at"))},
    ]

    def card(message: str) -> dict[str, Any]:
        body: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": f"{emoji(record)} {provider} · {_one_line(record.get('status'), 60)}",
             "weight": "Bolder", "size": "Medium", "color": TEAMS_COLORS[tone(record)], "wrap": True},
            {"type": "TextBlock", "text": _one_line(record.get("incident"), 500), "weight": "Bolder", "wrap": True},
            {"type": "FactSet", "facts": facts},
            {"type": "TextBlock", "text": message or "—", "wrap": True},
        ]
        if record.get("event") == "incident_update_edited" and record.get("previous_message"):
            body.append({"type": "TextBlock", "text": "Before: " + _one_line(record["previous_message"], 2000),
                         "wrap": True, "isSubtle": True})
        for line in lines:
            body.append({"type": "TextBlock", "text": line, "wrap": True, "isSubtle": True, "size": "Small"})
        body.append({"type": "TextBlock", "text": _one_line(record.get("event_id"), 300), "wrap": True,
                     "isSubtle": True, "size": "Small"})
        content: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                   "type": "AdaptiveCard", "version": "1.4", "body": body,
                                   "msteams": {"width": "Full"}}
        url = record.get("url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            content["actions"] = [{"type": "Action.OpenUrl", "title": "Open on the status page", "url": url}]
        return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                    "contentUrl": None, "content": content}]}

    message = _message(record, 20000)
    payload = card(message)
    while len(json.dumps(payload).encode()) > TEAMS_BYTES and len(message) > 100:
        message = _cut(message, len(message) * 3 // 4)
        payload = card(message)
    return payload


# -- mail -----------------------------------------------------------------------------------

def _msgid(seed: str, domain: str) -> str:
    return f"<{hashlib.sha256(seed.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def email(record: dict[str, Any], dest: Destination) -> EmailMessage:
    """One plain-text mail. Its Message-ID is derived from the destination and the event id,
    so a re-send after a crash is the same message to the mail system; References ties the
    updates of one incident into one thread."""
    msg = EmailMessage()
    msg["From"] = dest.from_ or ""
    msg["To"] = ", ".join(dest.to)
    msg["Subject"] = headline(record, MAIL_SUBJECT)
    created = record.get("created_at")
    try:
        when = datetime.fromisoformat(str(record.get("timestamp") or created).replace("Z", "+00:00"))
    except ValueError:
        when = datetime.now(timezone.utc)
    msg["Date"] = format_datetime(when if when.tzinfo else when.replace(tzinfo=timezone.utc))
    domain = parseaddr(dest.from_ or "")[1].rpartition("@")[2] or "tracker.invalid"
    msg["Message-ID"] = _msgid(f"{dest.name}\n{record.get('event_id')}", domain)
    thread = _msgid(f"{dest.name}\n{record.get('provider_id')}\n{record.get('incident_id')}", domain)
    msg["References"] = thread
    msg["In-Reply-To"] = thread
    msg["X-Tracker-Event-Id"] = header_value(str(record.get("event_id", "")))
    msg["Auto-Submitted"] = "auto-generated"
    components = ", ".join(_one_line(c, 100) for c in record.get("components") or []) or "—"
    kind = "maintenance" if record.get("kind") == "maintenance" else "incident"
    lines = [
        f"{_one_line(record.get('provider'), 80)} · {kind} · {_one_line(record.get('status'), 60)} · "
        f"impact: {_one_line(record.get('impact'), 40)}",
        _one_line(record.get("incident"), 500),
        f"Components: {components}",
        *notes(record),
        "",
        _message(record, 100_000) or "—",
        "",
    ]
    if record.get("event") == "incident_update_edited" and record.get("previous_message"):
        lines += ["Before the edit:", clean(record["previous_message"], multiline=True), ""]
    if record.get("url"):
        lines.append(_one_line(record["url"], 2000))
    lines.append(f"Published {_when(created)} · {_one_line(record.get('event_id'), 300)}")
    msg.set_content("\n".join(lines) + "\n", cte="quoted-printable")  # readable as it travels
    return msg


def sample(destination: str, now: datetime | None = None) -> dict[str, Any]:
    """The record `tracker notify test` sends: shaped like an incident_update, marked "test"."""
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return {
        "event": "incident_update", "level": "info", "timestamp": stamp,
        "event_id": f"tracker:test:{when.strftime('%Y%m%dT%H%M%S')}", "kind": "incident",
        "provider": "tracker", "provider_id": "tracker", "incident_id": "test",
        "update_id": when.strftime("%Y%m%dT%H%M%S"), "incident": "Test notification from tracker",
        "status": "investigating", "impact": "minor", "components": ["Notifications"],
        "message": f"If you can read this, tracker can notify this destination ({destination!r}). "
                   "Nothing is wrong; no action is needed.",
        "created_at": stamp, "url": None, "test": True,
    }


# -- alerting: PagerDuty and Opsgenie ---------------------------------------------------------

PAGERDUTY_SUMMARY = 1024  # payload.summary
PAGERDUTY_KEY = 255  # dedup_key
PAGERDUTY_SEVERITY = {"critical": "critical", "major": "error", "minor": "warning", "none": "info"}
OPSGENIE_MESSAGE = 130
OPSGENIE_ALIAS = 512
OPSGENIE_DESCRIPTION = 15000
OPSGENIE_NOTE = 25000
OPSGENIE_PRIORITY = {"critical": "P1", "major": "P2", "minor": "P3", "none": "P5"}


def alert_key(record: dict[str, Any], limit: int) -> str:
    """`<provider_id>:<incident_id>`: the one alert of an incident (PagerDuty's dedup_key,
    Opsgenie's alias). An incident id too long for the service is replaced by its SHA-256."""
    key = f"{record.get('provider_id', '')}:{record.get('incident_id', '')}"
    if len(key) <= limit:
        return key
    return f"{record.get('provider_id', '')}:{hashlib.sha256(str(record.get('incident_id', '')).encode()).hexdigest()}"


def _impact(record: dict[str, Any]) -> str:
    if record.get("kind") == "maintenance":
        return "none"
    impact = record.get("impact")
    return impact if impact in PAGERDUTY_SEVERITY else "none"


def _details(record: dict[str, Any]) -> dict[str, Any]:
    details = {"message": _message(record, 10000), "status": _one_line(record.get("status"), 60),
               "impact": _one_line(record.get("impact"), 40), "kind": record.get("kind"),
               "components": [_one_line(c, 100) for c in record.get("components") or []][:50],
               "url": record.get("url"), "published": record.get("created_at"), "event_id": record.get("event_id")}
    found = notes(record)
    if found:
        details["notes"] = found
    return details


def pagerduty(record: dict[str, Any], action: str, routing_key: str) -> dict[str, Any]:
    """An Events API v2 event: `trigger` (every update of an open incident: PagerDuty folds them
    into one alert by `dedup_key`) or `resolve`."""
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                             "dedup_key": alert_key(record, PAGERDUTY_KEY)}
    if action != "trigger":
        return event
    provider = _one_line(record.get("provider"), 80)
    summary = f"[{provider}] {_one_line(record.get('incident'), 500)} ({_one_line(record.get('status'), 60)})"
    event["payload"] = {
        "summary": _cut(summary, PAGERDUTY_SUMMARY),
        "source": provider or "tracker",
        "severity": PAGERDUTY_SEVERITY[_impact(record)],
        "timestamp": record.get("created_at"),
        "component": _one_line(", ".join(record.get("components") or []), 200) or None,
        "group": _one_line(record.get("provider_id"), 80),
        "class": record.get("kind") or "incident",
        "custom_details": _details(record),
    }
    event["payload"] = {k: v for k, v in event["payload"].items() if v not in (None, "")}
    url = record.get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        event["links"] = [{"href": url, "text": "The incident on the status page"}]
    event["client"] = "tracker"
    return event


def opsgenie(record: dict[str, Any], action: str) -> tuple[str, dict[str, Any]]:
    """(path, body) of an Alert API call: create the alert, add a note, or close it. The alert
    is addressed by its alias (`identifierType=alias`)."""
    alias = alert_key(record, OPSGENIE_ALIAS)
    where = f"/v2/alerts/{quote(alias, safe='')}"
    line = _cut(f"{_one_line(record.get('status'), 60)}: {_message(record, OPSGENIE_NOTE)}", OPSGENIE_NOTE)
    if action == "create":
        provider = _one_line(record.get("provider"), 80)
        body: dict[str, Any] = {
            "message": _cut(f"[{provider}] {_one_line(record.get('incident'), 500)}", OPSGENIE_MESSAGE),
            "alias": alias,
            "description": _cut(line, OPSGENIE_DESCRIPTION),
            "priority": OPSGENIE_PRIORITY[_impact(record)],
            "source": "tracker",
            "entity": provider,
            "tags": [t for t in ("tracker", _one_line(record.get("provider_id"), 50), record.get("kind")) if t],
            "details": {k: (", ".join(v) if isinstance(v, list) else str(v))[:8000]
                        for k, v in _details(record).items() if v not in (None, "", [])},
        }
        return "/v2/alerts", body
    if action == "note":
        return f"{where}/notes?identifierType=alias", {"note": line, "source": "tracker"}
    return f"{where}/close?identifierType=alias", {"note": line, "source": "tracker"}


def apprise_message(record: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of an Apprise notification: plain text, as every service shows it."""
    title = f"{emoji(record)} {headline(record, 250)}"
    lines = [_message(record, 4000) or "—", ""]
    components = ", ".join(_one_line(c, 100) for c in record.get("components") or [])
    if components:
        lines.append(f"Components: {components}")
    lines += notes(record)
    if record.get("url"):
        lines.append(_one_line(record["url"], 2000))
    lines.append(f"{_when(record.get('created_at'))} · {_one_line(record.get('event_id'), 300)}")
    return title, "\n".join(lines)


def http_body(record: dict[str, Any], dest: Destination) -> tuple[bytes, dict[str, str]]:
    """(body, extra headers) of the POST for an HTTP destination."""
    if dest.type == "webhook":
        return webhook(record, dest)
    render = {"slack": slack, "discord": discord, "teams": teams}[dest.type]
    payload = render(record)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), {}


__all__ = ["USER_AGENT", "alert_key", "apprise_message", "discord", "email", "headline", "http_body", "opsgenie",
           "pagerduty", "signature", "slack", "teams", "webhook"]
