"""OpenAI first, for real (docs/contract.md §4, §5): an incident.io page read as two views of
one page, through the real `tracker` command against a 127.0.0.1 server that serves both the
native summary and the Statuspage-compatible copy, rebuilt at successive moments from real
captures (tests/openai_pages.py says how)."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Tracker, parse_lines, tracker_command, updates_of, write_config
from openai_pages import copy_at, moments, native, summary_at, week

ROOT = Path(__file__).parent.parent
SUMMARY = "/openai/proxy/127.0.0.1"
COPY = "/openai/api/v2/incidents.json"


def texts(raws) -> dict[tuple[str, str], str]:
    return {(r["id"], u["id"]): u["body"] for r in raws for u in r["incident_updates"]}


@pytest.fixture
def openai(server, tmp_path):
    summary, listing = server.route(SUMMARY), server.route(COPY)
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "id": "openai", "url": f"{server.base}/openai",
                                                   "format": "incidentio"}])
    return summary, listing, Tracker(config, tmp_path / "t.db")


def _serve(summary, listing, raws, t, copy_t=None):
    summary.set_json(summary_at(raws, t))
    listing.set_json(copy_at(raws, copy_t or t))


@pytest.mark.parametrize("name", ["W32", pytest.param("W30", marks=pytest.mark.slow),
                                  pytest.param("W31", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_a_week_of_openai_incidents_each_update_once_with_its_own_words(openai, name):
    summary, listing, tracker = openai
    raws = week(name)
    expected = texts(raws)
    seen: list[dict] = []
    contacts = 0
    for t in moments(raws):
        _serve(summary, listing, raws, t)
        code, records, err = tracker.once()
        assert code == 0, err
        assert not [r for r in records if r["event"] in ("poll_failed", "view_failed", "format_fallback")]
        contacts += len([r for r in records if r["event"] == "first_contact"])
        events = updates_of(records)
        stamps = [e["created_at"] for e in events]
        assert stamps == sorted(stamps)  # oldest first
        seen += events
    assert contacts == 1
    keys = [(e["incident_id"], e["update_id"]) for e in seen]
    assert sorted(keys) == sorted(expected) and len(keys) == len(set(keys))  # every update, once
    for e in seen:
        assert e["message"] == expected[(e["incident_id"], e["update_id"])].strip()  # its own words
        assert not e.get("inferred")
    resolved = [e for e in seen if e["status"] == "resolved"]
    assert len(resolved) == len(raws)  # the final update of every incident, with its text
    with sqlite3.connect(tracker.db) as c:
        stamped = dict(c.execute("SELECT incident_id, resolved_at FROM incidents"))
    for r in raws:
        last = max(r["incident_updates"], key=lambda u: u["created_at"])
        assert stamped[r["id"]] == last["display_at"].replace("Z", ".000Z")  # the resolution's time


@pytest.mark.slow
def test_the_resolution_comes_from_the_copy_when_it_lags_a_poll(openai):
    summary, listing, tracker = openai
    raws = week("W32")
    first = raws[-1]  # the week's first incident (the archive lists newest first)
    ups = sorted(first["incident_updates"], key=lambda u: u["created_at"])
    before, resolved_at = ups[-2]["created_at"], ups[-1]["created_at"]
    _serve(summary, listing, raws, before)
    assert tracker.once()[0] == 0
    # The incident left the summary; the copy still shows the page before the resolution.
    _serve(summary, listing, raws, resolved_at, copy_t=before)
    code, records, err = tracker.once()
    assert code == 0, err
    # not closed by inference (the copy will tell); other incidents may have moved on meanwhile
    assert [e for e in updates_of(records) if e["incident_id"] == first["id"] or e.get("inferred")] == []
    _serve(summary, listing, raws, resolved_at)
    code, records, err = tracker.once()
    [final] = [e for e in updates_of(records) if e["incident_id"] == first["id"]]
    assert (final["update_id"], final["status"], final["message"]) == (ups[-1]["id"], "resolved", ups[-1]["body"].strip())
    assert "inferred" not in final


@pytest.mark.slow
def test_a_view_failing_is_one_warning_per_outage_and_nothing_is_lost(server, tmp_path):
    summary, listing = server.route(SUMMARY), server.route(COPY)
    raws = week("W32")
    ts = moments(raws)
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "id": "openai", "url": f"{server.base}/openai",
                                                   "format": "incidentio", "interval": 1}], timeout=2)
    tracker = Tracker(config, tmp_path / "t.db")
    _serve(summary, listing, raws, ts[0])
    proc = tracker.start()
    try:
        deadline = time.monotonic() + 10
        while listing.requests == 0 and time.monotonic() < deadline:  # first contact at ts[0]
            time.sleep(0.05)
        time.sleep(0.5)
        phases = [("500", None), ("html", None), ("hang", None), (None, None), (None, "500"), (None, None)]
        step = len(ts) // len(phases)
        for n, (summary_fault, copy_fault) in enumerate(phases):
            t = ts[min(len(ts) - 1, (n + 1) * step)] if n < len(phases) - 1 else ts[-1]
            _serve(summary, listing, raws, t)
            summary.fault, listing.fault = summary_fault, copy_fault
            time.sleep(3.5 if summary_fault == "hang" else 2.5)
    finally:
        code, records, err, _ = Tracker.stop(proc)
    assert code == 0, err
    events = updates_of(records)
    keys = [(e["incident_id"], e["update_id"]) for e in events]
    assert sorted(keys) == sorted(texts(raws)) and len(keys) == len(set(keys))  # nothing lost, none twice
    assert all(e["message"] == texts(raws)[(e["incident_id"], e["update_id"])].strip() for e in events)
    assert [r["event"] for r in records if r["event"] == "first_contact"] == ["first_contact"]
    assert not [r for r in records if r["event"] == "poll_failed"]  # one view was always readable
    warnings = [(r["url"].rsplit("/openai", 1)[1], r["error"]) for r in records if r["event"] == "view_failed"]
    summary_warnings = [w for w in warnings if w[0] == "/proxy/127.0.0.1"]
    copy_warnings = [w for w in warnings if w[0] == "/api/v2/incidents.json"]
    # one per outage of a view, though the summary's changed its error twice (500, HTML, timeout)
    assert len(summary_warnings) == 1 and "HTTP 500" in summary_warnings[0][1]
    assert len(copy_warnings) == 1 and "HTTP 500" in copy_warnings[0][1]
    assert [r["url"].rsplit("/openai", 1)[1] for r in records if r["event"] == "view_recovered"] == [
        "/proxy/127.0.0.1", "/api/v2/incidents.json"]


def _old_tracker(tmp_path: Path) -> Path:
    """The tracker of the commit before the two views (it read the native list
    /proxy/<host>/incidents), extracted from git, migrations where its package expects them."""
    target = tmp_path / "old"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "70b5a5e", "tracker", "migrations"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    (target / "migrations").rename(target / "tracker" / "migrations")
    return target


@pytest.mark.slow
def test_a_database_of_the_native_list_reader_keeps_working_without_a_flood(server, tmp_path):
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "70b5a5e"], capture_output=True).returncode:
        pytest.skip("the git history with the previous version is not in this checkout")
    raws = week("W32")
    ts = moments(raws)
    mid = ts[len(ts) // 2]
    summary, listing = server.route(SUMMARY), server.route(COPY)
    _serve(summary, listing, raws, mid)
    # What the previous version read: the native list, every incident with every update so far.
    server.route(SUMMARY + "/incidents", {"incidents": [native(i) for i in copy_at(raws, mid)["incidents"]]})
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "id": "openai", "url": f"{server.base}/openai",
                                                   "format": "incidentio"}])
    old = _old_tracker(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(old)}
    p = subprocess.run([sys.executable, "-m", "tracker", "run", "--once", "--config", str(config), "--db",
                        str(tmp_path / "t.db"), "--log-format", "json"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    before = {(e["incident_id"], e["update_id"]) for e in updates_of(parse_lines(p.stdout))}
    assert before  # the previous version announced the open incident
    tracker = Tracker(config, tmp_path / "t.db")
    code, records, err = tracker.once()  # the same moment, read the new way
    assert code == 0, err
    assert updates_of(records) == [] and not [r for r in records if r["event"] == "first_contact"]
    _serve(summary, listing, raws, ts[-1])
    code, records, err = tracker.once()
    later = {(e["incident_id"], e["update_id"]) for e in updates_of(records)}
    assert later == {k for k in texts(raws) if k not in texts([i for i in copy_at(raws, mid)["incidents"]])}


def test_the_default_config_reads_both_views(server, tmp_path):
    summary, listing = server.route(SUMMARY), server.route(COPY)
    raws = week("W32")
    _serve(summary, listing, raws, moments(raws)[0])
    env = {**os.environ, "TRACKER_DEFAULT_URL": f"{server.base}/openai"}
    p = subprocess.run([*tracker_command(), "run", "--once", "--db", str(tmp_path / "t.db"), "--log-format", "json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    records = parse_lines(p.stdout)
    [contact] = [r for r in records if r["event"] == "first_contact"]
    assert (contact["provider_id"], contact["format"]) == ("openai", "incidentio")
    assert summary.requests == 1 and listing.requests == 1
    assert len(updates_of(records)) == 1


def test_backfill_walks_the_native_list_in_windows_and_asks_for_what_it_trims(server, tmp_path):
    summary, listing = server.route(SUMMARY), server.route(COPY)
    recent, older = week("W32"), week("W30") + week("W31")
    _serve(summary, listing, recent, moments(recent)[-1])
    everything = {i["id"]: i for i in copy_at(recent + older, moments(recent)[-1])["incidents"]}

    def window(path: str):
        query = parse_qs(urlsplit(path).query)
        start, end = query["start_at"][0].replace("Z", ".000Z"), query["end_at"][0].replace("Z", ".000Z")
        found = [native(i) for i in everything.values() if start <= i["created_at"].replace("Z", ".000Z") < end]
        for item in found:  # as the published captures of this list show it: the first update only
            item["updates"] = item["updates"][-1:]
        return {"incidents": found}

    server.route(SUMMARY + "/incidents").respond = window
    for incident_id, incident in everything.items():
        server.route(f"{SUMMARY}/incidents/{incident_id}", {"incident": native(incident)})
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "id": "openai", "url": f"{server.base}/openai",
                                                   "format": "incidentio"}])
    p = subprocess.run([*tracker_command(), "backfill", "--config", str(config), "--db", str(tmp_path / "t.db"),
                        "--log-format", "json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with sqlite3.connect(tmp_path / "t.db") as c:
        stored = {(i, u): m for i, u, m in c.execute("SELECT incident_id, update_id, message FROM updates")}
        statuses = dict(c.execute("SELECT incident_id, status FROM incidents"))
    assert stored == {k: v.strip() for k, v in texts(recent + older).items()}  # every update, its own words
    assert set(statuses.values()) == {"resolved"}
    windows = [q for q in server.routes[SUMMARY + "/incidents"].queries]
    assert 2 <= len(windows) <= 6 and all("start_at=" in q and "end_at=" in q for q in windows)
