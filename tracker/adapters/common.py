"""What every adapter does with the list of items a payload carries."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any, TypeVar

from .. import times
from ..models import Incident, ParseResult

MAX_INCIDENTS = 500  # per payload; more is a broken or hostile page
# Components per incident. An AWS regional outage lists ~150 services; far more is a broken
# or hostile page. Kept in payload order, the rest dropped with a warning.
MAX_COMPONENTS = 250
MAX_TEXT = 64 * 1024  # characters kept of a title or body; longer text is cut with a mark
# A real incidents.json holds 50 incidents of a few dozen updates each; far more is a broken or
# hostile page, and what is past these caps is skipped with a warning rather than stored.
MAX_UPDATES = 500  # per incident

T = TypeVar("T")


def collect(
    items: Sequence[T],
    build: Callable[[T, list[str]], Incident | None],
    *,
    what: str = "incident",
    plural: str = "incidents",
    skipped: list[str] | None = None,
    container: str = "payload",
    limit: int = MAX_INCIDENTS,
) -> ParseResult:
    """Build an Incident from each item, in order: at most MAX_INCIDENTS of them, an item
    `build` returns None for skipped (with the warning it added), a repeated id skipped.

    `build(item, skipped)` appends its own warnings to `skipped`."""
    skipped = [] if skipped is None else skipped
    if len(items) > limit:
        skipped.append(f"{len(items)} {plural} in one {container}, only the first {limit} kept")
        items = items[:limit]
    incidents: list[Incident] = []
    seen: set[str] = set()
    for item in items:
        incident = build(item, skipped)
        if incident is None:
            continue
        if incident.incident_id in seen:
            skipped.append(f"duplicate {what} id {incident.incident_id} skipped")
            continue
        seen.add(incident.incident_id)
        incidents.append(incident)
    return ParseResult(incidents=incidents, skipped=skipped)


def objects_only(build: Callable[[dict[str, Any], list[str]], Incident | None], what: str = "an incident"):
    """Wrap `build` so an item that is not a JSON object is skipped with a warning."""

    def wrapped(item: Any, skipped: list[str]) -> Incident | None:
        if not isinstance(item, dict):
            skipped.append(f"{what} that is not an object was skipped")
            return None
        return build(item, skipped)

    return wrapped


def fallback_message(status: str, impact: str) -> str:
    """What `message` says when the page gives no text: "Investigating (impact: minor)"."""
    words = status.replace("_", " ").strip().capitalize() or "Update"
    return f"{words} (impact: {impact})"


# -- text, ids and times, as the vendor adapters read them ----------------------------


def json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def describe(value: Any) -> str:
    """What a payload is, for a one-line ParseError: its JSON type and a few keys."""
    if isinstance(value, dict):
        keys = ", ".join(sorted(" ".join(str(k).split())[:40] for k in value)[:8]) or "none"
        return f"a JSON object (keys: {keys})"
    if isinstance(value, list):
        first = next((item for item in value if isinstance(item, dict)), None)
        if first is not None:
            keys = ", ".join(sorted(" ".join(str(k).split())[:40] for k in first)[:8]) or "none"
            return f"a JSON array of {len(value)} items (first object's keys: {keys})"
        return f"a JSON array of {len(value)} items"
    return f"a JSON {json_type(value)}"


def ident(value: Any) -> str | None:
    """Ids are strings; some pages serve numbers. Anything else is missing."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def clip(value: str) -> str:
    if len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + " […]"
    return value


# A start/end tag or an entity. "A <-> B", "x < y" and Markdown "<https://…>" are not markup.
_LOOKS_HTML = re.compile(
    r"<(?:[a-zA-Z][a-zA-Z0-9]*[\s/>]|/[a-zA-Z][a-zA-Z0-9]*\s*>)|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]{2,8});"
)
_BLOCK_TAGS = frozenset(
    "p div ul ol li h1 h2 h3 h4 h5 h6 tr table blockquote pre section article header footer dl dt dd hr".split()
)
_MANY_NEWLINES = re.compile(r"\n{3,}")
_STRAY_LT = re.compile(r"<(?![a-zA-Z/!?][^<>]*>)")


class _Reducer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "br" or tag in _BLOCK_TAGS:
            self.out.append("\n")
            if tag == "li":
                self.out.append("• ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            href = (href or "").strip()
            if href.startswith(("http://", "https://", "mailto:")) and label and label not in (
                href,
                href.removeprefix("mailto:"),
            ):
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_to_text(value: str) -> str:
    """HTML (or plain text) -> plain text. Text with markup: tags dropped, entities decoded,
    links kept as their text (plus the address when it differs), block ends and <br> as line
    breaks, runs of spaces collapsed. Every text: CR/CRLF -> LF, no-break spaces -> spaces,
    trailing spaces and more than one blank line in a row removed. Text without markup
    (Markdown, plain text, "A <-> B") keeps everything else as written."""
    if _LOOKS_HTML.search(value):
        parser = _Reducer()
        # html.parser goes quadratic on broken markup ("<p>" then "<a<a<a…": 100 kB took 5 s),
        # and page text is untrusted: a "<" that does not open a complete tag is text.
        parser.feed(_STRAY_LT.sub("&lt;", value))
        parser.close()
        value = "".join(parser.out).replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
        lines = [" ".join(line.split()) for line in value.split("\n")]
    else:
        value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
        lines = [line.rstrip() for line in value.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def clean_text(value: Any) -> str:
    """A page's text field as readable plain text ("" if absent), capped at MAX_TEXT."""
    if not isinstance(value, str):
        return ""
    return clip(html_to_text(value))


def parse_time(value: Any) -> str | None:
    """times.parse, refusing what does not come out in the fixed-width form (years before
    1000 or after 9999 would not sort as text)."""
    stamp = times.parse(value)
    return stamp if stamp is not None and len(stamp) == 24 else None


def epoch_iso(value: Any) -> str | None:
    """Epoch seconds (int, float or digit string; milliseconds if implausibly large) -> iso()."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d{1,16}(?:\.\d+)?", text):
            return None
        number = float(text)
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        return None
    if number > 1e11:  # milliseconds
        number /= 1000.0
    try:
        stamp = times.iso(datetime.fromtimestamp(number, timezone.utc))
    except (OverflowError, OSError, ValueError):
        return None
    return stamp if len(stamp) == 24 else None


def compact_time(iso: str) -> str:
    """"2026-03-01T12:31:25.000Z" -> "20260301T123125Z" (milliseconds kept when not zero)."""
    digits = iso.replace("-", "").replace(":", "")
    if digits.endswith(".000Z"):
        return digits[:-5] + "Z"
    return digits


class UpdateIds:
    """Stable update ids for pages that give updates none: the update's UTC time
    ("20260301T123125Z"). A second update at the same instant gets "-" + 8 hex digits of the
    SHA-1 of its text, so ids stay the same from one poll to the next whatever the order."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def make(self, created_at: str, text: str) -> str:
        base = compact_time(created_at)
        candidate = base
        if candidate in self.seen:
            candidate = f"{base}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"
            n = 2
            while candidate in self.seen:
                candidate = f"{base}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}-{n}"
                n += 1
        self.seen.add(candidate)
        return candidate


def cap_components(names: list[str], where: str, skipped: list[str]) -> tuple[str, ...]:
    if len(names) > MAX_COMPONENTS:
        skipped.append(f"{where}: {len(names)} components, only the first {MAX_COMPONENTS} kept")
        names = names[:MAX_COMPONENTS]
    return tuple(names)


def add_unique(names: list[str], name: Any) -> None:
    if isinstance(name, str) and name.strip() and name.strip() not in names:
        names.append(name.strip())
