"""Every format end to end: the real `tracker` command against a 127.0.0.1 server serving
each platform's real payload, then a later one (derived from a real capture, as noted).
First contact announces only what is open; the later page's new updates are announced once,
oldest first; format detection, the switch from Statuspage to native incident.io, and its
fallback.

The oracle here is the adapter: the expected announcements are computed by calling the same
format's `parse` on the same payloads (`announced_by`, `open_at_first_contact`). So this file
checks plumbing only (fetch, decoding, first contact, store, emit: what the adapter returns is
what is announced, once, in order); it cannot catch an adapter that reads a page wrongly. What
the adapters read is checked against the captures in tests/test_adapter_*.py."""

from __future__ import annotations

import codecs
import copy
import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import Tracker, tracker_command, updates_of, write_config
from test_adapter_vendors import BETTERSTACK_DOCS, DOC_INCIDENT

from tracker.adapters import FORMATS

FIXTURES = Path(__file__).parent / "fixtures"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def data(name: str):
    return json.loads(raw(name))


def openai_incident() -> dict:
    """OpenAI's ongoing incident (5 updates, re-opened once) as its status page embedded it on
    2026-03-17: the native incident.io object, out of the page's RSC chunks."""
    html = (FIXTURES / "openai-incidentio-page-2026-03-17T1618Z.html").read_text(encoding="utf-8")
    chunks = re.findall(r'self\.__next_f\.push\(\[1,"(.*?)"\]\)', html, re.S)
    text = "".join(json.loads('"' + c + '"') for c in chunks)
    start = text.index('"summary":{') + len('"summary":')
    summary, _ = json.JSONDecoder().raw_decode(text, start)
    return summary["ongoing_incidents"][0]


def keys(records):
    return [(r["incident_id"], r["update_id"]) for r in updates_of(records)]


def announced_by(fmt: str, before, after, base: str, now: str | None = None):
    """What the adapter says is new between two payloads: the e2e expectation."""
    parse = FORMATS[fmt].views[0].parse
    extra = {"now": now}
    old = {(i.incident_id, u.update_id) for i in parse(before, base_url=base, **extra).incidents for u in i.updates}
    new = sorted(((u.created_at, i.incident_id, u.update_id) for i in parse(after, base_url=base, **extra).incidents
                  for u in i.updates if (i.incident_id, u.update_id) not in old))
    return [(i, u) for _, i, u in new]


def open_at_first_contact(fmt: str, payload, base: str):
    parse = FORMATS[fmt].views[0].parse
    extra = {"now": "2026-11-23T00:00:00.000Z"}
    found = sorted((u.created_at, i.incident_id, u.update_id)
                   for i in parse(payload, base_url=base, **extra).incidents if i.is_open for u in i.updates)
    return [(i, u) for _, i, u in found]


def utf16(obj) -> bytes:
    return codecs.BOM_UTF16_BE + json.dumps(obj).encode("utf-16-be")


def _scenarios():
    """(format, path served, content type, before bytes, after bytes, parsed-before, parsed-after)."""
    gcp = data("gcp-incidents-2022-07-03.json")
    gcp_newest = max(range(len(gcp)), key=lambda n: gcp[n]["begin"])
    aws_raw = raw("aws-health-currentevents-2026-07-02.utf16be.json")
    aws = json.loads(aws_raw)
    aws_before = copy.deepcopy(aws)
    aws_before[0]["event_log"] = aws_before[0]["event_log"][:-1]
    demo = data("instatus-demo-summary.json")
    statusio_after = data("gitlab-statusio-status-2026-07-01.json")
    statusio_after["result"]["incidents"].append(copy.deepcopy(DOC_INCIDENT))  # as status.io documents it
    inc = openai_incident()
    summary = data("openai-incidentio-proxy-2026-10-06.json")["summary"]
    io_before = {"summary": {**summary, "ongoing_incidents": [
        {**inc, "updates": sorted(inc["updates"], key=lambda u: u["published_at"])[:3]}]}}
    io_after = {"summary": {**summary, "ongoing_incidents": [inc]}}
    return {
        # the native summary; the compatible copy is not served here (a view failing is a warning)
        "incidentio": ("incidentio", "/p/proxy/127.0.0.1", "application/json",
                       json.dumps(io_before).encode(), json.dumps(io_after).encode(), io_before, io_after),
        "feed-azure": ("feed", "/p/en-us/status/feed/", "application/rss+xml",
                       raw("azure-status-feed-empty-2026-09-25.xml"), raw("azure-status-feed-2026-07-23.xml"),
                       raw("azure-status-feed-empty-2026-09-25.xml"), raw("azure-status-feed-2026-07-23.xml")),
        "feed-github": ("feed", "/p/history.atom", "application/atom+xml",
                        raw("github-history-2023-05-10.atom"), raw("github-history-2026-08-18.atom"),
                        raw("github-history-2023-05-10.atom"), raw("github-history-2026-08-18.atom")),
        "slack": ("slack", "/p/api/v2.0.0/current", "application/json",
                  raw("slack-status-current-2024-02-27T1725Z.json"), raw("slack-status-current-2026-09-01.json"),
                  data("slack-status-current-2024-02-27T1725Z.json"), data("slack-status-current-2026-09-01.json")),
        "gcp": ("gcp", "/p/incidents.json", "application/json",
                json.dumps(gcp[:gcp_newest] + gcp[gcp_newest + 1:]).encode(), raw("gcp-incidents-2022-07-03.json"),
                gcp[:gcp_newest] + gcp[gcp_newest + 1:], gcp),
        "aws": ("aws", "/p/public/currentevents", "application/json",  # served as AWS does: UTF-16BE + BOM
                utf16(aws_before), aws_raw, aws_before, aws),
        "instatus": ("instatus", "/p/summary.json", "application/json",
                     json.dumps({**demo, "activeIncidents": []}).encode(), raw("instatus-demo-summary.json"),
                     {**demo, "activeIncidents": []}, demo),
        "statusio": ("statusio", "/p/1.0/status/5b36dc6502d06804c08349f7", "application/json",
                     raw("gitlab-statusio-status-2026-07-01.json"), json.dumps(statusio_after).encode(),
                     data("gitlab-statusio-status-2026-07-01.json"), statusio_after),
        "betterstack": ("betterstack", "/p/index.json", "application/json",  # built from Better Stack's docs
                        json.dumps(BETTERSTACK_DOCS).encode(), json.dumps(BETTERSTACK_DOCS).encode(),
                        BETTERSTACK_DOCS, BETTERSTACK_DOCS),
    }


SCENARIOS = _scenarios()


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.slow
def test_each_format_first_contact_then_news_once(name, server, tmp_path):
    fmt, path, ctype, before, after, parsed_before, parsed_after = SCENARIOS[name]
    route = server.route(path)
    route.body, route.content_type = before, ctype
    url = f"{server.base}{path}" if fmt not in ("incidentio", "instatus", "betterstack") else f"{server.base}/p"
    # Feeds are left to `format = "auto"`: their URL says what they are.
    entry = {"name": "P", "url": url} if fmt == "feed" else {"name": "P", "url": url, "format": fmt}
    config = write_config(tmp_path / "t.toml", [entry])
    tracker = Tracker(config, tmp_path / "t.db")
    base = url
    code, records, err = tracker.once()
    assert code == 0, err
    assert not [r for r in records if r["event"] == "poll_failed"], records
    assert sorted(keys(records)) == sorted(open_at_first_contact(fmt, parsed_before, base))
    route.body = after
    code, records, err = tracker.once()
    assert code == 0, err
    expected = announced_by(fmt, parsed_before, parsed_after, base)
    got = keys(records)
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    stamps = [e["created_at"] for e in updates_of(records)]
    assert stamps == sorted(stamps)  # oldest first (ties in publication order)
    for e in updates_of(records):
        assert e["message"] and "<" not in e["message"][:1]
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["created_at"])
    assert updates_of(tracker.once()[1]) == []  # nothing twice


def test_incidentio_events_carry_the_providers_own_words(server, tmp_path):
    inc = openai_incident()
    # The page's summary (a real capture of the same page, which names the components by id)
    # with the incident the page embedded on 2026-03-17 ongoing.
    summary = data("openai-incidentio-proxy-2026-10-06.json")
    summary["summary"]["ongoing_incidents"] = [inc]
    server.route("/openai/proxy/127.0.0.1", summary)
    server.route("/openai/api/v2/incidents.json", {"page": {}, "incidents": []})
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "url": f"{server.base}/openai", "format": "incidentio"}])
    code, records, err = Tracker(config, tmp_path / "t.db").once()
    assert code == 0, err
    events = updates_of(records)
    texts = {u["id"]: u["message_string"].strip() for u in inc["updates"]}
    assert [e["message"] for e in events] == [texts[e["update_id"]] for e in events]
    assert events[0]["message"].startswith("We have identified that users are experiencing elevated errors")
    assert all(e["components"] == ["Login (ChatGPT)"] for e in events)  # two "Login"s on the page
    assert [e["status"] for e in events] == ["identified", "monitoring", "resolved", "identified", "monitoring"]


@pytest.mark.slow
def test_auto_detects_incidentio_by_one_probe_and_remembers_it(server, tmp_path):
    summary = data("openai-incidentio-proxy-2026-10-06.json")
    summary["summary"]["ongoing_incidents"] = [openai_incident()]
    server.route("/openai/proxy/127.0.0.1", summary)
    # The compatible copy, cut to no incidents: read as Statuspage first, its ULID ids say "a copy"
    server.route("/openai/api/v2/incidents.json", {**data("openai-incidents-2025-11-15.json"), "incidents": []})
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "url": f"{server.base}/openai"}])
    tracker = Tracker(config, tmp_path / "t.db")
    code, records, err = tracker.once()
    assert code == 0, err
    assert [(r["event"], r["format"]) for r in records if r["event"] == "format_detected"] == [
        ("format_detected", "incidentio")]
    assert len(updates_of(records)) == 5
    code, records, err = tracker.once()
    assert not [r for r in records if r["event"] == "format_detected"]  # remembered, no second probe
    # The copy read as Statuspage, the probe of the summary, then each view; the second run
    # asked each view once (304s).
    assert server.routes["/openai/proxy/127.0.0.1"].requests == 3
    assert server.routes["/openai/api/v2/incidents.json"].requests == 3
    listing = json.loads(subprocess.run([*tracker_command(), "providers", "--json", "--config", str(config),
                                         "--db", str(tracker.db)], capture_output=True, text=True).stdout)
    assert listing[0]["format"] == "auto" and listing[0]["detected_format"] == "incidentio"


@pytest.mark.slow
def test_switching_statuspage_to_incidentio_reannounces_no_history(server, tmp_path):
    server.route("/openai/api/v2/incidents.json", data("openai-incidents-2025-11-15.json"))
    groq = data("groq-incidentio-proxy-2026-10-06.json")["summary"]["scheduled_maintenances"][0]
    summary = data("openai-incidentio-proxy-2026-10-06.json")
    summary["summary"]["scheduled_maintenances"] = [groq]  # a stale maintenance: history
    server.route("/openai/proxy/127.0.0.1", summary)
    db = tmp_path / "t.db"
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "url": f"{server.base}/openai", "format": "statuspage"}])
    code, records, err = Tracker(config, db).once()
    assert code == 0 and updates_of(records)  # the copy's one open incident
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "url": f"{server.base}/openai", "format": "incidentio"}])
    code, records, err = Tracker(config, db).once()
    assert code == 0, err
    assert updates_of(records) == []  # the copy's ids are the same: recorded; a stale maintenance: silent
    contact = [r for r in records if r["event"] == "first_contact"]
    assert contact and contact[0]["format"] == "incidentio"
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT polled_format FROM providers").fetchone() == ("incidentio",)


@pytest.mark.slow
def test_incidentio_without_its_summary_reads_the_copy_with_one_warning_and_never_goes_silent(server, tmp_path):
    server.route("/openai/proxy/127.0.0.1").status = 404
    payload = data("openai-incidents-2025-11-15.json")  # the copy when its bodies were empty
    server.route("/openai/api/v2/incidents.json", payload)
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "url": f"{server.base}/openai", "format": "incidentio"}], interval=1)
    tracker = Tracker(config, tmp_path / "t.db")
    proc = tracker.start()
    import time

    time.sleep(2.5)
    code, records, err, _ = Tracker.stop(proc)
    assert code == 0, err
    warnings = [r for r in records if r["event"] == "view_failed"]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning" and "HTTP 404" in warnings[0]["error"]
    assert warnings[0]["url"].endswith("/openai/proxy/127.0.0.1")
    events = updates_of(records)
    still_open = [i for i in payload["incidents"] if i["status"] != "resolved"]
    assert len(events) == sum(len(i["incident_updates"]) for i in still_open)
    assert all(e["message"] == f"{e['status'].capitalize()} (impact: {e['impact']})" for e in events)
    assert not [r for r in records if r["event"] in ("poll_failed", "format_fallback")]
    contact = [r for r in records if r["event"] == "first_contact"]
    assert len(contact) == 1 and contact[0]["format"] == "incidentio"


def test_a_hostile_feed_is_a_clean_provider_error(server, tmp_path):
    bomb = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n<rss><channel>&lol2;</channel></rss>')
    route = server.route("/f/feed.xml")
    route.body, route.content_type = bomb, "application/rss+xml"
    config = write_config(tmp_path / "t.toml", [{"name": "F", "url": f"{server.base}/f/feed.xml"}])
    code, records, err = Tracker(config, tmp_path / "t.db").once()
    assert code == 0 and "Traceback" not in err
    (failed,) = [r for r in records if r["event"] == "poll_failed"]
    assert "feed declares XML entities (DOCTYPE); refused" in failed["error"]


@pytest.mark.parametrize("url, fmt", [
    ("https://status.cloud.google.com", "gcp"),
    ("https://health.aws.amazon.com/health/status", "aws"),
    ("https://slack-status.com", "slack"),
    ("https://api.status.io/1.0/status/5b36dc6502d06804c08349f7", "statusio"),
    ("https://example.instatus.com", "instatus"),
    ("https://acme.betteruptime.com", "betterstack"),
    ("https://acme.statuspage.io", "statuspage"),
    ("https://www.githubstatus.com/history.atom", "feed"),
    ("https://rssfeed.azure.status.microsoft/en-us/status/feed/", "feed"),
    ("https://www.cloudflarestatus.com/api/v2/summary.json", "statuspage"),
    ("https://status.openai.com", None),  # only asking the page tells: one probe
])
def test_auto_detection_from_the_url(url, fmt):
    from tracker.adapters import detect_from_url

    assert detect_from_url(url) == fmt
