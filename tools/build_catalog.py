#!/usr/bin/env python3
"""Build tracker/catalog.csv from tools/catalog-sources.csv (docs/contract.md §5).

    python tools/build_catalog.py [--sources PATH] [--out PATH]

The source list lives in the repo beside this script (docs/catalog-sources.md says where it
comes from); `--sources PATH` reads another copy instead.

Keeps the rows whose page the tracker can read, gives each one a format, a URL in the form
that format polls and a stable id, and writes them sorted by id (RFC 4180, columns
id,name,url,format,source). Deterministic: the same input always gives the same bytes, so
re-running it is safe and a diff shows exactly what changed. Prints a count per format.

Rules (the CSV's platform column, see docs/catalog-sources.md):
* statuspage, incidentio, instatus, betterstack -> that format, URL = the base page URL.
* statusio -> format statusio, URL = https://api.status.io/1.0/status/<page id>, only when
  the 24-hex page id is known: from a `.../pages/<id>/rss` feed URL, else from the stts
  table below. Without an id: format feed with the feed URL if there is one, else left out.
* gcp, aws, slack -> the vendor's JSON endpoint; azure -> feed of the Azure status RSS
  (only for the vendor's main page: see VENDOR_PAGES).
* any other platform (feed, other, sorryapp, ...) with a feed URL -> feed, URL = that feed.
  Rows with neither a readable platform nor a feed are left out.
* http:// URLs are upgraded to https:// and `;https-upgraded` is added to `source`.
* Rows that end up with the same (format, url) are merged (first-ranked name, union of sources).
* A `<x>.statuspage.io` row is dropped when a row of the same name is kept under the
  vendor's own domain (the source notes these are the same page under an old hostname).
* Hand-kept tables below, each with its evidence: WELL_KNOWN ids, STTS_STATUSIO_IDS,
  PLATFORM_FROM_FIXTURE, VENDOR_PAGES and EXCLUDE. Their notes show in `source`
  (statusio-id-from-stts, platform-from-fixture).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = ROOT / "tools" / "catalog-sources.csv"
DEFAULT_OUT = ROOT / "tracker" / "catalog.csv"

COLUMNS = ("id", "name", "url", "format", "source", "lists")
# Independent public lists of status pages (docs/catalog-sources.md "Confirmation"): one CSV
# each (name,url,platform[,answered]), its tag the file name. They confirm an entry's host, and
# some state a page's platform.
LISTS_DIR = ROOT / "tools" / "lists"
# The list whose author probed every page (2026-09): its platform is what answered, and an
# `answered` value says the page did not (DNS failure, 403, …). It states what a page is now.
PROBE = "answered-2026"
# Lists that state each entry's platform themselves (not a claim about the whole list).
TYPED_LISTS = ("instatus-out", "statuspile")
# Platform words of the lists -> the format that reads them natively (others are not evidence).
LIST_PLATFORMS = {"statuspage": "statuspage", "instatus": "instatus", "incident.io": "incidentio",
                  "incidentio": "incidentio", "betterstack": "betterstack", "betteruptime": "betterstack"}
BASE_URL_PLATFORMS = ("statuspage", "incidentio", "instatus", "betterstack")
# Preference when several rows compete for one id: native JSON formats before feeds. Every
# format of the adapter registry (the one list of formats) must have its place here.
FORMAT_RANK = {f: i for i, f in enumerate(
    ("statuspage", "incidentio", "statusio", "instatus", "betterstack", "gcp", "aws", "slack", "feed"))}
sys.path.insert(0, str(ROOT))
from tracker.adapters import FORMATS as REGISTRY  # noqa: E402

if set(FORMAT_RANK) != set(REGISTRY):
    raise SystemExit(f"build_catalog.py: FORMAT_RANK {sorted(FORMAT_RANK)} != the adapter registry {sorted(REGISTRY)}")

# The vendors' own endpoints (tests/fixtures/SOURCES.md; adapters gcp.py, aws.py, slack.py).
VENDOR_URLS = {
    "gcp": "https://status.cloud.google.com/incidents.json",
    "aws": "https://health.aws.amazon.com/public/currentevents",
    "slack": "https://slack-status.com/api/v2.0.0/current",  # status.slack.com redirects here
    "azure": "https://rssfeed.azure.status.microsoft/en-us/status/feed/",
}
# The one page each vendor endpoint stands for. Other pages the CSV files under a vendor
# platform (Google Maps Platform under status.cloud.google.com/maps-platform) are not what
# that endpoint serves: they are treated like any other row (feed if they have one).
VENDOR_PAGES = {
    "gcp": {"https://status.cloud.google.com"},
    "aws": {"https://status.aws.amazon.com", "https://health.aws.amazon.com/health/status"},
    "slack": {"https://status.slack.com"},
    "azure": {"https://status.azure.com/en-us/status", "https://azure.microsoft.com/en-us/status"},
}
STATUSIO_API = "https://api.status.io/1.0/status/{}"
STATUSIO_FEED = re.compile(r"/pages/([0-9a-f]{24})/rss$")

# status.io page ids that catalog-sources.csv dropped: the `id` of each `statusiov1` entry in
# inket/stts Resources/services.json (commit 41dead5b2bd8daf18ff5f768a3790527708fedc9). The
# four that also have a status.io feed in the CSV (Docker, GitLab, Let's Encrypt, SumoLogic)
# carry the same id there.
STTS_STATUSIO_IDS = {
    "https://status.clickup.com": "5b6e0963c662144d00913a09",
    "https://status.coreweave.com": "5e126e998f2f032e1f8f0f4b",
    "https://status.dashlane.com": "5aabcb89fccc4b04d3774443",
    "https://status.docker.com": "533c6539221ae15e3f000031",
    "https://status.gitlab.com": "5b36dc6502d06804c08349f7",
    "https://letsencrypt.status.io": "55957a99e800baa4470002da",
    "https://status.eu.onelogin.com": "54da2ea0e6bd61bf0d00002b",
    "https://status.us.onelogin.com": "538511e2ce5cb97537000144",
    "https://status.roblox.com": "59db90dbcdeb2f04dadcf16d",
    "https://status.sumologic.com": "5ea1c7ba3f2f1604b93ca38e",
}

# Platform known from a real capture in tests/fixtures (SOURCES.md) where the CSV has none:
# atlassian-incidents-2024-01-31.json is status.atlassian.com's Statuspage API (page 0f54fx204jpt).
PLATFORM_FROM_FIXTURE = {
    "https://status.atlassian.com": "statuspage",
}

# Well-known providers: base_url in the CSV -> (id, display name or None to keep the CSV's).
WELL_KNOWN = {
    "https://www.githubstatus.com": ("github", None),
    "https://status.openai.com": ("openai", None),
    "https://www.cloudflarestatus.com": ("cloudflare", None),
    "https://www.stripestatus.com": ("stripe", "Stripe"),
    "https://status.atlassian.com": ("atlassian", None),
    "https://status.slack.com": ("slack", None),
    "https://health.aws.amazon.com/health/status": ("aws", "Amazon Web Services"),
    "https://status.aws.amazon.com": ("aws", "Amazon Web Services"),
    "https://status.cloud.google.com": ("gcp", "Google Cloud"),
    "https://status.azure.com/en-us/status": ("azure", "Microsoft Azure"),
    "https://azure.microsoft.com/en-us/status": ("azure", "Microsoft Azure"),
    "https://status.datadoghq.com": ("datadog", None),
    "https://status.anthropic.com": ("anthropic", None),
    "https://www.dockerstatus.com": ("docker", None),
    "https://status.docker.com": ("docker", None),
    "https://status.heroku.com": ("heroku", "Heroku"),
}

# Rows left out on purpose although the tracker could read them: base_url -> reason.
EXCLUDE = {
    "https://sgtest1.statuspage.io": "a test page (name 'SG Test'), not a provider",
    # Duplicates: a second entry for one provider (the entry kept is named).
    "https://status.claude.com": "Anthropic's page (status.anthropic.com), kept as `anthropic`",
    "https://status.bitbucket.org": "Bitbucket's old host; its page is bitbucket.status.atlassian.com (`bitbucket`)",
    "https://discordstatus.com": "its feed; the page itself is `discord` (moved there from status.discordapp.com)",
    "https://status.grafana.com": "its feed; the page itself is `grafana` (moved there from grafanalabs.statuspage.io)",
    "https://status.railway.app": "Railway's Instatus page under its own domain; kept as `railway` at "
                                  "railway.instatus.com, the host the 2026 probe found answering",
    "https://status.fastly.com": "Fastly's old Statuspage host; its page is www.fastlystatus.com (`fastly`)",
    "https://status.contentful.com": "Contentful's other host; its Statuspage page is www.contentfulstatus.com",
    "https://status.cypress.io": "Cypress's other host; its Statuspage page is www.cypressstatus.com",
    "https://netlifystatus.com": "the same page as www.netlifystatus.com (`netlify`)",
    "https://status.shopify.com": "Shopify's other host; its Statuspage page is www.shopifystatus.com",
    # Died, or never served an API tracker reads (issue 26's cross-check; the 2026 probe agrees).
    "https://cloud-status.elastic.co": "does not resolve (2026 probe: DNS failure); `elastic` is the same provider",
    "https://status.fivetran.com": "serves no Statuspage API (2026 probe: an HTML page); no JSON or feed known",
    "https://status.platform.sh": "serves no Statuspage API (2026 probe: an HTML page); no JSON or feed known",
}

# Pages that moved, or whose API lives on another host: base_url in the CSV -> (the page's URL
# now, its platform, why). The entry keeps its id.
MOVED = {
    "https://status.auth0.com": ("https://auth0.statuspage.io", "statuspage",
                                 "the public host serves no /api/v2 (2026 probe: HTML); auth0.statuspage.io does"),
    "https://status.notion.so": ("https://www.notion-status.com", "statuspage",
                                 "moved to www.notion-status.com (status.notion.so: HTML in the 2026 probe)"),
    "https://status.lastpass.com": ("https://lastpass.statuspage.io", "statuspage",
                                    "status.lastpass.com answers 403 to /api/v2 (2026 probe: 403)"),
    "https://status.customerio.com": ("https://customerio.statuspage.io", "statuspage",
                                      "its Statuspage API is served at customerio.statuspage.io"),
    "https://status.docker.com": ("https://www.dockerstatus.com", "statuspage",
                                  "Docker left status.io for a Statuspage page at www.dockerstatus.com (2026 probe)"),
    "https://status.sumologic.com": ("https://status.us1.sumologic.com", "statuspage",
                                     "Sumo Logic left status.io for Statuspage pages per deployment (2026 probe: us1, us2)"),
    "https://status.discordapp.com": ("https://discordstatus.com", "statuspage",
                                      "Discord's page moved to discordstatus.com (2026 probe, sentry, statusbar)"),
    "https://grafanalabs.statuspage.io": ("https://status.grafana.com", "statuspage",
                                          "the same Statuspage page under Grafana's own domain (2026 probe: both)"),
    "https://status.mixpanel.com": ("https://www.mixpanelstatus.com", "statuspage",
                                    "moved to www.mixpanelstatus.com (2026 probe, sentry)"),
    "https://status.helpscout.net": ("https://status.helpscout.com", "statuspage",
                                     "moved to status.helpscout.com (2026 probe: statuspage)"),
    "https://status.twitch.tv": ("https://status.twitch.com", "statuspage",
                                 "moved to status.twitch.com (2026 probe, sentry)"),
}

ID_MAX = 64


@dataclass
class Candidate:
    """One catalog entry in the making (before ids are assigned)."""

    name: str
    url: str
    format: str
    sources: list[str]
    base_url: str
    well_known: str | None = None
    notes: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)  # independent lists naming its host

    def rank(self) -> tuple:
        """Sort key: who gets the plain id when names collide (lower is better)."""
        return (
            self.well_known is None,
            FORMAT_RANK[self.format],
            -len(self.sources),
            "stts" not in self.sources,
            urlsplit(self.base_url).hostname.endswith(".statuspage.io"),
            self.url,
        )

    @property
    def source(self) -> str:
        return ";".join(self.sources + self.notes)


def slug(text: str) -> str:
    """Lower-case ASCII slug: runs of anything but a-z0-9 become one '-'."""
    text = re.sub("['\u2019]", "", text)  # "Let's Encrypt" -> lets-encrypt
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def name_slug(name: str) -> str:
    """Slug of a provider name, without a trailing "status"/"status page" ("Heroku Status")."""
    s = slug(name)
    trimmed = re.sub(r"-(system-)?status(-page)?$", "", s)
    return trimmed or s


def url_slug(base_url: str) -> str:
    """Distinguishing slug of a page URL: its path if it has one, else its host."""
    parts = urlsplit(base_url)
    if parts.path.strip("/"):
        return slug(parts.path)
    host = parts.hostname or ""
    return slug(host.removeprefix("www."))


def clip(s: str) -> str:
    return s[:ID_MAX].rstrip("-")


def https(url: str, notes: list[str]) -> str:
    if url.startswith("http://"):
        if "https-upgraded" not in notes:
            notes.append("https-upgraded")
        return "https://" + url[len("http://"):]
    return url


def host(url: str) -> str:
    """A page's host as the lists are compared on it: lower case, without "www."."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    name = (urlsplit(url).hostname or "").lower().rstrip(".")
    return name.removeprefix("www.")


@dataclass
class Evidence:
    """What the independent lists say, by host: which lists name it, the platform one of them
    states (with the list's tag), and what the probe says of a page that did not answer."""

    names: dict[str, set[str]] = field(default_factory=dict)
    platform: dict[str, tuple[str, str]] = field(default_factory=dict)
    dead: dict[str, str] = field(default_factory=dict)
    rows: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # host -> tag -> (name, url)

    @classmethod
    def read(cls, folder: Path) -> "Evidence":
        found = cls()
        paths = sorted(folder.glob("*.csv")) if folder.is_dir() else []
        for path in paths:
            tag = path.stem
            with path.open(newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    h = host(row.get("url") or "")
                    if not h:
                        continue
                    found.names.setdefault(h, set()).add(tag)
                    found.rows.setdefault(h, {}).setdefault(tag, ((row.get("name") or "").strip(), row["url"].strip()))
                    said = LIST_PLATFORMS.get((row.get("platform") or "").strip().lower())
                    if tag == PROBE and (row.get("answered") or "").strip():
                        found.dead[h] = row["answered"].strip()
                    elif said and (tag == PROBE or tag in TYPED_LISTS):
                        # The probe (what answered in 2026) outranks a list's older word.
                        if h not in found.platform or tag == PROBE:
                            found.platform[h] = (said, tag)
        return found

    def naming(self, *urls: str) -> list[str]:
        tags: set[str] = set()
        for url in urls:
            tags |= self.names.get(host(url), set())
        return sorted(tags)


EVIDENCE = Evidence()


def candidate(row: dict[str, str], evidence: Evidence = EVIDENCE) -> Candidate | None:
    """The entry a CSV row gives, or None when the tracker cannot read that page."""
    base = row["base_url"].strip()
    feed = row["feed_url"].strip()
    platform = row["platform"].strip()
    sources = [s for s in row["sources"].split(";") if s]
    if base in EXCLUDE:
        return None
    notes: list[str] = []
    if base in MOVED:
        base, platform, _why = MOVED[base]
        notes.append("moved")
    elif platform not in BASE_URL_PLATFORMS and host(base) in evidence.platform and host(base) not in evidence.dead:
        # A page the sources could not name the platform of (or knew only by its feed) that a
        # list states runs on a platform tracker reads natively: read it so. A page known only
        # to one source must be named by a second list too.
        said, tag = evidence.platform[host(base)]
        if feed or len(set(sources) | set(evidence.naming(base))) >= 2:
            platform = said
            notes.append(f"platform-from-{tag}")
    if base in PLATFORM_FROM_FIXTURE and platform == "other":
        platform = PLATFORM_FROM_FIXTURE[base]
        notes.append("platform-from-fixture")
    known = WELL_KNOWN.get(base)
    name = (known[1] if known and known[1] else row["name"]).strip()

    def make(url: str, fmt: str) -> Candidate:
        if host(base) in evidence.dead:
            notes.append("probe-" + re.sub(r"[^a-z0-9]+", "-", evidence.dead[host(base)].lower()).strip("-")[:40])
        return Candidate(name, https(url, notes), fmt, sources, base, known[0] if known else None, notes,
                         evidence.naming(base, url))

    if platform in BASE_URL_PLATFORMS:
        return make(base, platform)
    if platform in VENDOR_URLS and base in VENDOR_PAGES[platform]:
        return make(VENDOR_URLS[platform], "feed" if platform == "azure" else platform)
    if platform == "statusio":
        m = STATUSIO_FEED.search(urlsplit(feed).path) if feed else None
        page_id = m.group(1) if m else STTS_STATUSIO_IDS.get(base)
        if page_id:
            if not m:
                notes.append("statusio-id-from-stts")
            return make(STATUSIO_API.format(page_id), "statusio")
    if feed:
        return make(feed, "feed")
    return None


def from_lists(rows: list[dict[str, str]], evidence: Evidence) -> list[dict[str, str]]:
    """Source rows for pages the independent lists name and the merged sources do not: those
    that two lists name and one says runs on a platform tracker reads (and the probe did not
    find dead)."""
    known = {host(r["base_url"]) for r in rows} | {host(r["feed_url"]) for r in rows if r["feed_url"]}
    known |= {host(v[0]) for v in MOVED.values()}
    found = []
    for h in sorted(evidence.platform):
        tags = evidence.names.get(h, set())
        if h in known or h in evidence.dead or len(tags) < 2:
            continue
        said, tag = evidence.platform[h]
        order = sorted(tags, key=lambda t: (t == PROBE, t))  # a hand-written list's name first
        name, url = evidence.rows[h][order[0]]
        parts = urlsplit(url if "://" in url else "https://" + url)
        base = f"https://{(parts.hostname or '').lower()}" + parts.path.rstrip("/")
        found.append({"name": name, "base_url": base, "platform": said, "feed_url": "",
                      "sources": ";".join(sorted(tags))})
    return found


def build(rows: list[dict[str, str]], evidence: Evidence | None = None) -> tuple[list[dict[str, str]], list[str]]:
    """Catalog rows sorted by id, and a log of what was merged or dropped."""
    evidence = evidence or EVIDENCE
    log: list[str] = []
    merged: dict[tuple[str, str], Candidate] = {}
    rows = rows + from_lists(rows, evidence)
    for row in rows:
        c = candidate(row, evidence)
        if c is None:
            continue
        key = (c.format, c.url)
        other = merged.get(key)
        if other is None:
            merged[key] = c
            continue
        first, second = sorted((other, c), key=Candidate.rank)
        first.sources = first.sources + [s for s in second.sources if s not in first.sources]
        first.notes = first.notes + [n for n in second.notes if n not in first.notes]
        first.well_known = first.well_known or second.well_known
        first.lists = sorted(set(first.lists) | set(second.lists))
        merged[key] = first
        log.append(f"merged {second.name!r} {second.base_url} into {first.name!r} {first.base_url} (same {c.format} URL)")

    cands = sorted(merged.values(), key=Candidate.rank)
    own_domain = {name_slug(c.name) for c in cands if not urlsplit(c.base_url).hostname.endswith(".statuspage.io")}
    kept = []
    for c in cands:
        if urlsplit(c.base_url).hostname.endswith(".statuspage.io") and name_slug(c.name) in own_domain:
            log.append(f"dropped {c.name!r} {c.base_url}: same page as the vendor-domain row of that name")
            continue
        kept.append(c)

    taken: set[str] = {c.well_known for c in kept if c.well_known}
    ids: dict[int, str] = {}
    for c in kept:  # already in rank order, so the best row of a name gets the plain id
        if c.well_known:
            ids[id(c)] = c.well_known
            continue
        base = clip(name_slug(c.name) or url_slug(c.base_url) or "page")
        new = base
        if new in taken:
            new = clip(f"{base}-{url_slug(c.base_url)}")
        n = 2
        while new in taken:
            new = clip(f"{base}-{n}")
            n += 1
        taken.add(new)
        ids[id(c)] = new

    out = [
        {"id": ids[id(c)], "name": c.name, "url": c.url, "format": c.format, "source": c.source,
         "lists": ";".join(c.lists)}
        for c in kept
    ]
    out.sort(key=lambda r: r["id"])
    dupes = [k for k, v in Counter(r["id"] for r in out).items() if v > 1]
    if dupes:
        raise SystemExit(f"duplicate ids: {dupes}")
    # One entry per provider: two entries of one name, or of one page (www. or not), are a
    # duplicate to resolve in EXCLUDE or MOVED, with the reason.
    for what, key in (("name", lambda r: name_slug(r["name"])),
                      ("page", lambda r: host(r["url"]) + urlsplit(r["url"]).path.rstrip("/"))):
        twice = {k: [r["id"] for r in out if key(r) == k] for k, n in Counter(map(key, out)).items() if n > 1}
        if twice:
            raise SystemExit(f"one provider, several entries (same {what}): {twice}")
    return out, log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES,
                        help=f"the merged source list (default: {DEFAULT_SOURCES.relative_to(ROOT)})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the catalog (default: {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--lists", type=Path, default=LISTS_DIR,
                        help=f"the independent lists (default: {LISTS_DIR.relative_to(ROOT)})")
    parser.add_argument("-v", "--verbose", action="store_true", help="list merged and dropped rows")
    args = parser.parse_args(argv)

    with args.sources.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    evidence = Evidence.read(args.lists)
    entries, log = build(rows, evidence)
    with args.out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(entries)

    if args.verbose:
        for line in log:
            print(line)
    counts = Counter(e["format"] for e in entries)
    for fmt in sorted(counts):
        one = sum(1 for e in entries if e["format"] == fmt and e["lists"])
        two = sum(1 for e in entries if e["format"] == fmt and len(e["lists"].split(";")) >= 2)
        print(f"{fmt:12} {counts[fmt]:5}   named by 1+ lists {one:4}, by 2+ {two:4}")
    one = sum(1 for e in entries if e["lists"])
    two = sum(1 for e in entries if len([t for t in e["lists"].split(";") if t]) >= 2)
    print(f"{'total':12} {len(entries):5}   named by 1+ lists {one:4} ({one / len(entries):.0%}), by 2+ {two:4} "
          f"({two / len(entries):.0%}) (from {len(rows)} source rows) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
