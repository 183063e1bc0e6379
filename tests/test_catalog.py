"""The built-in catalog (docs/contract.md §5): every entry of tracker/catalog.csv is checked, and the
small API over it (load, get, search)."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from collections import Counter
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tracker import catalog
from tracker.adapters import FORMATS
from tracker.catalog import Entry

ID_RULE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
STATUSIO_URL = re.compile(r"^https://api\.status\.io/1\.0/status/[0-9a-f]{24}$")
ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "tools" / "catalog-sources.csv"  # the generator's input, kept in the repo

# The merged source lists (tools/catalog-sources.csv) and the independent lists (tools/lists/).
INDEPENDENT = {p.stem for p in (ROOT / "tools" / "lists").glob("*.csv")}
SOURCE_LISTS = {"stts", "statusphere", "multi-status", "awesome-status-pages"} | INDEPENDENT

WELL_KNOWN = {
    "openai": ("incidentio", "https://status.openai.com"),
    "github": ("statuspage", "https://www.githubstatus.com"),
    "cloudflare": ("statuspage", "https://www.cloudflarestatus.com"),
    "atlassian": ("statuspage", "https://status.atlassian.com"),
    "datadog": ("statuspage", "https://status.datadoghq.com"),
    "stripe": ("feed", None),
    "slack": ("slack", "https://slack-status.com/api/v2.0.0/current"),
    "aws": ("aws", "https://health.aws.amazon.com/public/currentevents"),
    "gcp": ("gcp", "https://status.cloud.google.com/incidents.json"),
    "azure": ("feed", "https://rssfeed.azure.status.microsoft/en-us/status/feed/"),
    "gitlab": ("statusio", "https://api.status.io/1.0/status/5b36dc6502d06804c08349f7"),
}


def entry_problems(entry: Entry) -> list[str]:
    problems = []
    if not ID_RULE.match(entry.id):
        problems.append("id breaks the rule (a-z0-9 and '-', <= 64, starting with a letter or digit)")
    if entry.id.endswith("-") or "--" in entry.id:
        problems.append("id has a stray '-'")
    if not entry.name.strip() or entry.name != entry.name.strip():
        problems.append("name is empty or padded")
    parts = urlsplit(entry.url)
    if parts.scheme != "https" or not parts.hostname or " " in entry.url:
        problems.append("url is not https with a host")
    if entry.format not in FORMATS:
        problems.append(f"format {entry.format!r} has no adapter (not in tracker.adapters.FORMATS)")
    if entry.format == "statusio" and not STATUSIO_URL.match(entry.url):
        problems.append("statusio url is not https://api.status.io/1.0/status/<24 hex>")
    if entry.format != "statusio" and parts.hostname == "api.status.io":
        problems.append("status.io API url with a format other than statusio")
    if not entry.source or not set(entry.source.split(";")) & SOURCE_LISTS:
        problems.append("source names no source list")
    if not set(entry.lists) <= INDEPENDENT:
        problems.append(f"lists names an unknown list: {sorted(set(entry.lists) - INDEPENDENT)}")
    return problems


def test_every_entry_is_valid() -> None:
    problems = [f"{e.id}: {p}" for e in catalog.load() for p in entry_problems(e)]
    assert problems == []


def test_ids_and_urls_are_unique_and_sorted() -> None:
    entries = catalog.load()
    ids = [e.id for e in entries]
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert ids == sorted(ids)
    pairs = Counter((e.format, e.url) for e in entries)
    assert [p for p, n in pairs.items() if n > 1] == []


def test_size_and_evidence() -> None:
    """docs/catalog-sources.md: at least 500 entries, at least 65 % of them on a host that an
    independent list names."""
    entries = catalog.load()
    confirmed = [e for e in entries if e.lists]
    assert len(entries) >= 500 and len(confirmed) / len(entries) >= 0.65


def test_one_entry_per_provider() -> None:
    """No two entries for one provider: not one name twice, not one page twice (with or without www.)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from build_catalog import host, name_slug

    entries = catalog.load()
    names = Counter(name_slug(e.name) for e in entries)
    pages = Counter(host(e.url) + urlsplit(e.url).path.rstrip("/") for e in entries)
    assert [n for n, k in names.items() if k > 1] == [] and [p for p, k in pages.items() if k > 1] == []


# What the cross-check of issue 26 found, and what became of it (docs/catalog-sources.md).
FIXED = {
    "anthropic": "https://status.anthropic.com", "bitbucket": "https://bitbucket.status.atlassian.com",
    "discord": "https://discordstatus.com", "grafana": "https://status.grafana.com",
    "railway": "https://railway.instatus.com", "auth0": "https://auth0.statuspage.io",
    "notion": "https://www.notion-status.com", "lastpass": "https://lastpass.statuspage.io",
    "customer-io": "https://customerio.statuspage.io", "docker": "https://www.dockerstatus.com",
    "sumologic": "https://status.us1.sumologic.com", "mixpanel": "https://www.mixpanelstatus.com",
    "helpscout": "https://status.helpscout.com", "twitch": "https://status.twitch.com",
    "elastic": "https://status.elastic.co", "stoplight": "https://status.stoplight.io",
}
DROPPED = ["claude", "bitbucket-status-bitbucket-org", "discord-discordstatus-com", "grafana-labs",
           "railway-railway-instatus-com", "elastic-cloud", "fivetran", "platform-sh"]


@pytest.mark.parametrize("entry_id", sorted(FIXED))
def test_entries_found_moved_or_duplicated_are_fixed(entry_id: str) -> None:
    entry = catalog.get(entry_id)
    assert entry is not None and entry.url == FIXED[entry_id] and entry.format in ("statuspage", "instatus")


def test_entries_found_dead_or_duplicate_are_gone() -> None:
    assert [i for i in DROPPED if catalog.get(i) is not None] == []


def test_csv_is_rfc4180_with_the_documented_columns() -> None:
    raw = files("tracker").joinpath("catalog.csv").read_bytes()
    text = raw.decode("utf-8")
    assert text.startswith("id,name,url,format,source,lists\r\n")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert {len(r) for r in rows} == {6}


@pytest.mark.parametrize(("entry_id", "expected"), sorted(WELL_KNOWN.items()))
def test_well_known_providers(entry_id: str, expected: tuple[str, str | None]) -> None:
    entry = catalog.get(entry_id)
    assert entry is not None, entry_id
    fmt, url = expected
    assert entry.format == fmt
    if url is not None:
        assert entry.url == url


def test_well_known_names() -> None:
    assert catalog.get("gcp").name == "Google Cloud"  # type: ignore[union-attr]
    assert catalog.get("openai").name == "OpenAI"  # type: ignore[union-attr]
    assert catalog.get("github").name == "GitHub"  # type: ignore[union-attr]


def test_get_unknown_is_none() -> None:
    assert catalog.get("no-such-provider") is None
    assert catalog.get("") is None


def test_search_is_case_insensitive_over_id_name_and_url() -> None:
    by_name = catalog.search("GiTHuB")
    assert catalog.get("github") in by_name
    assert all(
        "github" in (e.id + e.name.casefold() + e.url.casefold()) for e in by_name
    )
    assert catalog.get("github") in catalog.search("githubstatus.com")  # url only
    assert [e.id for e in catalog.search("intercom")] == [
        "intercom-au-hosting", "intercom-eu-hosting", "intercom-us-hosting"
    ]
    assert catalog.search("no such page anywhere") == []
    assert catalog.search("") == list(catalog.load())


def test_load_is_cached_and_entries_are_frozen() -> None:
    first = catalog.load()
    assert catalog.load() is first
    assert isinstance(first, tuple) and all(isinstance(e, Entry) for e in first)
    with pytest.raises(AttributeError):
        first[0].url = "https://example.com"  # type: ignore[misc]


def test_every_format_the_catalog_may_name_has_an_adapter() -> None:
    assert catalog.FORMATS <= set(FORMATS)
    assert {e.format for e in catalog.load()} <= set(FORMATS)


def test_catalog_is_what_the_generator_writes(tmp_path: Path) -> None:
    """Catches hand edits of catalog.csv: it must be regenerated, not edited. The generator
    runs as documented, on the source list kept in the repo (never skipped)."""
    out = tmp_path / "catalog.csv"
    script = ROOT / "tools" / "build_catalog.py"
    assert SOURCES.is_file(), f"{SOURCES} is missing: the catalog cannot be rebuilt from the repo"
    subprocess.run(
        [sys.executable, str(script), "--sources", str(SOURCES), "--out", str(out)],
        check=True, capture_output=True, timeout=60,
    )
    assert out.read_bytes() == files("tracker").joinpath("catalog.csv").read_bytes()


def test_the_generator_reads_the_repos_source_list_by_default(tmp_path: Path) -> None:
    out = tmp_path / "catalog.csv"
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_catalog.py"), "--out", str(out)],
        check=True, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    with SOURCES.open(newline="", encoding="utf-8") as f:
        rows = sum(1 for _ in csv.DictReader(f))
    assert f"(from {rows} source rows)" in done.stdout
    assert out.read_bytes() == files("tracker").joinpath("catalog.csv").read_bytes()
