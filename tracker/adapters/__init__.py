"""Formats: how a provider's page is read. The one list of formats: config validation, the
catalog, its generator and the reader all derive from `FORMATS`.

A format reads a page through one or more *views* (endpoints of the same page with one id
space). Each view says which URL it polls, whether its adapter takes decoded JSON or the raw
bytes, and whether it lists only open incidents (so an incident leaving it was closed) or keeps
history. The reader (`tracker/read.py`) fetches every view, parses each with its pure adapter
and merges them by incident and update id with `Format.merge`.

Every adapter has the signature `parse(payload, *, base_url=None, now=None) -> ParseResult`.
Malformed items are skipped with a warning in `ParseResult.skipped`; a payload of the wrong
shape raises ParseError. Adapters never do I/O; a format's `history` hook (backfill) is given
a `get(url) -> payload` function to call instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ..models import Incident, ParseResult, Update
from . import aws, betterstack, feed, gcp, incidentio, instatus, slack, statuspage, statusio
from .history import Found, incidentio_history, statuspage_history

Adapter = Callable[..., ParseResult]
# get(url, *, conditional=True) -> decoded payload, or None when the page answered 304
Getter = Callable[..., Any]
# history(get, base_url, *, known, now, stop) -> batches of incidents, newest pages first
History = Callable[..., Iterator[ParseResult]]


def _join(path: str, given: tuple[str, ...] = (".json",)) -> Callable[[str], str]:
    """The URL polled: the page URL plus `path`, or the URL itself when it already names an
    endpoint (ends with one of `given`)."""

    def endpoint(url: str) -> str:
        if urlsplit(url).path.endswith(given):
            return url
        return url.rstrip("/") + path

    return endpoint


def page_root(url: str) -> str:
    """The page's root: its URL, or scheme://host when the URL names an endpoint."""
    parts = urlsplit(url)
    if parts.path.endswith(".json") or "/proxy/" in parts.path or "/api/" in parts.path:
        return f"{parts.scheme}://{parts.netloc}"
    return url.rstrip("/")


def _incidentio_summary(url: str) -> str:
    parts = urlsplit(url)
    return f"{page_root(url)}/proxy/{parts.hostname}"


def _incidentio_copy(url: str) -> str:
    return f"{page_root(url)}/api/v2/incidents.json"


def _aws(url: str) -> str:
    """AWS Health's current events, whatever page of health.aws.amazon.com is named; any other
    URL (the legacy data.json, a mirror) is used as it is."""
    parts = urlsplit(url)
    if parts.hostname == "health.aws.amazon.com" and "currentevents" not in parts.path:
        return "https://health.aws.amazon.com/public/currentevents"
    return url


def _same(url: str) -> str:
    return url


def _statuspage_open_only(url: str) -> bool:
    """summary.json, incidents/unresolved.json and the active/upcoming maintenance lists hold
    only what is open; incidents.json keeps resolved incidents."""
    path = urlsplit(url).path.rstrip("/")
    return path.endswith(("/summary.json", "/unresolved.json", "/active.json", "/upcoming.json"))


def _statuspage_history(url: str, kind: str) -> str | None:
    """For an open-only Statuspage endpoint, the same page's history view that keeps what it
    drops, closings included: `incidents.json` for incidents, `scheduled-maintenances.json`
    for maintenances (each lists its 50 most recent, resolved or not)."""
    if not _statuspage_open_only(url):
        return None
    parts = urlsplit(url)
    path = parts.path
    cut = path.find("/api/v2/")
    root = path[:cut] if cut >= 0 else ""
    name = "scheduled-maintenances.json" if kind == "maintenance" else "incidents.json"
    return f"{parts.scheme}://{parts.netloc}{root}/api/v2/{name}"


def _incidentio_history(url: str, kind: str) -> str | None:
    """incident.io's native summary drops what resolves; its Statuspage-compatible copy (one
    of the format's own views) keeps it."""
    return _incidentio_copy(url)


def _feed_open_only(url: str) -> bool:
    """Azure's status feed lists only open communications (an empty channel when healthy);
    history feeds (Statuspage history.atom, AWS, …) keep resolved ones."""
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(("status.microsoft", "status.azure.com"))


def _aws_open_only(url: str) -> bool:
    return "currentevents" in urlsplit(url).path


@dataclass(frozen=True)
class View:
    """One endpoint of a page."""

    name: str
    endpoint: Callable[[str], str]
    parse: Adapter
    raw: bool = False  # the adapter takes the body's bytes (feeds), not decoded JSON
    # Lists only open incidents (one that leaves it was closed), always or for some URLs.
    open_only: bool | Callable[[str], bool] = False
    # For an open-only view: (the page's configured URL, a kind) -> the URL of the same page's
    # view that keeps that kind's history, closings included, or None. Read when an incident leaves, so the
    # page's own closing is announced instead of an inferred one (docs/contract.md §4).
    history: Callable[[str, str], str | None] | None = None

    def lists_only_open(self, url: str) -> bool:
        return self.open_only(url) if callable(self.open_only) else self.open_only


def merge(results: list[ParseResult]) -> ParseResult:
    """Views in order of preference -> one result, merged by incident and update id.

    An incident's title, impact, kind, url and components come from the first view that lists
    it; every update id any view carries is kept, its text from the first view that has text
    (not a fallback line); status and resolved_at from the newest update across all views,
    never from the last element of a list that may be truncated."""
    if len(results) == 1:
        return results[0]
    order: list[str] = []
    found: dict[str, list[Incident]] = {}
    skipped: list[str] = []
    for result in results:
        skipped += result.skipped
        for inc in result.incidents:
            if inc.incident_id not in found:
                order.append(inc.incident_id)
            found.setdefault(inc.incident_id, []).append(inc)
    incidents = []
    for iid in order:
        versions = found[iid]
        first = versions[0]
        if len(versions) == 1:
            incidents.append(first)
            continue
        updates: dict[str, Update] = {}
        for inc in versions:
            for u in inc.updates:
                known = updates.get(u.update_id)
                if known is None:
                    updates[u.update_id] = u
                elif not known.has_text and u.has_text:  # text replaces a fallback line
                    updates[u.update_id] = known._replace(message=u.message, source=u.source, view=u.view,
                                                      components=known.components or u.components)
        ordered = tuple(sorted(updates.values(), key=lambda u: u.created_at))
        status, resolved_at = first.status, first.resolved_at
        if ordered:
            newest = ordered[-1]
            status = newest.status
            closing = [v.resolved_at for v in versions if v.resolved_at]
            resolved_at = (min(closing) if closing else newest.created_at) if status in (
                "resolved", "completed", "postmortem") else None
        incidents.append(first._replace(
            status=status, resolved_at=resolved_at, updates=ordered,
            components=first.components or next((v.components for v in versions if v.components), ()),
            updated_at=max((v.updated_at for v in versions if v.updated_at), default=first.updated_at),
            created_at=min(v.created_at for v in versions),
        ))
    return ParseResult(incidents=incidents, skipped=skipped, complete=all(r.complete for r in results),
                       capped=frozenset().union(*(r.capped for r in results)),
                       page_time=next((r.page_time for r in results if r.page_time), None))


def _copy_times(payload: Any) -> Any:
    """incident.io's Statuspage-compatible copy: an update's `display_at` is the native
    `published_at` cut to whole seconds, its `created_at` may differ; read `display_at` so
    both views give an update the same time."""
    if not isinstance(payload, dict) or not isinstance(payload.get("incidents"), list):
        return payload
    incidents = []
    for inc in payload["incidents"]:
        if isinstance(inc, dict) and isinstance(inc.get("incident_updates"), list):
            inc = {**inc, "incident_updates": [
                {**u, "created_at": u.get("display_at") or u.get("created_at")} if isinstance(u, dict) else u
                for u in inc["incident_updates"]]}
        incidents.append(inc)
    return {**payload, "incidents": incidents}


def _statuspage_parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """Statuspage's API, and the copy of it that incident.io pages serve, which says so in
    `served_by` (`format = "auto"` then asks the page whether it is incident.io's)."""
    result = statuspage.parse(payload, base_url=base_url, now=now)
    return replace(result, served_by="incidentio") if incidentio.is_compatible_copy(payload) else result


def _incidentio_copy_parse(payload: Any, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    return statuspage.parse(_copy_times(payload), base_url=base_url, now=now)


@dataclass(frozen=True)
class Format:
    name: str
    views: tuple[View, ...]
    text: str = ""  # what the message text is, for the README and `tracker catalog`
    merge: Callable[[list[ParseResult]], ParseResult] = merge
    history: History | None = None  # backfill's deeper walk, beyond what the views list
    # Seconds an incident must be missing from the open-only views (and from every history
    # view) before it is closed by inference; `closing_grace` overrides it. Why these values:
    # docs/contract.md §4.
    close_grace: float = 0.0
    # The URL `format = "auto"` asks to recognise this format (its first view parses the
    # answer), when the page's DEFAULT_FORMAT endpoint did not give that format's own payload
    probe: Callable[[str], str] | None = None

    def endpoints(self, url: str) -> list[str]:
        return [v.endpoint(url) for v in self.views]

    @property
    def parse(self) -> Adapter:
        """The first view's adapter (ADAPTERS)."""
        return self.views[0].parse


# The grace before a closing is inferred (docs/contract.md §4 says why). Where the page has a
# history view it is read first and brings the page's own closing, so the grace is reached only
# when history cannot say: it can be long enough to ride out the longest flicker recorded (an
# open incident missing from DigitalOcean's summary.json for up to 41 minutes). Where the page
# has none, the grace delays every closing, so it is shorter: a stale cached copy of minutes.
HISTORY_GRACE = 3600.0
OPEN_ONLY_GRACE = 600.0

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("statuspage", (View("incidents", _join("/api/v2/incidents.json"), _statuspage_parse,
                                   open_only=_statuspage_open_only, history=_statuspage_history),),
               text="the update body", history=statuspage_history, close_grace=HISTORY_GRACE),
        Format("incidentio", (
            View("summary", _incidentio_summary, incidentio.parse, open_only=True, history=_incidentio_history),
            View("incidents", _incidentio_copy, _incidentio_copy_parse),
        ), text="the native message_string, else the compatible copy's body", history=incidentio_history,
            probe=_incidentio_summary, close_grace=HISTORY_GRACE),
        Format("feed", (View("feed", _same, feed.parse, raw=True, open_only=_feed_open_only),),
               text="the entry's text, HTML reduced to plain text", close_grace=OPEN_ONLY_GRACE),
        Format("gcp", (View("incidents", _join("/incidents.json"), gcp.parse),), text="the update text (Markdown)"),
        Format("aws", (View("currentevents", _aws, aws.parse, open_only=_aws_open_only),),
               text="the event log message", close_grace=OPEN_ONLY_GRACE),
        Format("slack", (View("current", _join("/api/v2.0.0/current", ("/current",)), slack.parse,
                              open_only=True),), text="the note", close_grace=OPEN_ONLY_GRACE),
        Format("statusio", (View("status", _same, statusio.parse, open_only=True),), text="the incident message",
               close_grace=OPEN_ONLY_GRACE),
        Format("instatus", (View("summary", _join("/summary.json"), instatus.parse, open_only=True),),
               text="none in the public JSON: a readable line from status and impact", close_grace=OPEN_ONLY_GRACE),
        Format("betterstack", (View("index", _join("/index.json"), betterstack.parse),), text="the status update"),
    )
}
ADAPTERS: dict[str, Adapter] = {name: f.parse for name, f in FORMATS.items()}
# The platform most pages are on: `auto` reads a page as this first (that read is the poll's
# own when the payload is this format's and not a copy: incident.io pages copy its API), and
# falls back to it when no probe finds anything more specific.
DEFAULT_FORMAT = "statuspage"

# Hosts whose platform is known without asking them.
KNOWN_HOSTS = {
    "status.cloud.google.com": "gcp",
    "health.aws.amazon.com": "aws",
    "status.aws.amazon.com": "aws",
    "slack-status.com": "slack",
    "status.slack.com": "slack",
    "api.status.io": "statusio",
}
HOST_SUFFIXES = {".statuspage.io": "statuspage", ".instatus.com": "instatus",
                 ".betteruptime.com": "betterstack", ".betterstack.com": "betterstack"}


def detect_from_url(url: str) -> str | None:
    """The format a URL names by itself, or None when only asking the page can tell."""
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path.lower()
    if host in KNOWN_HOSTS:
        return KNOWN_HOSTS[host]
    for suffix, name in HOST_SUFFIXES.items():
        if host.endswith(suffix):
            return name
    if path.endswith((".atom", ".rss", ".xml")) or path.rstrip("/").endswith(("/feed", "/rss", "/history.atom")):
        return "feed"
    if "/proxy/" in path:
        return "incidentio"
    if path.endswith(".json"):
        return "statuspage"
    return None


def probe_urls(url: str) -> list[tuple[str, str]]:
    """(format, URL) pairs that `format = "auto"` asks, in order, for a URL that does not say
    its platform and whose DEFAULT_FORMAT endpoint did not read; the first that answers its
    format's payload wins, else DEFAULT_FORMAT."""
    return [(f.name, f.probe(url)) for f in FORMATS.values() if f.probe is not None]


def recognises(fmt: str, payload: Any) -> bool:
    """Whether a probe's answer is that format's payload (its first view parses it)."""
    try:
        FORMATS[fmt].views[0].parse(payload)
    except Exception:
        return False
    return True


__all__ = ["ADAPTERS", "DEFAULT_FORMAT", "FORMATS", "Format", "Found", "View", "detect_from_url", "merge",
           "page_root", "probe_urls", "recognises"]
