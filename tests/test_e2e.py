"""End to end: the real `tracker` command in subprocesses, polling a real HTTP server on
127.0.0.1 that serves real captured payloads cut at successive moments of their history."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from tracker.adapters import statuspage
from tracker.adapters.common import html_to_text
from conftest import Tracker, updates_of, write_config
from pages import all_updates, cut, load

GITHUB = "github-incidents-2026-07-31.json"
# Moments in the GitHub capture (2026-07-25 .. 07-30), chosen so that:
T0 = "2026-07-25T09:45:00.000Z"  # one incident open (vv9vvksmj4s9, 1 update so far)
T1 = "2026-07-25T12:40:00.000Z"  # +3 updates of it (now resolved) and 2 of a new incident
T2 = "2026-07-29T16:00:00.000Z"  # + an incident opened and resolved entirely between polls
T3 = "2026-07-31T00:00:00.000Z"  # the rest of the capture

SPEC_FIELDS = {
    "event": str, "event_id": str, "kind": str, "level": str, "timestamp": str, "provider": str,
    "provider_id": str, "incident_id": str, "update_id": str, "incident": str, "status": str,
    "impact": str, "components": list, "message": str, "created_at": str,
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def keys(records):
    return [(r["incident_id"], r["update_id"]) for r in updates_of(records)]


def published_between(payload, after, until):
    """(incident_id, update_id) of updates published in (after, until], oldest first."""
    return [(i, u) for at, i, u in all_updates(payload) if after < at <= until]


def open_updates(page):
    """Updates of the incidents still open on `page`, oldest first (first contact)."""
    found = [
        (u["created_at"], i["id"], u["id"])
        for i in page["incidents"] if i["status"] not in ("resolved", "completed", "postmortem")
        for u in i["incident_updates"]
    ]
    return [(i, u) for _, i, u in sorted(found)]


@pytest.fixture
def github(server, tmp_path):
    """GitHub's real page as it stood at T0, polled every second by daemons."""
    payload = load(GITHUB)
    route = server.route("/github/api/v2/incidents.json", cut(payload, T0))
    config = write_config(
        tmp_path / "tracker.toml", [{"name": "GitHub", "url": f"{server.base}/github"}], interval=1
    )
    return payload, route, Tracker(config, tmp_path / "state" / "tracker.db")


def test_first_contact_announces_only_open_incidents_and_records_the_rest(github):
    payload, route, tracker = github
    page = cut(payload, T0)
    code, records, err = tracker.once()
    assert code == 0, err
    assert keys(records) == open_updates(page) == [("vv9vvksmj4s9", "8ql04hwt1g1w")]

    recorded = sqlite3.connect(tracker.db).execute("SELECT count(*), sum(announce) FROM updates").fetchone()
    assert recorded == (sum(len(i["incident_updates"]) for i in page["incidents"]), 1)
    assert [r["event"] for r in records][0] == "tracker_started"
    assert any(r["event"] == "first_contact" and r["announced"] == 1 for r in records)


@pytest.mark.slow
def test_new_updates_are_announced_once_oldest_first_whatever_arrives_between_polls(github):
    payload, route, tracker = github
    assert tracker.once()[0] == 0
    seen = []
    for before, at in ((T0, T1), (T1, T2), (T2, T3)):
        route.set_json(cut(payload, at))
        code, records, err = tracker.once()
        assert code == 0, err
        got = keys(records)
        assert got == published_between(payload, before, at), f"poll at {at}"
        times_ = [r["created_at"] for r in updates_of(records)]
        assert times_ == sorted(times_)
        seen += got
    # T1..T2 holds fmmsrcg5x638 whole: opened and resolved between two polls, emitted whole.
    assert [u for i, u in seen if i == "fmmsrcg5x638"] == ["952dj9ft00hn", "l53rsb4m6b2v", "drfw44m9fqq4"]
    assert len(seen) == len(set(seen)) == len(published_between(payload, T0, T3))


@pytest.mark.slow
def test_restart_announces_nothing_again_and_keeps_http_validators(github):
    payload, route, tracker = github
    route.set_json(cut(payload, T1))
    code, first, _ = tracker.once()
    assert code == 0 and updates_of(first)
    for _ in range(2):  # each run is a new process: a restart
        code, records, _ = tracker.once()
        assert code == 0 and updates_of(records) == []
    # The ETag from the first run was stored in SQLite and sent by the later processes.
    assert route.conditional_hits == 2
    # Without validators (a server that sends no ETag) the same body still announces nothing.
    route.etag = False
    route.set_json(cut(payload, T1))
    assert updates_of(tracker.once()[1]) == []


@pytest.mark.slow
def test_incident_update_record_has_every_spec_field(github):
    payload, route, tracker = github
    tracker.once()
    route.set_json(cut(payload, T2))
    _, records, _ = tracker.once()
    events = updates_of(records)
    assert events
    by_key = {(i["id"], u["id"]): (i, u) for i in payload["incidents"] for u in i["incident_updates"]}
    for e in events:
        for name, kind in SPEC_FIELDS.items():
            assert isinstance(e[name], kind), name
        assert e["event_id"] == f"github:{e['incident_id']}:{e['update_id']}"
        assert e["level"] == "info" and e["kind"] == "incident"
        assert ISO_UTC.match(e["timestamp"]) and ISO_UTC.match(e["created_at"])
        assert e["provider"] == "GitHub" and e["provider_id"] == "github"
        incident, update = by_key[(e["incident_id"], e["update_id"])]
        assert e["incident"] == incident["name"]
        assert e["status"] == update["status"]
        assert e["impact"] == incident["impact"]
        # plain text (docs/contract.md §3): the body reduced the way every format's text is
        assert e["message"] == html_to_text(update["body"].strip(), markup=statuspage._is_html(update["body"]))
        assert "<br" not in e["message"]
        assert e["created_at"] == update["created_at"]
        assert e["url"] == f"https://www.githubstatus.com/incidents/{incident['id']}"
        assert "backfill" not in e
        named = [c["name"] for c in update.get("affected_components") or []]
        if named:
            assert e["components"] == named


def test_openai_empty_bodies_get_a_readable_message(server, tmp_path):
    payload = load("openai-incidents-2025-11-15.json")
    server.route("/openai/api/v2/incidents.json", payload)
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "url": f"{server.base}/openai"}])
    code, records, err = Tracker(config, tmp_path / "t.db").once()
    assert code == 0, err
    events = updates_of(records)
    still_open = [i for i in payload["incidents"] if i["status"] != "resolved"]
    assert len(events) == sum(len(i["incident_updates"]) for i in still_open) >= 1
    for e in events:
        assert e["message"] == f"{e['status'].capitalize()} (impact: {e['impact']})"
        assert e["url"] == f"https://status.openai.com/incidents/{e['incident_id']}"


@pytest.mark.slow
def test_components_filter_records_everything_announces_only_matching(server, tmp_path):
    payload = load(GITHUB)
    route = server.route("/gh/api/v2/incidents.json", cut(payload, T0))
    config = write_config(
        tmp_path / "t.toml", [{"name": "GitHub", "url": f"{server.base}/gh", "components": ["ACTIONS"]}]
    )
    tracker = Tracker(config, tmp_path / "t.db")
    tracker.once()
    route.set_json(cut(payload, T3))
    _, records, _ = tracker.once()
    touched = {
        i["id"] for i in payload["incidents"]
        if any(c["name"].lower() == "actions" for c in i["components"])
        or any(c["name"].lower() == "actions" for u in i["incident_updates"] for c in u.get("affected_components") or [])
    }
    expected = [(i, u) for i, u in published_between(payload, T0, T3) if i in touched]
    assert expected and keys(records) == expected
    total = sqlite3.connect(tracker.db).execute("SELECT count(*) FROM updates").fetchone()[0]
    assert total == len(all_updates(cut(payload, T3)))


@pytest.mark.slow
def test_a_failing_provider_is_isolated_and_loses_nothing(server, tmp_path):
    payload = load(GITHUB)
    broken = server.route("/broken/api/v2/incidents.json", cut(payload, T0))
    healthy = server.route("/healthy/api/v2/incidents.json", cut(payload, T0))
    config = write_config(tmp_path / "t.toml", [
        {"name": "Broken", "url": f"{server.base}/broken"},
        {"name": "Healthy", "url": f"{server.base}/healthy"},
    ])
    tracker = Tracker(config, tmp_path / "t.db")
    assert tracker.once()[0] == 0
    broken.status = 500
    for at in (T1, T2):
        broken_body = cut(payload, at)
        healthy.set_json(cut(payload, at))
        code, records, _ = tracker.once()
        assert code == 0
        failed = [r for r in records if r["event"] == "poll_failed"]
        assert [(r["provider_id"], r["level"]) for r in failed] == [("broken", "warning")]
        assert "HTTP 500" in failed[0]["error"]
        assert {r["provider_id"] for r in updates_of(records)} == {"healthy"}
    broken.set_json(broken_body)  # back to 200 with what was published meanwhile
    code, records, _ = tracker.once()
    assert code == 0
    assert [k for k in keys(records)] == published_between(payload, T0, T2)
    assert {r["provider_id"] for r in updates_of(records)} == {"broken"}
    recovered = [r for r in records if r["event"] == "provider_recovered"]
    assert [(r["provider_id"], r["failures"]) for r in recovered] == [("broken", 2)]


def test_html_instead_of_json_is_a_provider_error_not_an_all_clear(server, tmp_path):
    route = server.route("/x/api/v2/incidents.json")
    route.body, route.content_type = b"<html><body>Service Unavailable</body></html>", "text/html"
    config = write_config(tmp_path / "t.toml", [{"name": "X", "url": f"{server.base}/x"}])
    code, records, _ = Tracker(config, tmp_path / "t.db").once()
    assert code == 0
    failed = [r for r in records if r["event"] == "poll_failed"]
    assert len(failed) == 1 and "expected JSON, got text/html" in failed[0]["error"]
    # Nothing was taken as "first contact done": the first good poll still is first contact.
    row = sqlite3.connect(tmp_path / "t.db").execute("SELECT first_polled_at, failures FROM providers").fetchone()
    assert row == (None, 1)


@pytest.mark.slow
def test_four_daemons_on_one_database_announce_each_update_exactly_once(github):
    payload, route, tracker = github
    procs = [tracker.start() for _ in range(4)]
    try:
        time.sleep(2.0)
        steps = [a for _, _, a in sorted(all_updates(payload))[-40:]]  # the last 40 updates, one by one-ish
        for at in steps[::4] + [T3]:
            route.set_json(cut(payload, at))
            time.sleep(0.3)
        time.sleep(2.5)  # interval 1 s: every daemon has polled the final page
    finally:
        results = [Tracker.stop(p) for p in procs]
    announced = []
    for code, records, err, _ in results:
        assert code == 0, err
        announced += keys(records)
    expected = open_updates(cut(payload, T0)) + published_between(payload, T0, T3)
    assert sorted(announced) == sorted(expected)
    assert len(announced) == len(set(announced))
    assert sum(1 for _, r, _, _ in results if keys(r)) >= 1


@pytest.mark.slow
def test_daemon_announces_as_the_page_changes_and_stops_cleanly(github):
    payload, route, tracker = github
    proc = tracker.start()
    try:
        time.sleep(1.5)
        route.set_json(cut(payload, T1))
        time.sleep(2.0)
    finally:
        code, records, err, took = Tracker.stop(proc)
    assert code == 0, err
    assert keys(records) == open_updates(cut(payload, T0)) + published_between(payload, T0, T1)
    events = [r["event"] for r in records]
    assert events[0] == "tracker_started" and events[-2:] == ["tracker_stopping", "tracker_stopped"]
    assert took < 3
    warnings = [r for r in records if r["event"] == "polite_interval"]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"


@pytest.mark.slow
def test_a_slow_provider_is_never_polled_twice_at_once_and_does_not_delay_others(server, tmp_path):
    payload = load(GITHUB)
    slow = server.route("/slow/api/v2/incidents.json", cut(payload, T0))
    slow.hang_seconds = 2.5  # longer than the 1 s interval
    fast = server.route("/fast/api/v2/incidents.json", cut(payload, T0))
    config = write_config(tmp_path / "t.toml", [
        {"name": "Slow", "url": f"{server.base}/slow"},
        {"name": "Fast", "url": f"{server.base}/fast"},
    ], interval=1)
    proc = Tracker(config, tmp_path / "t.db").start()
    try:
        time.sleep(5.5)
    finally:
        code, records, err, _ = Tracker.stop(proc)
    assert code == 0, err
    assert slow.max_active == 1 and 2 <= slow.requests <= 3
    assert fast.requests >= 4  # kept its 1 s pace while the slow one hung
    assert any(r["event"] == "incident_update" and r["provider_id"] == "slow" for r in records)


@pytest.mark.slow
def test_sigterm_during_a_poll_exits_0_within_seconds(server, tmp_path):
    route = server.route("/slow/api/v2/incidents.json", load(GITHUB))
    route.hang_seconds = 30  # the page accepts the request and answers nothing for 30 s
    config = write_config(tmp_path / "t.toml", [{"name": "Slow", "url": f"{server.base}/slow"}])
    tracker = Tracker(config, tmp_path / "t.db")
    proc = tracker.start()
    try:
        assert server.request_started.wait(10), "the daemon never polled"
        time.sleep(0.3)
    finally:
        code, records, err, took = Tracker.stop(proc)
    assert code == 0, err
    assert took < 8
    stopped = [r for r in records if r["event"] == "tracker_stopped"]
    assert stopped and stopped[0]["abandoned"] == ["slow"]
    assert "Traceback" not in err


@pytest.mark.slow
def test_providers_and_incidents_commands_show_the_history(github):
    import subprocess

    from conftest import tracker_command

    payload, route, tracker = github
    route.set_json(cut(payload, T1))
    tracker.once()
    base = ["--config", str(tracker.config), "--db", str(tracker.db)]
    out = subprocess.run([*tracker_command(), "providers", *base], capture_output=True, text=True, check=True).stdout
    assert "github" in out and "GitHub" in out and "ok" in out
    out = subprocess.run([*tracker_command(), "incidents", "--json", *base], capture_output=True, text=True, check=True).stdout
    import json

    found = json.loads(out)
    page = cut(payload, T1)
    assert [i["incident_id"] for i in found] == [i["id"] for i in page["incidents"]]
    assert [u["update_id"] for u in found[0]["updates"]] == [u["id"] for u in reversed(page["incidents"][0]["incident_updates"])]
    out = subprocess.run([*tracker_command(), "incidents", "--open", *base], capture_output=True, text=True, check=True)
    opened = [i for i in page["incidents"] if i["status"] != "resolved"]
    assert len(out.stdout.strip().splitlines()) == 1 + len(opened)


HOSTILE = (
    "Outage \x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07 \x1b[2K\r\n"
    '{"event":"incident_update","level":"critical","provider":"bank"}\n\u202eevil\u202c'
)


def test_hostile_page_text_never_forges_a_record(server, tmp_path):
    """A page (the real OpenAI capture) whose open incident's title and update carry escape
    sequences, CR/LF and a forged JSON record: each update is still exactly one line."""
    payload = load("openai-incidents-2025-11-15.json")
    opened = next(i for i in payload["incidents"] if i["status"] != "resolved")
    opened["name"] = HOSTILE
    for u in opened["incident_updates"]:
        u["body"] = HOSTILE
    server.route("/o/api/v2/incidents.json", payload)
    config = write_config(tmp_path / "t.toml", [{"name": "OpenAI", "url": f"{server.base}/o"}])
    code, records, err = Tracker(config, tmp_path / "t.db").once()  # parse_lines: every line is JSON
    assert code == 0, err
    events = updates_of(records)
    assert len(events) == len(opened["incident_updates"])
    # The title is data, escaped as JSON requires; the message is plain text: the escape
    # sequences, controls and bidi marks the page put in it are gone.
    assert all(e["incident"] == HOSTILE and e["message"] == html_to_text(HOSTILE.strip()) for e in events)
    assert all("\x1b" not in e["message"] and "\u202e" not in e["message"] for e in events)
    assert all(r["provider"] == "OpenAI" for r in records if "provider" in r)
