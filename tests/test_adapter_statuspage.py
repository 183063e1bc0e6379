"""The Statuspage adapter on every real capture in tests/fixtures/ (see SOURCES.md).

Expected numbers are either counted here with plain `json` or hard-coded after being counted
the same way (and cross-checked against the table in SOURCES.md). Malformed payloads are
never invented: each is a real capture with one field deleted or altered.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tracker import times
from tracker.adapters import statuspage
from tracker.adapters.common import html_to_text
from tracker.adapters.statuspage import parse
from tracker.errors import ParseError, TrackerError
from tracker.models import Incident, ParseResult, Update

FIXTURES = Path(__file__).parent / "fixtures"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")

# file -> (incidents + maintenances, updates, maintenances, open items), verified by hand with
# plain json and against SOURCES.md.
STATUSPAGE = {
    "github-incidents-2026-07-31.json": (50, 287, 0, 0),
    "dropbox-incidents-2024-01-03.json": (50, 121, 0, 0),
    "atlassian-incidents-2024-01-31.json": (25, 80, 0, 0),
    "hyper-incidents-2023-04-10.json": (8, 25, 0, 0),
    "openai-incidents-2025-11-15.json": (25, 82, 0, 1),
    "openai-summary-2025-11-14.json": (1, 1, 0, 1),
    "github-incidents-unresolved-2026-04-17.json": (1, 4, 0, 1),
    "github-incident-f0mhbz9xn497.json": (1, 30, 0, 0),
    "github-summary-2025-05-30T1554Z.json": (2, 5, 1, 2),
    "github-summary-2026-07-31.json": (0, 0, 0, 0),
    "github-summary-2026-08-17T1348Z.json": (1, 6, 0, 1),
    "github-summary-2026-08-17T1503Z.json": (1, 17, 0, 1),
    "github-summary-2026-08-17T2110Z.json": (1, 35, 0, 1),
    "github-summary-2026-08-17T2142Z.json": (0, 0, 0, 0),
    "cloudflare-summary-2025-11-18T1444Z.json": (55, 80, 53, 55),
    "digitalocean-summary-2021-02-02T2216Z.json": (1, 1, 0, 1),
    "digitalocean-summary-2021-02-02T2241Z.json": (0, 0, 0, 0),
    "digitalocean-summary-2021-02-02T2257Z.json": (1, 1, 0, 1),
    "digitalocean-summary-2021-02-02T2318Z.json": (1, 2, 0, 1),
    "digitalocean-summary-2021-02-03T0127Z.json": (1, 1, 0, 1),
}

# Real JSON captures of other APIs: not Statuspage, so parse() must refuse them.
NOT_STATUSPAGE = [
    # archives of OpenAI's compatible copy (items wrapping the vendor's incident objects); the
    # payloads rebuilt from them are read below (test_openai_copy_2026_carries_every_text)
    "openai-compat-incidents-weekly-2026-W30.json",
    "openai-compat-incidents-weekly-2026-W31.json",
    "openai-compat-incidents-weekly-2026-W32.json",
    "gcp-incidents-2022-07-03.json",
    "aws-status-data-2022-07-03.json",
    "aws-health-currentevents-2026-07-02.utf16be.json",
    "slack-status-current-2021-07-30T0655Z.json",
    "slack-status-current-2022-02-22T1809Z.json",
    "slack-status-current-2022-12-14T1847Z.json",
    "slack-status-current-2024-02-27T1725Z.json",
    "slack-status-current-2026-09-01.json",
    "instatus-demo-summary.json",
    "gcore-instatus-summary-2026-09-07.json",
    "gitlab-statusio-status-2026-07-01.json",
    "groq-incidentio-proxy-2026-10-06.json",
    "openai-incidentio-proxy-2026-10-06.json",
]

# Real captures that are not JSON at all (feeds and HTML pages).
NOT_JSON = [
    "azure-status-feed-2022-09-07.xml",
    "azure-status-feed-2026-07-23.xml",
    "azure-status-feed-empty-2026-09-25.xml",
    "github-history-2023-05-10.atom",
    "github-history-2026-08-18.atom",
    "linear-incidentio-page-2026-03-17T0415Z.html",
    "openai-incidentio-page-2026-03-17T1618Z.html",
]

CLOSED = {"resolved", "completed", "postmortem"}


@functools.lru_cache(maxsize=None)
def _cached(name: str) -> Any:
    # json.loads on bytes detects UTF-8/16/32 itself (the AWS capture is UTF-16BE with a BOM).
    return json.loads((FIXTURES / name).read_bytes())


def load(name: str) -> Any:
    """A fresh copy of a fixture, free for a test to alter."""
    return copy.deepcopy(_cached(name))


def raw_items(payload: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """(item, is_from_scheduled_maintenances) as the payload lists them."""
    items = [(payload["incident"], False)] if isinstance(payload.get("incident"), dict) else []
    items += [(i, False) for i in payload.get("incidents", [])]
    items += [(m, True) for m in payload.get("scheduled_maintenances", [])]
    return items


def same_instant(normalised: str, original: str) -> bool:
    return datetime.fromisoformat(normalised) == datetime.fromisoformat(original)


def by_id(result: ParseResult) -> dict[str, Incident]:
    return {i.incident_id: i for i in result.incidents}


# --------------------------------------------------------------------------------------------
# Every fixture is accounted for


def test_every_fixture_is_covered():
    on_disk = {p.name for p in FIXTURES.iterdir()
               if p.is_file() and p.name != "SOURCES.md" and not p.name.startswith(".")}
    covered = set(STATUSPAGE) | set(NOT_STATUSPAGE) | set(NOT_JSON)
    assert on_disk == covered


@pytest.mark.parametrize("week, incidents, updates", [("W30", 7, 31), ("W31", 6, 18), ("W32", 4, 13)])
def test_openai_copy_2026_carries_every_text(week, incidents, updates):
    """The copy as rebuilt from the weekly archives: every update has its own text (none is a
    fallback line), the final one of each incident is `resolved`."""
    raws = [item["raw"] for item in load(f"openai-compat-incidents-weekly-2026-{week}.json")]
    result = parse({"page": load("openai-incidents-2025-11-15.json")["page"], "incidents": raws})
    assert (len(result.incidents), sum(len(i.updates) for i in result.incidents)) == (incidents, updates)
    assert result.skipped == []
    for inc in result.incidents:
        assert all(u.source and u.has_text and u.message != statuspage.fallback_message(u.status, inc.impact)
                   for u in inc.updates)
        assert inc.updates[-1].status == "resolved" and inc.status == "resolved"


# --------------------------------------------------------------------------------------------
# Invariants on every Statuspage capture


@pytest.mark.parametrize("name", sorted(STATUSPAGE))
def test_counts(name):
    payload = load(name)
    items = raw_items(payload)
    n_items, n_updates, n_maint, n_open = STATUSPAGE[name]
    # counted independently with plain json ...
    assert len(items) == n_items
    assert sum(len(i.get("incident_updates") or []) for i, _ in items) == n_updates
    # ... and what the adapter returns
    result = parse(payload)
    assert isinstance(result, ParseResult)
    assert result.skipped == []
    assert len(result.incidents) == n_items
    assert sum(len(i.updates) for i in result.incidents) == n_updates
    assert sum(i.kind == "maintenance" for i in result.incidents) == n_maint
    assert sum(i.kind == "incident" for i in result.incidents) == n_items - n_maint
    assert sum(i.is_open for i in result.incidents) == n_open


@pytest.mark.parametrize("name", sorted(STATUSPAGE))
def test_fields_follow_the_payload(name):
    payload = load(name)
    page_url = payload["page"]["url"].rstrip("/")
    result = parse(payload)
    assert [i.incident_id for i in result.incidents] == [i["id"] for i, _ in raw_items(payload)]
    for (raw, from_maintenances), inc in zip(raw_items(payload), result.incidents):
        assert isinstance(inc, Incident)
        assert inc.title == raw["name"].strip()
        assert inc.status == raw["status"]
        assert inc.impact == raw["impact"]
        assert inc.kind == ("maintenance" if from_maintenances else "incident")
        assert inc.url == f"{page_url}/incidents/{raw['id']}"
        assert inc.is_open == (raw["status"] not in CLOSED)
        assert ISO_UTC.match(inc.created_at) and same_instant(inc.created_at, raw["created_at"])
        assert inc.updated_at is not None and same_instant(inc.updated_at, raw["updated_at"])
        if raw.get("resolved_at"):
            assert same_instant(inc.resolved_at, raw["resolved_at"])
        else:
            assert inc.resolved_at is None
        assert inc.components == tuple(c["name"] for c in raw.get("components") or [])

        raw_updates = {u["id"]: u for u in raw["incident_updates"]}
        assert sorted(u.update_id for u in inc.updates) == sorted(raw_updates)
        for u in inc.updates:
            assert isinstance(u, Update)
            r = raw_updates[u.update_id]
            assert u.status == r["status"]
            body = r["body"].strip()
            expected = html_to_text(body, markup=statuspage._is_html(body)) or f"{r['status'].replace('_', ' ').capitalize()} (impact: {raw['impact']})"
            assert u.message == expected
            assert u.source == body  # the page's own text, for telling edits
            assert u.components == tuple(c["name"] for c in r.get("affected_components") or [])


@pytest.mark.parametrize("name", sorted(STATUSPAGE))
def test_update_created_at_is_normalised_utc(name):
    payload = load(name)
    raw_created = {u["id"]: u["created_at"] for i, _ in raw_items(payload) for u in i["incident_updates"]}
    for inc in parse(payload).incidents:
        for u in inc.updates:
            assert ISO_UTC.match(u.created_at), u.created_at
            assert same_instant(u.created_at, raw_created[u.update_id])


@pytest.mark.parametrize("name", sorted(STATUSPAGE))
def test_updates_oldest_first(name):
    for inc in parse(load(name)).incidents:
        stamps = [u.created_at for u in inc.updates]
        assert stamps == sorted(stamps)


@pytest.mark.parametrize("name", sorted(STATUSPAGE))
def test_pure_same_result_twice_and_input_untouched(name):
    payload = load(name)
    before = copy.deepcopy(payload)
    first = parse(payload)
    second = parse(payload)
    assert first == second
    assert payload == before


# --------------------------------------------------------------------------------------------
# Per-capture behaviour


def test_github_incidents():
    payload = load("github-incidents-2026-07-31.json")
    result = parse(payload)
    assert len(result.incidents) == 50
    assert sum(len(i.updates) for i in result.incidents) == 287
    assert {i.kind for i in result.incidents} == {"incident"}
    assert {i.status for i in result.incidents} == {"resolved"}
    assert not any(i.is_open for i in result.incidents)
    assert Counter(i.impact for i in result.incidents) == {"minor": 26, "critical": 11, "major": 10, "none": 3}
    for inc in result.incidents:
        assert re.fullmatch(r"https://www\.githubstatus\.com/incidents/[a-z0-9]{12}", inc.url)
        assert inc.url == f"https://www.githubstatus.com/incidents/{inc.incident_id}"
    assert sum(len(i.updates) >= 2 for i in result.incidents) == 47
    assert max(len(i.updates) for i in result.incidents) == 18
    updates = [u for i in result.incidents for u in i.updates]
    assert {u.status for u in updates} == {"investigating", "monitoring", "resolved"}
    # HTML reduced to plain text like every format's; the source keeps it as the page wrote it
    assert sum("<br />" in u.source for u in updates) == 61
    assert not [u for u in updates if "<br" in u.message]
    assert sum(any(ord(c) > 127 for c in u.source) for u in updates) == 23
    assert sum(any(ord(c) > 127 for c in u.message) for u in updates) == 11  # the rest were no-break spaces
    # affected_components names on updates; null -> ()
    assert sum(bool(u.components) for u in updates) == 192
    assert sum(u.components == () for u in updates) == 95
    # every update is the newest-last of its incident, the incident's first update is "investigating"
    for inc in result.incidents:
        assert inc.updates[-1].status == "resolved"


def test_github_incidents_non_ascii_and_html_are_byte_for_byte():
    payload = load("github-incidents-2026-07-31.json")
    raw = {u["id"]: u for i in payload["incidents"] for u in i["incident_updates"]}
    updates = {u.update_id: u for i in parse(payload).incidents for u in i.updates}
    html = [k for k, u in raw.items() if "<br />" in u["body"]]
    non_ascii = [k for k, u in raw.items() if any(ord(c) > 127 for c in u["body"])]
    assert len(html) == 61 and len(non_ascii) == 23
    for key in html + non_ascii:
        assert updates[key].source == raw[key]["body"]
        assert updates[key].message == html_to_text(raw[key]["body"], markup=statuspage._is_html(raw[key]["body"]))
    for key in non_ascii:  # every non-ASCII character kept (a no-break space becomes a space)
        assert ([c for c in updates[key].message if ord(c) > 127]
                == [c for c in raw[key]["body"] if ord(c) > 127 and c != "\xa0"])


def test_github_update_components_from_affected_components():
    payload = load("github-incidents-2026-07-31.json")
    result = by_id(parse(payload))
    for raw in payload["incidents"]:
        for ru in raw["incident_updates"]:
            u = next(x for x in result[raw["id"]].updates if x.update_id == ru["id"])
            if ru["affected_components"] is None:
                assert u.components == ()
            else:
                assert u.components == tuple(c["name"] for c in ru["affected_components"])
                assert all(isinstance(n, str) and n for n in u.components)


def test_dropbox_incidents():
    payload = load("dropbox-incidents-2024-01-03.json")
    result = parse(payload)
    assert (len(result.incidents), sum(len(i.updates) for i in result.incidents)) == (50, 121)
    assert sum(len(i.updates) >= 2 for i in result.incidents) == 45
    assert Counter(i.impact for i in result.incidents) == {"minor": 29, "none": 14, "major": 7}
    # page.url is http:// on this page; the link follows the page
    assert all(i.url == f"http://status.dropbox.com/incidents/{i.incident_id}" for i in result.incidents)
    updates = [u for i in result.incidents for u in i.updates]
    null_components = [u["id"] for i in payload["incidents"] for u in i["incident_updates"]
                       if u["affected_components"] is None]
    assert len(null_components) == 5
    assert all(u.components == () for u in updates if u.update_id in null_components)
    # curly quotes and other non-ASCII survive
    assert any("\u2019" in u.message for u in updates)


def test_atlassian_postmortems_crlf_and_empty_components():
    payload = load("atlassian-incidents-2024-01-31.json")
    result = parse(payload)
    incidents = by_id(result)
    assert (len(result.incidents), sum(len(i.updates) for i in result.incidents)) == (25, 80)
    assert sum(len(i.updates) >= 2 for i in result.incidents) == 21
    assert max(len(i.updates) for i in result.incidents) == 8
    # incident-level components: [] everywhere
    assert all(i.components == () for i in result.incidents)

    postmortems = [i for i in result.incidents if i.status == "postmortem"]
    assert sorted(i.incident_id for i in postmortems) == ["lvq7pq0zbgvr", "pzh5b8cvfk2g"]
    for inc in postmortems:
        assert not inc.is_open
        last = inc.updates[-1]
        assert last.status == "postmortem"
        assert last.message.startswith("### **SUMMARY**\n\n")
    # postmortem updates have display_at null: created_at is used as it is
    pm = next(u for u in incidents["lvq7pq0zbgvr"].updates if u.update_id == "z03fyqvwslrs")
    assert pm.created_at == "2023-12-28T02:43:05.232Z"
    pm2 = next(u for u in incidents["pzh5b8cvfk2g"].updates if u.update_id == "3p9zj3z2fqpq")
    assert pm2.created_at == "2023-07-14T04:56:54.607Z"

    # CRLF inside the body: line breaks as LF in the message, kept as written in the source
    crlf = next(u for u in incidents["skl1wrm8z4yd"].updates if u.update_id == "1lk91qfnxlsk")
    assert "\r\n" in crlf.source and crlf.message == crlf.source.replace("\r\n", "\n")
    assert crlf.source == (
        "We are currently investigating an incident involving all purchasing systems.\r\n\r\n"
        "Currently all customers will be unable to:\r\n- sign up for new products.\r\n"
        "- receive quotes on or purchase market place add-ons.\r\n"
        "- provision new products or in some cases deactivate users."
    )
    # a literal "<SOME/ALL>" is text, not markup to strip
    some = next(u for u in incidents["lvq7pq0zbgvr"].updates if u.update_id == "k0bfgms683dc")
    assert "<SOME/ALL>" in some.message
    # 79 of 80 updates have affected_components: null
    assert sum(u.components == () for i in result.incidents for u in i.updates) == 79


def test_hyper_back_dated_display_at_is_ignored():
    payload = load("hyper-incidents-2023-04-10.json")
    result = parse(payload)
    assert (len(result.incidents), sum(len(i.updates) for i in result.incidents)) == (8, 25)
    back_dated = {
        u["id"]: (u["created_at"], u["display_at"])
        for i in payload["incidents"] for u in i["incident_updates"]
        if u["display_at"] < u["created_at"]
    }
    assert len(back_dated) == 5
    updates = {u.update_id: u for i in result.incidents for u in i.updates}
    for update_id, (created, display) in back_dated.items():
        assert same_instant(updates[update_id].created_at, created)
        assert not same_instant(updates[update_id].created_at, display)
    assert updates["lnk9cv4tnr1r"].created_at == "2021-01-10T02:13:01.277Z"  # display_at 2021-01-09T19:00:01


def test_hyper_names_and_maintenance_done_as_incident():
    result = by_id(parse(load("hyper-incidents-2023-04-10.json")))
    assert all(i.kind == "incident" for i in result.values())
    # escaped quotes in the name
    assert result["jr1vrw7zkyzl"].title == 'Waitlist says "500" after submission'
    # renamed component: the update keeps the name it was published with
    assert result["jr1vrw7zkyzl"].components == ("Portal (foobar.hyper.co)",)
    assert {u.components for u in result["jr1vrw7zkyzl"].updates} == {("Portal (foobar.metalabs.group)",)}
    assert result["jr1vrw7zkyzl"].touches(frozenset({"portal (foobar.metalabs.group)"}))
    # components under_maintenance, but an ordinary incident with impact none
    bot = result["z58ghgmnthfj"]
    assert (bot.kind, bot.impact, bot.status) == ("incident", "none", "resolved")
    # affected_components [] -> ()
    assert [u.components for u in result["85q8r59bkqv8"].updates] == [()]
    assert result["85q8r59bkqv8"].components == ()


def test_openai_incidents_ulids_and_fallback_messages():
    payload = load("openai-incidents-2025-11-15.json")
    result = parse(payload)
    assert (len(result.incidents), sum(len(i.updates) for i in result.incidents)) == (25, 82)
    assert sum(len(i.updates) >= 2 for i in result.incidents) == 23
    for inc in result.incidents:
        assert ULID.match(inc.incident_id)
        # page.url "https://status.openai.com/" has a trailing slash: no "//incidents"
        assert inc.url == f"https://status.openai.com/incidents/{inc.incident_id}"
        assert inc.components == ()
        for u in inc.updates:
            assert ULID.match(u.update_id)
            assert u.components == ()
            # every body is "", so every message is the fallback
            assert u.message == f"{u.status.capitalize()} (impact: {inc.impact})"
            assert ISO_UTC.match(u.created_at) and u.created_at.endswith(".000Z")

    incidents = by_id(result)
    first = incidents["01KA22ACNT50TDGYE1B9TJ86D2"]
    assert first.created_at == "2025-11-14T20:53:41.000Z"
    assert first.updates[-1].message == "Resolved (impact: major)"
    assert first.updates[-1].created_at == "2025-11-15T01:55:44.000Z"

    open_ = [i for i in result.incidents if i.is_open]
    assert [i.incident_id for i in open_] == ["01KA22C8G0G4EZG5YEJ4FRTWRA"]
    assert open_[0].status == "investigating"
    assert [u.message for u in open_[0].updates] == ["Investigating (impact: minor)"]


def test_fallback_message_wording():
    assert statuspage.fallback_message("investigating", "minor") == "Investigating (impact: minor)"
    assert statuspage.fallback_message("in_progress", "maintenance") == "In progress (impact: maintenance)"


def test_openai_summary():
    result = parse(load("openai-summary-2025-11-14.json"))  # no scheduled_maintenances key
    [inc] = result.incidents
    assert (inc.incident_id, inc.status, inc.impact, inc.kind) == (
        "01KA22C8G0G4EZG5YEJ4FRTWRA", "investigating", "minor", "incident")
    assert inc.is_open
    assert inc.title == "Subset of Batch API jobs stuck in finalizing state"
    [u] = inc.updates
    assert u.update_id == "01KA22C8G05TDM8NNEXZ0K1DC7"
    assert u.message == "Investigating (impact: minor)"
    # created_at 20:54:43, display_at 20:54:42: created_at wins
    assert u.created_at == "2025-11-14T20:54:43.000Z"


def test_github_unresolved():
    [inc] = parse(load("github-incidents-unresolved-2026-04-17.json")).incidents
    assert (inc.incident_id, inc.status, inc.impact, inc.kind, inc.is_open) == (
        "kcf0thb1zp30", "investigating", "minor", "incident", True)
    assert [u.status for u in inc.updates] == ["investigating"] * 4
    assert [u.created_at for u in inc.updates] == [
        "2026-04-17T14:56:22.609Z", "2026-04-17T14:56:58.060Z",
        "2026-04-17T14:57:34.209Z", "2026-04-17T15:08:06.465Z",
    ]
    assert [u.components for u in inc.updates] == [(), ("Issues",), ("Issues",), ("Issues",)]
    assert inc.touches(frozenset({"issues"}))


def test_single_incident_object():
    payload = load("github-incident-f0mhbz9xn497.json")
    assert set(payload) == {"page", "incident"}
    result = parse(payload)
    [inc] = result.incidents
    assert inc.incident_id == "f0mhbz9xn497"
    assert inc.url == "https://www.githubstatus.com/incidents/f0mhbz9xn497"
    assert (inc.status, inc.impact, inc.kind, inc.is_open) == ("resolved", "major", "incident", False)
    assert len(inc.updates) == 30
    assert Counter(u.status for u in inc.updates) == {"investigating": 29, "resolved": 1}
    assert inc.updates[-1].status == "resolved"


def test_github_summary_with_maintenance():
    result = parse(load("github-summary-2025-05-30T1554Z.json"))
    incidents = by_id(result)
    assert list(incidents) == ["p1rf575rlqml", "nwjwwhj118sf"]
    inc = incidents["p1rf575rlqml"]
    assert (inc.kind, inc.status, inc.impact, inc.is_open) == ("incident", "investigating", "major", True)
    assert [u.status for u in inc.updates] == ["investigating"] * 3
    maint = incidents["nwjwwhj118sf"]
    assert maint.title == "Codespaces Scheduled Maintenance"
    assert (maint.kind, maint.status, maint.impact, maint.is_open) == (
        "maintenance", "in_progress", "maintenance", True)
    assert [u.status for u in maint.updates] == ["scheduled", "in_progress"]
    assert maint.url == "https://www.githubstatus.com/incidents/nwjwwhj118sf"


@pytest.mark.parametrize("name", ["github-summary-2026-07-31.json", "github-summary-2026-08-17T2142Z.json"])
def test_github_summary_all_clear(name):
    payload = load(name)
    assert payload["incidents"] == [] and payload["scheduled_maintenances"] == []
    assert parse(payload) == ParseResult(incidents=[], skipped=[], page_time=times.parse(payload["page"]["updated_at"]))


def test_github_summary_timeline_grows_one_incident():
    stamps = ["1348Z", "1503Z", "2110Z"]
    seen: list[tuple[str, ...]] = []
    for stamp, (n_updates, n_with_components) in zip(stamps, [(6, 5), (17, 16), (35, 34)]):
        [inc] = parse(load(f"github-summary-2026-08-17T{stamp}.json")).incidents
        assert (inc.incident_id, inc.status, inc.impact, inc.kind, inc.is_open) == (
            "zkxwbgr0cnmx", "investigating", "critical", "incident", True)
        assert len(inc.updates) == n_updates
        assert sum(bool(u.components) for u in inc.updates) == n_with_components
        assert {u.status for u in inc.updates} == {"investigating"}
        seen.append(tuple(u.update_id for u in inc.updates))
    # oldest first: each later capture extends the earlier one at the end
    assert seen[1][: len(seen[0])] == seen[0]
    assert seen[2][: len(seen[1])] == seen[1]


def test_cloudflare_summary():
    payload = load("cloudflare-summary-2025-11-18T1444Z.json")
    result = parse(payload)
    maint = [i for i in result.incidents if i.kind == "maintenance"]
    incs = [i for i in result.incidents if i.kind == "incident"]
    assert (len(maint), len(incs)) == (53, 2)
    assert all(m.impact == "maintenance" for m in maint)
    assert Counter(m.status for m in maint) == {"scheduled": 50, "in_progress": 3}
    assert all(m.is_open for m in maint)
    assert all(len(m.components) == 1 for m in maint)
    assert Counter(u.status for m in maint for u in m.updates) == {"scheduled": 63, "in_progress": 3}
    assert sum(len(i.updates) for i in incs) == 14

    big = by_id(result)["8gmgl950y3h7"]
    assert big.title == "Cloudflare Global Network experiencing issues"
    assert (big.status, big.impact, big.is_open) == ("monitoring", "critical", True)
    assert [u.status for u in big.updates] == ["investigating"] * 6 + ["identified"] * 6 + ["monitoring"]
    assert [len(u.components) for u in big.updates] == [1, 1, 1, 1, 1, 1, 1, 3, 3, 7, 7, 8, 8]
    small = by_id(result)["swzl0f0hxy68"]
    assert (small.status, small.impact, len(small.updates)) == ("investigating", "minor", 1)


# --------------------------------------------------------------------------------------------
# Not Statuspage: a clear ParseError, never another exception


@pytest.mark.parametrize("name", NOT_STATUSPAGE)
def test_other_apis_raise_parse_error(name):
    payload = load(name)
    with pytest.raises(ParseError) as info:
        parse(payload)
    message = str(info.value)
    assert isinstance(info.value, TrackerError)
    assert "incidents" in message
    assert "\n" not in message
    if isinstance(payload, list):
        assert "list" in message
    else:
        # names what it found instead, so an operator can tell which API answered
        assert sorted(payload)[0] in message


def test_utf16_aws_capture_is_a_json_array():
    raw = (FIXTURES / "aws-health-currentevents-2026-07-02.utf16be.json").read_bytes()
    assert raw[:2] == b"\xfe\xff"
    payload = json.loads(raw)
    assert isinstance(payload, list) and len(payload) == 2
    with pytest.raises(ParseError, match="list"):
        parse(payload)


@pytest.mark.parametrize("name", NOT_JSON)
def test_non_json_captures_as_text_raise_parse_error(name):
    text = (FIXTURES / name).read_text(encoding="utf-8")
    with pytest.raises(ValueError):
        json.loads(text)
    # if a caller ever hands the raw text over, the answer is still a ParseError
    with pytest.raises(ParseError):
        parse(text)


# --------------------------------------------------------------------------------------------
# Malformed variants of real payloads


def test_incident_without_id_is_skipped_with_a_warning():
    payload = load("github-incidents-2026-07-31.json")
    victim = payload["incidents"][3]
    del victim["id"]
    result = parse(payload)
    assert len(result.incidents) == 49
    assert len(result.skipped) == 1
    assert "without an id" in result.skipped[0]
    assert victim["name"][:40] in result.skipped[0]
    kept = [i["id"] for n, i in enumerate(load("github-incidents-2026-07-31.json")["incidents"]) if n != 3]
    assert [i.incident_id for i in result.incidents] == kept


@pytest.mark.parametrize("bad_id", [None, "", "   ", True, {"id": 1}])
def test_incident_with_unusable_id_is_skipped(bad_id):
    payload = load("hyper-incidents-2023-04-10.json")
    payload["incidents"][0]["id"] = bad_id
    result = parse(payload)
    assert len(result.incidents) == 7
    assert len(result.skipped) == 1 and "without an id" in result.skipped[0]


def test_numeric_ids_are_read_as_text():
    payload = load("hyper-incidents-2023-04-10.json")
    payload["incidents"][0]["id"] = 12345
    payload["incidents"][0]["incident_updates"][0]["id"] = 678
    inc = parse(payload).incidents[0]
    assert inc.incident_id == "12345"
    assert inc.url == "https://status.hyper.co/incidents/12345"
    assert "678" in {u.update_id for u in inc.updates}


def test_incident_that_is_not_an_object_is_skipped():
    payload = load("hyper-incidents-2023-04-10.json")
    payload["incidents"][2] = payload["incidents"][2]["id"]  # a bare string where an object was
    result = parse(payload)
    assert len(result.incidents) == 7
    assert len(result.skipped) == 1 and "not an object" in result.skipped[0]


def test_update_without_id_is_skipped():
    payload = load("github-incidents-2026-07-31.json")
    incident = payload["incidents"][0]
    dropped = incident["incident_updates"][1]
    del dropped["id"]
    result = parse(payload)
    assert len(result.incidents) == 50
    assert sum(len(i.updates) for i in result.incidents) == 286
    inc = by_id(result)[incident["id"]]
    assert len(inc.updates) == len(incident["incident_updates"]) - 1
    assert len(result.skipped) == 1
    assert incident["id"] in result.skipped[0] and "without an id" in result.skipped[0]


def test_update_that_is_not_an_object_is_skipped():
    payload = load("github-incidents-2026-07-31.json")
    incident = payload["incidents"][0]
    incident["incident_updates"][0] = None
    result = parse(payload)
    assert len(by_id(result)[incident["id"]].updates) == len(incident["incident_updates"]) - 1
    assert len(result.skipped) == 1 and "not an object" in result.skipped[0]


def test_update_with_unreadable_created_at_and_no_display_at_is_skipped():
    # the Atlassian postmortem update has display_at null, so created_at is all there is
    payload = load("atlassian-incidents-2024-01-31.json")
    incident = next(i for i in payload["incidents"] if i["id"] == "lvq7pq0zbgvr")
    update = next(u for u in incident["incident_updates"] if u["id"] == "z03fyqvwslrs")
    assert update["display_at"] is None
    update["created_at"] = "yesterday"
    result = parse(payload)
    inc = by_id(result)["lvq7pq0zbgvr"]
    assert "z03fyqvwslrs" not in {u.update_id for u in inc.updates}
    assert len(inc.updates) == len(incident["incident_updates"]) - 1
    assert sum(len(i.updates) for i in result.incidents) == 79
    assert len(result.skipped) == 1
    warning = result.skipped[0]
    assert "lvq7pq0zbgvr" in warning and "z03fyqvwslrs" in warning and "'yesterday'" in warning


def test_update_with_unreadable_created_at_falls_back_to_display_at():
    # Documented in the adapter: display_at stands in when created_at is unreadable.
    payload = load("github-incidents-2026-07-31.json")
    incident = payload["incidents"][0]
    update = incident["incident_updates"][0]
    display_at = update["display_at"]
    update["created_at"] = "yesterday"
    result = parse(payload)
    assert result.skipped == []
    u = next(x for x in by_id(result)[incident["id"]].updates if x.update_id == update["id"])
    assert same_instant(u.created_at, display_at) and ISO_UTC.match(u.created_at)


def test_update_with_neither_timestamp_is_skipped():
    payload = load("github-incidents-2026-07-31.json")
    incident = payload["incidents"][0]
    update = incident["incident_updates"][0]
    update["created_at"] = "yesterday"
    update["display_at"] = None
    result = parse(payload)
    assert update["id"] not in {u.update_id for u in by_id(result)[incident["id"]].updates}
    assert len(result.skipped) == 1 and "yesterday" in result.skipped[0]


def test_offset_timestamps_are_converted_to_utc():
    payload = load("github-incidents-2026-07-31.json")
    incident = payload["incidents"][0]
    update = incident["incident_updates"][0]
    original = update["created_at"]
    pacific = datetime.fromisoformat(original).astimezone(timezone(timedelta(hours=-7)))
    update["created_at"] = pacific.isoformat(timespec="milliseconds")  # "…-07:00"
    assert update["created_at"].endswith("-07:00")
    incident["created_at"] = datetime.fromisoformat(incident["created_at"]).astimezone(
        timezone(timedelta(hours=5, minutes=30))).isoformat(timespec="milliseconds")
    inc = by_id(parse(payload))[incident["id"]]
    u = next(x for x in inc.updates if x.update_id == update["id"])
    assert u.created_at == original  # GitHub already serves "….mmmZ"
    assert inc.created_at == load("github-incidents-2026-07-31.json")["incidents"][0]["created_at"]


def test_duplicate_update_ids_keep_one():
    payload = load("github-incidents-2026-07-31.json")
    incident = payload["incidents"][0]
    n = len(incident["incident_updates"])
    original = by_id(parse(load("github-incidents-2026-07-31.json")))[incident["id"]]
    # the page repeats an entry (same id, same content)
    repeated = copy.deepcopy(incident["incident_updates"][1])
    incident["incident_updates"].append(repeated)
    result = parse(payload)
    inc = by_id(result)[incident["id"]]
    assert inc.updates == original.updates
    assert len(inc.updates) == n
    assert len(result.skipped) == 1
    assert "duplicate update id" in result.skipped[0] and repeated["id"] in result.skipped[0]


def test_duplicate_update_id_with_other_content_keeps_exactly_one():
    # Which copy wins is not specified; exactly one must, and the rest of the incident is intact.
    payload = load("github-incidents-2026-07-31.json")
    incident = payload["incidents"][0]
    n = len(incident["incident_updates"])
    first = incident["incident_updates"][0]
    incident["incident_updates"].append(dict(first, body="a re-sent copy"))
    result = parse(payload)
    inc = by_id(result)[incident["id"]]
    ids = [u.update_id for u in inc.updates]
    assert len(ids) == n and len(set(ids)) == n
    kept = next(u for u in inc.updates if u.update_id == first["id"])
    assert kept.message in {first["body"].strip(), "a re-sent copy"}
    assert len(result.skipped) == 1 and "duplicate update id" in result.skipped[0]


def test_duplicate_incident_ids_keep_one():
    payload = load("hyper-incidents-2023-04-10.json")
    payload["incidents"].append(copy.deepcopy(payload["incidents"][0]))
    result = parse(payload)
    assert len(result.incidents) == 8
    assert len(result.skipped) == 1 and "duplicate incident id tqkt1v9cxz29" in result.skipped[0]


def test_incident_updates_not_a_list_skips_the_incident():
    payload = load("hyper-incidents-2023-04-10.json")
    payload["incidents"][0]["incident_updates"] = "[]"  # the shape of Dropbox's reminder_intervals
    result = parse(payload)
    assert len(result.incidents) == 7
    assert len(result.skipped) == 1 and "tqkt1v9cxz29" in result.skipped[0]


def test_incident_updates_null_is_an_incident_without_updates():
    payload = load("hyper-incidents-2023-04-10.json")
    payload["incidents"][0]["incident_updates"] = None
    result = parse(payload)
    assert result.skipped == []
    assert by_id(result)["tqkt1v9cxz29"].updates == ()


def test_incident_created_at_falls_back_to_started_at_then_oldest_update():
    payload = load("github-incidents-2026-07-31.json")
    incident = payload["incidents"][0]
    incident["created_at"] = "yesterday"
    inc = by_id(parse(payload))[incident["id"]]
    assert same_instant(inc.created_at, incident["started_at"])
    del incident["started_at"]
    inc = by_id(parse(payload))[incident["id"]]
    assert inc.created_at == inc.updates[0].created_at
    # nothing readable at all: skipped with a warning
    incident["incident_updates"] = []
    result = parse(payload)
    assert incident["id"] not in by_id(result)
    assert len(result.skipped) == 1 and incident["id"] in result.skipped[0]


@pytest.mark.parametrize("key", ["incidents", "scheduled_maintenances"])
@pytest.mark.parametrize("bad", [{}, None, "[]", 50])
def test_list_key_of_another_type_raises(key, bad):
    payload = load("cloudflare-summary-2025-11-18T1444Z.json")
    payload[key] = payload[key][0] if bad == {} else bad
    with pytest.raises(ParseError, match=key):
        parse(payload)


@pytest.mark.parametrize("name", ["github-incidents-2026-07-31.json", "openai-summary-2025-11-14.json"])
def test_payload_that_is_a_list_raises(name):
    payload = load(name)["incidents"]  # the list without its envelope
    with pytest.raises(ParseError, match="list"):
        parse(payload)


@pytest.mark.parametrize("payload", [None, 0, "", "{}"])
def test_payload_of_another_type_raises(payload):
    with pytest.raises(ParseError):
        parse(payload)


def test_object_without_incidents_raises():
    payload = load("github-incidents-2026-07-31.json")
    del payload["incidents"]
    with pytest.raises(ParseError, match="no 'incidents' list"):
        parse(payload)


def test_base_url_is_used_when_the_page_has_no_url():
    payload = load("openai-incidents-2025-11-15.json")
    del payload["page"]
    inc = parse(payload, base_url="https://status.openai.com").incidents[0]
    assert inc.url == f"https://status.openai.com/incidents/{inc.incident_id}"
    # no page url, no base_url, no shortlink (incident.io's copy has none): no link
    assert parse(payload).incidents[0].url is None


def test_shortlink_is_used_without_page_url_or_base_url():
    payload = load("github-incidents-2026-07-31.json")
    del payload["page"]
    result = parse(payload)
    assert [i.url for i in result.incidents] == [i["shortlink"] for i in payload["incidents"]]


def test_page_url_wins_over_base_url():
    payload = load("github-incidents-2026-07-31.json")
    inc = parse(payload, base_url="https://example.invalid").incidents[0]
    assert inc.url.startswith("https://www.githubstatus.com/incidents/")


# --------------------------------------------------------------------------------------------
# Updates sharing a created_at keep publication order (payloads list them newest first)


def test_updates_with_equal_created_at_keep_publication_order():
    payload = load("openai-incidents-2025-11-15.json")
    result = by_id(parse(payload))
    moderation = result["01K93DB34WDVV030H473HQN2N1"]
    assert len({u.created_at for u in moderation.updates}) == 1  # both 2025-11-02T23:09:51Z
    assert [u.status for u in moderation.updates] == ["investigating", "resolved"]
    latency = result["01K8PE0EGDH9XRSMB21F24AFRY"]
    assert [u.status for u in latency.updates] == ["identified", "resolved"]


@pytest.mark.parametrize("name", sorted(STATUSPAGE))
def test_last_update_matches_the_incident_status(name):
    """Oldest first means the newest update (first in the payload) comes last."""
    payload = load(name)
    for (raw, _), inc in zip(raw_items(payload), parse(payload).incidents):
        if inc.updates:
            assert inc.updates[-1].update_id == raw["incident_updates"][0]["id"]


# --------------------------------------------------------------------------------------------
# Caps: a broken or hostile page cannot make one payload unbounded work or storage


def test_more_incidents_than_the_cap_keeps_the_first_and_warns():
    payload = load("github-incidents-2026-07-31.json")
    real = payload["incidents"]
    payload["incidents"] = [
        {**copy.deepcopy(inc), "id": f"{inc['id']}-{n}"} for n in range(11) for inc in real
    ]  # 550 incidents, every one a real GitHub incident under a new id
    result = parse(payload)
    assert len(result.incidents) == statuspage.MAX_INCIDENTS == 500
    assert result.incidents[0].incident_id == f"{real[0]['id']}-0"
    assert any("550 incidents" in s for s in result.skipped)


def test_more_updates_than_the_cap_keeps_the_newest_and_warns():
    payload = load("github-incidents-2026-07-31.json")
    inc = payload["incidents"][0]
    real = inc["incident_updates"]  # newest first, as the API lists them
    inc["incident_updates"] = [
        {**copy.deepcopy(u), "id": f"{u['id']}-{n}"} for n in range(150) for u in real
    ]  # 600 updates
    result = parse({"page": payload["page"], "incidents": [inc]})
    (parsed,) = result.incidents
    assert len(parsed.updates) == statuspage.MAX_UPDATES == 500
    assert any("600 updates, only the newest 500 kept" in s for s in result.skipped)
