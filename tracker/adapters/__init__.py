"""Formats: how a provider's page is read. One pure adapter per format (payload in, incidents
out: no I/O, no clock of its own), the URL it polls, and whether it takes decoded JSON or the
raw bytes.

Every adapter has the signature `parse(payload, *, base_url) -> ParseResult` (incidentio also
takes `now`). Malformed items are skipped with a warning in `ParseResult.skipped`; a payload of
the wrong shape raises ParseError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..models import ParseResult
from . import aws, betterstack, feed, gcp, incidentio, instatus, slack, statuspage, statusio

Adapter = Callable[..., ParseResult]


def _join(path: str, given: tuple[str, ...] = (".json",)) -> Callable[[str], str]:
    """The URL polled: the page URL plus `path`, or the URL itself when it already names an
    endpoint (ends with one of `given`)."""

    def endpoint(url: str) -> str:
        if urlsplit(url).path.endswith(given):
            return url
        return url.rstrip("/") + path

    return endpoint


def _incidentio(url: str) -> str:
    parts = urlsplit(url)
    if "/proxy/" in parts.path:
        return url
    return f"{url.rstrip('/')}/proxy/{parts.hostname}/incidents"


def _aws(url: str) -> str:
    """AWS Health's current events, whatever page of health.aws.amazon.com is named; any other
    URL (the legacy data.json, a mirror) is used as it is."""
    parts = urlsplit(url)
    if parts.hostname == "health.aws.amazon.com" and "currentevents" not in parts.path:
        return "https://health.aws.amazon.com/public/currentevents"
    return url


@dataclass(frozen=True)
class Format:
    name: str
    parse: Adapter
    endpoint: Callable[[str], str]
    raw: bool = False  # the adapter takes the body's bytes (feeds), not decoded JSON
    text: str = ""  # what the message text is, for the README and `tracker catalog`


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("statuspage", statuspage.parse, _join("/api/v2/incidents.json"),
               text="the update body"),
        Format("incidentio", incidentio.parse, _incidentio,
               text="the update's own text (the page's native JSON)"),
        Format("feed", feed.parse, lambda url: url, raw=True,
               text="the entry's text, HTML reduced to plain text"),
        Format("gcp", gcp.parse, _join("/incidents.json"), text="the update text (Markdown)"),
        Format("aws", aws.parse, _aws, text="the event log message"),
        Format("slack", slack.parse, _join("/api/v2.0.0/current", ("/current",)), text="the note"),
        Format("statusio", statusio.parse, lambda url: url, text="the incident message"),
        Format("instatus", instatus.parse, _join("/summary.json"),
               text="none in the public JSON: a readable line from status and impact"),
        Format("betterstack", betterstack.parse, _join("/index.json"), text="the status update"),
    )
}
ADAPTERS: dict[str, Adapter] = {name: f.parse for name, f in FORMATS.items()}

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


__all__ = ["ADAPTERS", "FORMATS", "Format", "detect_from_url"]
