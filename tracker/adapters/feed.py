"""RSS 2.0 and Atom history feeds (Statuspage `history.atom`/`history.rss`, Azure, …).

Pure: the raw response body in, incidents out. Standard library only.

One feed entry (Atom `<entry>`, RSS `<item>`) is one incident:

* **Statuspage history feeds** put an incident's whole update history into one entry that
  grows with every update: HTML with one block per update, newest first,
  ``<p><small>Aug 17, 21:15 UTC</small><br><strong>Resolved</strong> - text</p>``. Such an entry
  is split into one Update per block. A block's update id is
  ``{entry id}#{sha1(block time | status word | n)[:12]}`` where n counts blocks with the same
  time and word from the OLDEST one, so a new block never changes an old block's id and the
  store sees only the new blocks as new. Editing a block's text keeps its id. Block dates carry no
  year ("Aug 17, 21:27 UTC"): the year that puts the date closest to the entry's
  ``<published>`` (else ``<updated>``) is taken, which handles a December→January crossing.
  The word "Update" is not a status: Statuspage prints it when an update kept the previous
  status (the JSON API of the same page gives that status), so such a block takes the status of
  the nearest older block ("update" only if there is none).
  The incident id is the entry id (RSS: the guid alone, as the entry's date moves while it
  grows).
* **Other entries** (Azure, generic feeds) give one update each. Update id = incident id =
  the entry id: Atom ``<id>``; RSS ``<guid>`` + "@" + the normalised pubDate, because Azure's guids
  are slugs of the title that later, unrelated incidents reuse; without a guid,
  ``"sha256:" + sha256(link, title, date)[:32]``. Such entries carry no status: they are
  "investigating" while listed (Azure's feed lists only open communications and drops an item
  when it is closed, so no "resolved" update is ever seen), "resolved" when the title says
  ``[RESOLVED]`` / "Resolved:" (AWS-style titles).

Components: Atom ``<category term>`` / RSS ``<category>``. Azure tags an item with its services
and its regions in one flat list; regions (a category with a compass word such as
"West US 2" or "Australia Central", "Public Non-Regional", "Global", "US Gov …", "US DoD …")
are left out, so components are the services ("Content Delivery Network"). If every category
looks like a region, all are kept.

Impact: feeds state none. Maintenances get "maintenance"; everything else "minor"
(something is impaired, severity not stated).

Security: feeds are untrusted XML. A document with any DOCTYPE (the only place entities can be
declared) is refused before it is parsed, so no entity expansion (billion laughs) and no
external entity can happen; the check runs on the same decoded text that is then parsed, so an
exotic encoding cannot hide it. Entry HTML is reduced to text by the reducer every adapter
shares (common.html_to_text, a one-pass tokenizer: html.parser is quadratic on broken
markup). At most MAX_ENTRIES entries and MAX_UPDATES blocks per entry are
read, the rest is skipped with a warning; messages are cut at MAX_TEXT characters.

Block times are shown in the page's time zone ("UTC" on GitHub); common abbreviations and
numeric offsets are understood, an unknown one is read as UTC with a warning.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

from .. import times
from ..errors import ParseError
from ..models import CLOSED_STATUSES, Incident, ParseResult, Update
from .common import MAINTENANCE_STATUSES, MAX_INCIDENTS, MAX_TEXT, MAX_UPDATES, clean_text, collect  # noqa: F401
from .common import one_line as _plain

MAX_ENTRIES = MAX_INCIDENTS  # an entry is an incident; MAX_UPDATES caps the blocks of one entry
IMPACT_INCIDENT = "minor"
IMPACT_MAINTENANCE = "maintenance"
OPEN_STATUS = "investigating"

# ---------------------------------------------------------------------------------------------
# Decoding and the pre-parse checks


def _decode(payload: bytes) -> str:
    """Bytes -> text the way an XML parser would: BOM, UTF-16 without BOM, declared encoding."""
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if payload.startswith(bom):
            return payload[len(bom) :].decode(codec, errors="replace")
    if payload[:2] == b"<\x00":
        return payload.decode("utf-16-le", errors="replace")
    if payload[:2] == b"\x00<":
        return payload.decode("utf-16-be", errors="replace")
    codec = "utf-8"
    declared = re.match(rb"\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']", payload)
    if declared:
        try:
            codec = codecs.lookup(declared.group(1).decode("ascii")).name
        except LookupError:
            codec = "utf-8"
    return payload.decode(codec, errors="replace")


_XML_DECL = re.compile(r"\A\s*<\?xml[^>]{0,300}\?>")
_PROLOG_NOISE = re.compile(r"\A(?:\s+|<!--.*?-->|<\?.*?\?>)*", re.DOTALL)
_HTML_START = re.compile(r"<!doctype\s+html\b|<html[\s>]", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!\s*(?:doctype|entity)", re.IGNORECASE)


def _refuse_wrong_content(text: str) -> None:
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise ParseError("expected an RSS or Atom feed, got an empty body")
    if body[0] in "{[":
        raise ParseError("expected an RSS or Atom feed, got JSON")
    head = _PROLOG_NOISE.sub("", _XML_DECL.sub("", body, count=1)[:4096], count=1)
    if _HTML_START.match(head):
        raise ParseError("expected an RSS or Atom feed, got an HTML page")
    if not head.startswith("<"):
        raise ParseError(f"expected an RSS or Atom feed, got text starting {body[:40]!r}")
    # Any DOCTYPE, anywhere (also inside CDATA: refusing that rare feed is the safe side).
    # Entities can only be declared in a DOCTYPE; without one expat expands nothing and fetches
    # nothing (xml.etree never fetches external entities anyway).
    if _DOCTYPE.search(text):
        raise ParseError("feed declares XML entities (DOCTYPE); refused")


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    """The first child called `name`, preferring the parent's own namespace (an RSS <link>
    before an <a10:link>, an Atom <title> before a <media:title>)."""
    tag = el.tag if isinstance(el.tag, str) else ""
    wanted = (tag[: tag.index("}") + 1] if tag.startswith("{") else "") + name
    first = None
    for c in el:
        if c.tag == wanted:
            return c
        if first is None and _local(c.tag) == name:
            first = c
    return first


def _text_of(el: ET.Element | None) -> str:
    return "".join(el.itertext()) if el is not None else ""


# ---------------------------------------------------------------------------------------------
# Statuspage growing entries

# One block header; the body runs to the next header. Bounded repeats keep this linear.
_BLOCK = re.compile(
    r"<p>\s*<small>(?P<date>(?:[^<]|<(?!/?small\b)){1,400}?)</small>\s*(?:<br\s*/?>\s*)?"
    r"<strong>\s*(?P<word>[^<]{1,40}?)\s*</strong>\s*(?:-|&#8211;|–|—)?",
    re.IGNORECASE,
)
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_BLOCK_DATE = re.compile(
    r"(?P<mon>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2})\s*,?\s*(?:(?P<year>\d{4})\s*-?\s*)?"
    r"(?P<h>\d{1,2}):(?P<m>\d{2})\s*(?P<tz>[A-Za-z]{1,5}|[+-]\d{2}:?\d{2})?"
)
# Zones Statuspage pages are commonly shown in (the page's own time zone).
_ZONES = {
    "utc": 0, "gmt": 0, "z": 0, "ut": 0, "wet": 0, "west": 60, "bst": 60, "cet": 60, "cest": 120,
    "eet": 120, "eest": 180, "msk": 180, "ist": 330, "sgt": 480, "hkt": 480, "awst": 480,
    "jst": 540, "kst": 540, "acst": 570, "acdt": 630, "aest": 600, "aedt": 660, "nzst": 720,
    "nzdt": 780, "hst": -600, "akst": -540, "akdt": -480, "pst": -480, "pdt": -420, "mst": -420,
    "mdt": -360, "cst": -360, "cdt": -300, "est": -300, "edt": -240, "ast": -240, "adt": -180,
    "brt": -180, "art": -180,
}


_TAG = re.compile(r"<[^<>]{0,500}>")


def _inline_text(markup: str) -> str:
    """A short inline snippet (a block's date or status word) -> one line of text."""
    return " ".join(html.unescape(_TAG.sub("", markup)).split())


def _status_word(word: str) -> str:
    return "_".join(_inline_text(word).lower().split())


def _block_time(raw: str, reference: datetime | None, warn: list[str]) -> str | None:
    """ "Aug 17, 21:15 UTC" (or "Jul 29, 2026 - 20:33 CEST") -> iso(), year from `reference`."""
    m = _BLOCK_DATE.search(raw)
    if not m or m.group("mon").lower()[:3] not in _MONTHS:
        return None
    month, day = _MONTHS[m.group("mon").lower()[:3]], int(m.group("day"))
    hour, minute = int(m.group("h")), int(m.group("m"))
    tz = (m.group("tz") or "UTC").lower()
    if tz[0] in "+-":
        digits = tz[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:])) * (1 if tz[0] == "+" else -1)
    elif tz in _ZONES:
        offset = _ZONES[tz]
    else:
        offset = 0
        if not warn:
            warn.append(f"unknown time zone {m.group('tz')!r} in update dates, read as UTC")
    zone = timezone(timedelta(minutes=offset))
    if m.group("year"):
        years = [int(m.group("year"))]
    elif reference is not None:
        years = [reference.year - 1, reference.year, reference.year + 1]
    else:
        return None
    best: datetime | None = None
    for year in years:
        try:
            candidate = datetime(year, month, day, hour, minute, tzinfo=zone)
        except ValueError:  # Feb 29 in a common year, hour 24, …
            continue
        if best is None or reference is None or abs(candidate - reference) < abs(best - reference):
            best = candidate
    return times.iso(best) if best is not None else None


def _split_blocks(
    markup: str, entry_id: str, reference: datetime | None, skipped: list[str]
) -> list[Update] | None:
    """Blocks of a Statuspage history entry, oldest first; None if the entry has no blocks."""
    heads = list(_BLOCK.finditer(markup))
    if not heads:
        return None
    if len(heads) > MAX_UPDATES:
        skipped.append(f"entry {entry_id}: {len(heads)} updates, only the newest {MAX_UPDATES} kept")
    raw_blocks = []
    for i, head in enumerate(heads[:MAX_UPDATES]):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(markup)
        raw_blocks.append((head.group("date"), head.group("word"), markup[head.end() : end]))
    warn: list[str] = []
    updates: list[Update] = []
    seen: dict[tuple[str, str], int] = {}
    last_status: str | None = None
    for raw_date, raw_word, body in reversed(raw_blocks):  # oldest first
        word = _status_word(raw_word)
        date_text = _inline_text(raw_date)
        created = _block_time(date_text, reference, warn)
        if created is None:
            skipped.append(f"entry {entry_id}: update with unreadable date {date_text[:40]!r} skipped")
            continue
        n = seen.get((created, word), 0)
        seen[(created, word)] = n + 1
        digest = hashlib.sha1(f"{created}|{word}|{n}".encode()).hexdigest()[:12]
        # "Update" = no status change: Statuspage's JSON gives the previous status.
        status = (last_status or word) if word == "update" else word
        last_status = status
        updates.append(
            Update(
                update_id=f"{entry_id}#{digest}",
                status=status,
                message=clean_text(body, markup=True),
                created_at=created,
            )
        )
    skipped.extend(f"entry {entry_id}: {w}" for w in warn)
    return updates


# ---------------------------------------------------------------------------------------------
# Entries

_COMPASS = re.compile(
    r"\b(?:north|south|east|west|central|northeast|northwest|southeast|southwest)\b", re.IGNORECASE
)
_REGION_OTHER = re.compile(r"^(?:public non-regional|non-regional|global|us ?gov\b.*|us ?dod\b.*)$", re.IGNORECASE)
_RESOLVED_TITLE = re.compile(r"\[(?:resolved|completed)\]|^\s*(?:resolved|completed)\s*[:\-–]", re.IGNORECASE)


def _is_region(name: str) -> bool:
    return bool(_COMPASS.search(name) or _REGION_OTHER.match(name))


def _components(categories: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for name in categories:
        name = _plain(name)
        if name and name not in names:
            names.append(name)
    services = [n for n in names if not _is_region(n)]
    return tuple(services or names)


def _url(href: str, base: str | None) -> str | None:
    href = href.strip()
    if not href:
        return None
    if base:
        href = urljoin(base, href)
    return href if urlsplit(href).scheme in ("http", "https") else None


def _dt(iso_text: str | None) -> datetime | None:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")) if iso_text else None


class _Entry:
    """What one Atom entry or RSS item says, before it becomes an Incident."""

    __slots__ = ("ident", "title", "link", "date", "published", "updated", "markup", "is_html", "categories")

    def __init__(self) -> None:
        self.ident = ""
        self.title = ""
        self.link = ""
        self.date: str | None = None  # iso(); the entry's own date
        self.published: str | None = None
        self.updated: str | None = None
        self.markup = ""
        self.is_html = True
        self.categories: list[str] = []


def _atom_entry(el: ET.Element) -> _Entry:
    e = _Entry()
    e.ident = _plain(_text_of(_child(el, "id")))
    title = _child(el, "title")
    e.title = (
        " ".join(clean_text(_text_of(title), markup=True).split())
        if title is not None and title.get("type") in ("html", "xhtml")
        else _plain(_text_of(title))
    )
    links = _children(el, "link")
    for link in links:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            e.link = link.get("href", "")
            break
    else:
        if links:
            e.link = links[0].get("href", "") or ""
    e.published = times.parse(_text_of(_child(el, "published")).strip())
    e.updated = times.parse(_text_of(_child(el, "updated")).strip())
    e.date = e.published or e.updated
    body = _child(el, "content")
    if body is None or not _text_of(body).strip() and not len(body):
        body = _child(el, "summary")
    if body is not None:
        kind = body.get("type", "text")
        if kind == "xhtml":
            for node in body.iter():  # our own parsed copy: drop the XHTML namespace
                node.tag = _local(node.tag) or node.tag
            e.markup = "".join(ET.tostring(c, encoding="unicode") for c in body) or _text_of(body)
        else:
            e.markup = _text_of(body)
        e.is_html = kind in ("html", "xhtml")
    e.categories = [c.get("label") or c.get("term") or "" for c in _children(el, "category")]
    return e


def _rss_item(el: ET.Element) -> _Entry:
    e = _Entry()
    e.ident = _plain(_text_of(_child(el, "guid")))
    e.title = _plain(_text_of(_child(el, "title")))
    link = _child(el, "link")
    if link is not None:
        e.link = _text_of(link).strip() or link.get("href", "")
    raw_date = _text_of(_child(el, "pubDate")) or _text_of(_child(el, "date"))  # RSS 1.0: dc:date
    e.date = e.published = times.parse(raw_date.strip())
    e.updated = times.parse(_text_of(_child(el, "updated")).strip())  # a10:updated
    encoded = _text_of(_child(el, "encoded"))  # content:encoded, the full text where given
    e.markup = encoded if encoded.strip() else _text_of(_child(el, "description"))
    e.categories = [_text_of(c) for c in _children(el, "category")]
    return e


def _incident(e: _Entry, rss: bool, base: str | None, skipped: list[str]) -> Incident | None:
    growing = e.is_html and bool(e.markup) and _BLOCK.search(e.markup) is not None
    # Identity.
    if growing:
        # One entry per incident for its whole life; its date moves as it grows (Statuspage's
        # <published> is the newest update's time), so the date is never part of the key.
        key = e.link.strip() or e.title
        incident_id = e.ident or "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    elif rss and e.ident:
        # Azure reuses guids (slugs of the title) for later, unrelated incidents.
        incident_id = f"{e.ident}@{e.date}" if e.date else e.ident
    elif e.ident:
        incident_id = e.ident
    else:
        digest = hashlib.sha256(f"{e.link.strip()}\n{e.title}\n{e.date or ''}".encode()).hexdigest()
        incident_id = f"sha256:{digest[:32]}"
    title = e.title or "(untitled)"
    url = _url(e.link, base)
    reference = _dt(e.published or e.updated)

    updates = _split_blocks(e.markup, incident_id, reference, skipped) if growing else None
    if updates is not None:
        if not updates:
            skipped.append(f"entry {incident_id}: no readable update; skipped")
            return None
        maintenance = any(u.status in MAINTENANCE_STATUSES for u in updates)
        status = updates[-1].status
        if status == "update":  # only "Update" blocks: nothing says more
            status = OPEN_STATUS
        resolved_at = None
        if status in CLOSED_STATUSES:
            closing = [u for u in updates if u.status in ("resolved", "completed")] or [updates[-1]]
            resolved_at = closing[-1].created_at
        return Incident(
            incident_id=incident_id,
            title=title,
            status=status,
            impact=IMPACT_MAINTENANCE if maintenance else IMPACT_INCIDENT,
            kind="maintenance" if maintenance else "incident",
            url=url,
            created_at=updates[0].created_at,
            updated_at=e.updated,
            resolved_at=resolved_at,
            components=_components(e.categories),
            updates=tuple(updates),
        )

    if e.date is None:
        skipped.append(f"entry {incident_id}: no readable date; skipped (title {title[:80]!r})")
        return None
    message = clean_text(e.markup, markup=None if e.is_html else False) or title
    status = "resolved" if _RESOLVED_TITLE.search(title) else OPEN_STATUS
    components = _components(e.categories)
    return Incident(
        incident_id=incident_id,
        title=title,
        status=status,
        impact=IMPACT_INCIDENT,
        kind="incident",
        url=url,
        created_at=e.date,
        updated_at=e.updated,
        resolved_at=e.date if status == "resolved" else None,
        components=components,
        updates=(
            Update(
                update_id=incident_id,
                status=status,
                message=message,
                created_at=e.date,
                components=components,
            ),
        ),
    )


# ---------------------------------------------------------------------------------------------


def parse(payload: bytes | str, *, base_url: str | None = None, now: str | None = None) -> ParseResult:
    """An RSS 2.0 / RSS 1.0 / Atom feed body -> incidents, each with its updates oldest first."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        text = _decode(bytes(payload))
    elif isinstance(payload, str):
        text = payload
    else:
        raise ParseError(f"expected the raw feed body (bytes), got {type(payload).__name__}")
    _refuse_wrong_content(text)
    try:
        # Leading blank lines before <?xml (a common server-side slip) would make expat fail.
        root = ET.fromstring(text.lstrip("\ufeff \t\r\n"))
    except ET.ParseError as e:
        raise ParseError(f"feed is not well-formed XML ({e})") from None

    name = _local(root.tag)
    if name == "feed":
        items, rss = _children(root, "entry"), False
        links = [c for c in _children(root, "link") if c.get("rel", "alternate") == "alternate"]
        feed_link = links[0].get("href") if links else None
    elif name == "rss":
        channel = _child(root, "channel")
        if channel is None:
            raise ParseError("RSS feed without a <channel>")
        items, rss = _children(channel, "item"), True
        feed_link = _text_of(_child(channel, "link")).strip() or None
    elif name == "RDF":  # RSS 1.0: items are children of the root
        items, rss = _children(root, "item"), True
        channel = _child(root, "channel")
        feed_link = _text_of(_child(channel, "link")).strip() or None if channel is not None else None
    elif name == "html":
        raise ParseError("expected an RSS or Atom feed, got an HTML page")
    else:
        raise ParseError(f"expected an RSS or Atom feed, got an XML document with root <{name[:40]}>")
    base = base_url or feed_link

    result = collect(
        items,
        lambda item, skipped: _incident(_rss_item(item) if rss else _atom_entry(item), rss, base, skipped),
        what="entry", plural="entries", container="feed", limit=MAX_ENTRIES,
    )
    return replace(result, open_only=True) if _lists_only_open(feed_link) else result


def _lists_only_open(feed_link: str | None) -> bool:
    """Azure's status feed lists only open communications (an empty channel when all is well):
    its channel links to azure.status.microsoft (or the azurewebsites.net host behind it)."""
    host = (urlsplit(feed_link).hostname or "").lower() if feed_link else ""
    return host.endswith("azure.status.microsoft") or (host.startswith("azurestatus") and
                                                        host.endswith(".azurewebsites.net"))
