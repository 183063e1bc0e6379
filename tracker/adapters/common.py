"""What every adapter shares: the caps, the loop over a payload's items, the one HTML-to-text
reducer, ids, times and the fallback message.

Every adapter is `parse(payload, *, base_url=None, now=None) -> ParseResult`: pure, payload in,
incidents out (an adapter that needs no clock ignores `now`). Adapters import shared code from
here, never from each other.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from .. import times
from ..models import Incident, ParseResult
from ..text import clean

MAX_INCIDENTS = 500  # per payload; more is a broken or hostile page
# Components per incident. An AWS regional outage lists ~150 services; far more is a broken
# or hostile page. Kept in payload order, the rest dropped with a warning.
MAX_COMPONENTS = 250
MAX_TEXT = 64 * 1024  # characters kept of a title or body; longer text is cut with a mark
# A real incidents.json holds 50 incidents of a few dozen updates each; far more is a broken or
# hostile page, and what is past these caps is skipped with a warning rather than stored.
MAX_UPDATES = 500  # per incident
# Statuses only scheduled maintenances use (Statuspage's words, which feeds print too).
MAINTENANCE_STATUSES = frozenset({"scheduled", "in_progress", "verifying", "completed"})

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
    # Whether every item became an incident: if not, one missing from the result may still be
    # on the page, so nothing is closed for being missing (docs/contract.md §4).
    complete = True
    if len(items) > limit:
        skipped.append(f"{len(items)} {plural} in one {container}, only the first {limit} kept")
        items = items[:limit]
        complete = False
    incidents: list[Incident] = []
    seen: set[str] = set()
    for item in items:
        incident = build(item, skipped)
        if incident is None:
            complete = False
            continue
        if incident.incident_id in seen:
            skipped.append(f"duplicate {what} id {incident.incident_id} skipped")
            continue
        seen.add(incident.incident_id)
        incidents.append(incident)
    return ParseResult(incidents=incidents, skipped=skipped, complete=complete)


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
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def clip(value: str) -> str:
    if len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + " […]"
    return value


# -- HTML -> plain text: the one reducer every adapter uses (docs/contract.md §3) ----------

# A start/end tag or an entity. "A <-> B", "x < y" and Markdown "<https://…>" are not markup.
_LOOKS_HTML = re.compile(
    r"<(?:[a-zA-Z][a-zA-Z0-9]*[\s/>]|/[a-zA-Z][a-zA-Z0-9]*\s*>|!--|!\[CDATA\[)"
    r"|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]{2,8});"
)
# Tags that start or end a paragraph (a blank line), and tags that start a line.
_BLOCK_TAGS = frozenset(
    "p div section article header footer ul ol table h1 h2 h3 h4 h5 h6 blockquote pre hr dl".split()
)
_LINE_TAGS = frozenset("tr dt dd".split())
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template"})
BULLET = "• "  # what a list item (<li>) starts with
_MAX_OPEN_LINKS = 16  # nested <a> deeper than this are read as text (keeps hostile markup linear)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_MANY_NEWLINES = re.compile(r"\n{3,}")
# <br>, <br/>, <br />, </br>: what _reduce() makes a line break; text with no other markup and
# no entity needs nothing else of it (Statuspage bodies are mostly lines joined by <br />).
_BR = re.compile(r"</?br\s*/?>", re.IGNORECASE)
# Any character text.clean() would change in multiline mode: tab, CR and the other C0/C1
# controls (escape sequences start with one), DEL, zero-width and bidi controls.
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")

# Markup tokens, matched in one left-to-right pass. html.parser is not used: it is quadratic on
# broken markup such as "<a<a<a…" (200 kB took 20 s), and page text is untrusted. A tag cannot
# contain "<", so every attempt stops at the next "<" and the pass stays linear; a "<" that
# starts no tag ("error rates < 1%") is text.
_MARKUP = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<!\[CDATA\[(?P<cdata>.*?)(?:\]\]>|\Z)"
    r"|<(?P<end>/?)(?P<tag>[A-Za-z][A-Za-z0-9:-]{0,40})(?P<attrs>[\s/][^<>]*)?>"
    r"|<[!?][^<>]*>",
    re.DOTALL,
)


def _link_address(attrs: str | None) -> str:
    m = _HREF.search(attrs or "")
    if not m:
        return ""
    return html.unescape(next(g for g in m.groups() if g is not None)).strip()


def _reduce(markup: str) -> str:
    """Markup -> text with line breaks where blocks, list items, rows and <br> were."""
    parts: list[str] = []
    skip = 0  # inside <script>/<style>/…
    links: list[tuple[str, int]] = []  # open <a>: address, where its label starts in `parts`
    pos = 0
    for m in _MARKUP.finditer(markup):
        if not skip and m.start() > pos:
            parts.append(html.unescape(markup[pos : m.start()]))
        pos = m.end()
        if m.group("cdata") is not None:
            if not skip:
                parts.append(m.group("cdata"))
            continue
        tag = m.group("tag")
        if tag is None:  # comment, declaration, processing instruction
            continue
        tag = tag.lower().rsplit(":", 1)[-1]
        closing = bool(m.group("end"))
        if tag in _SKIP_TAGS:
            skip = max(0, skip - 1) if closing else skip + (not m.group().endswith("/>"))
        elif skip:
            continue
        elif tag == "br":
            parts.append("\n")
        elif tag == "li":
            if not closing:
                parts.append("\n" + BULLET)
        elif tag in _BLOCK_TAGS:
            parts.append("\n\n")
        elif tag in _LINE_TAGS:
            if not closing:
                parts.append("\n")
        elif tag in ("td", "th"):
            if not closing:
                parts.append(" ")
        elif tag == "a":
            if not closing:
                if len(links) < _MAX_OPEN_LINKS:
                    links.append((_link_address(m.group("attrs")), len(parts)))
            elif links:
                href, start = links.pop()
                label = "".join(parts[start:]).strip()
                # The address is kept when the text does not already say it.
                if href.startswith(("http://", "https://", "mailto:")) and label and label not in (
                    href, href.removeprefix("mailto:"),
                ):
                    parts.append(f" ({href})")
    if not skip and pos < len(markup):
        parts.append(html.unescape(markup[pos:]))
    # Pages that escape twice ("&amp;nbsp;") leave an entity after one unescaping.
    return unescape("".join(parts))


def unescape(value: str) -> str:
    """Entities decoded, and only they (pages that escape twice leave "&amp;nbsp;")."""
    return _ENTITY.sub(lambda e: html.unescape(e.group()), value)


def html_to_text(value: str, *, markup: bool | None = None) -> str:
    """HTML (or plain text) -> plain text, the same way for every format.

    Text with markup: tags dropped; entities decoded (also twice-escaped ones); links kept as
    their text, plus the address when the text does not say it; paragraphs and other blocks
    as a blank line, <br>, table rows and list items as a line break, a list item starting
    with BULLET; script, style and comments dropped; runs of spaces collapsed.
    Text without markup (Markdown, plain text, "A <-> B") keeps its spacing as written.
    `markup` says which the text is; None (the default): markup if it has a tag or an entity.
    Every text: CR/CRLF -> LF, no-break spaces -> spaces, control, escape and bidi characters
    removed, trailing spaces and more than one blank line in a row removed.
    """
    # The checks below run at C speed over the whole text; the work they guard runs per line
    # or per character in Python, and most texts need none of it. (isprintable() is False for
    # every whitespace character but the space, and for every control, escape, zero-width and
    # bidi character _UNSAFE names.)
    if markup if markup is not None else _LOOKS_HTML.search(value):
        text = _BR.sub("\n", value)  # most markup on status pages is line breaks alone
        if "<" in text or "&" in text:
            text = _reduce(value)
        value = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
        printable = value.replace("\n", "").isprintable()
        if not printable:  # tabs, other whitespace, controls: runs of any whitespace, line by line
            value = "\n".join(" ".join(line.split()) for line in value.split("\n"))
        else:  # the space is the only whitespace besides line breaks: the same, at C speed
            while "  " in value:
                value = value.replace("  ", " ")
            value = value.replace(" \n", "\n").replace("\n ", "\n")
    else:
        if "\xa0" in value:
            value = value.replace("\xa0", " ")
        if "\r" in value and value.count("\r") == value.count("\r\n"):
            value = value.replace("\r\n", "\n")  # CRLF line ends only: what clean() makes of them
        printable = value.replace("\n", "").isprintable()
    if not printable and _UNSAFE.search(value):
        value = clean(value, multiline=True)
    elif " \n" in value or not printable:  # trailing spaces (or tabs); what clean() leaves of text
        value = "\n".join(line.rstrip() for line in value.split("\n"))
    if "\n\n\n" in value:
        value = _MANY_NEWLINES.sub("\n\n", value)
    return value.strip()


def clean_text(value: Any, *, markup: bool | None = None) -> str:
    """A page's text field as readable plain text ("" if absent), capped at MAX_TEXT."""
    if not isinstance(value, str):
        return ""
    return clip(html_to_text(value, markup=markup))


def one_line(value: Any) -> str:
    """A plain-text field (a title, an id, a category) as one line: entities decoded, tags
    left as written, whitespace runs as one space, capped at MAX_TEXT."""
    if not isinstance(value, str):
        return ""
    return " ".join(clean_text(unescape(value), markup=False).split())


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
