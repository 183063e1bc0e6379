"""Lifecycle truth on every format (docs/contract.md §3, §4), through the real `tracker` command
against a 127.0.0.1 server serving real captures cut at moments: what leaves a page that lists
only open incidents is closed (once, across processes), what is edited is told (once), a moved
page starts afresh, and filters decide what is announced while everything is recorded."""

from __future__ import annotations

import codecs
import copy
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import Tracker, tracker_command, updates_of, write_config

FIXTURES = Path(__file__).parent / "fixtures"
AFTERNOON = ["T1348Z", "T1503Z", "T2110Z", "T2142Z"]  # GitHub's summary.json on 2026-08-17


def data(name: str):
    return json.loads((FIXTURES / name).read_bytes())


def summary(moment: str) -> dict:
    return data(f"github-summary-2026-08-17{moment}.json")


def closings(records):
    return [r for r in updates_of(records) if r.get("inferred")]


def edits_of(records):
    return [r for r in records if r["event"] == "incident_update_edited"]


@pytest.fixture
def github_summary(server, tmp_path):
    route = server.route("/gh/api/v2/summary.json")
    # closing_grace = 0: these scenarios test inference itself (no history view answers here)
    config = write_config(tmp_path / "t.toml", [{"name": "GitHub", "id": "github",
                                                   "url": f"{server.base}/gh/api/v2/summary.json",
                                                   "closing_grace": 0}])
    return route, Tracker(config, tmp_path / "t.db")


@pytest.mark.slow
def test_github_summary_afternoon_closes_the_incident_that_left_the_page_once(github_summary):
    route, tracker = github_summary
    counts = []
    for moment in AFTERNOON[:3]:
        route.set_json(summary(moment))
        code, records, err = tracker.once()
        assert code == 0, err
        counts.append(len(updates_of(records)))
        assert not closings(records)
    assert counts == [6, 11, 18]  # first contact (the open incident), then what each scrape added

    route.set_json(summary("T2142Z"))  # the incident is no longer listed
    code, records, err = tracker.once()
    assert code == 0, err
    [closed] = updates_of(records)
    assert closed["inferred"] is True and closed["update_id"] == "closed" and closed["status"] == "resolved"
    assert closed["incident_id"] == "zkxwbgr0cnmx" and closed["event_id"] == "github:zkxwbgr0cnmx:closed"
    assert closed["message"] == "No longer listed on the status page"
    assert closed["incident"] == summary("T2110Z")["incidents"][0]["name"]
    # Nothing more: not on the next poll, not after a restart (each once() is a new process).
    for _ in range(2):
        code, records, err = tracker.once()
        assert code == 0 and updates_of(records) == []
    p = subprocess.run([*tracker_command(), "incidents", "--open", "--json", "--config", str(tracker.config),
                        "--db", str(tracker.db)], capture_output=True, text=True)
    assert p.returncode == 0 and json.loads(p.stdout) == []


@pytest.mark.slow
def test_two_processes_close_the_incident_once_in_total(github_summary):
    route, tracker = github_summary
    route.set_json(summary("T2110Z"))
    assert tracker.once()[0] == 0
    route.set_json(summary("T2142Z"))
    procs = [subprocess.Popen(tracker.args("run", "--once"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    found = [json.loads(line) for out, _ in outs for line in out.splitlines()]
    assert [r["update_id"] for r in closings(found)] == ["closed"]


@pytest.mark.parametrize("fault", ["500", "html", "truncated"])
@pytest.mark.slow
def test_a_failed_poll_closes_nothing_and_the_empty_page_after_it_closes_once(github_summary, fault):
    route, tracker = github_summary
    route.set_json(summary("T2110Z"))
    assert tracker.once()[0] == 0
    route.fault = fault
    code, records, err = tracker.once()
    assert code == 0 and [r["event"] for r in records if r["event"] == "poll_failed"] == ["poll_failed"]
    assert updates_of(records) == []
    route.fault = None
    route.set_json(summary("T2142Z"))
    code, records, err = tracker.once()
    assert [r["update_id"] for r in closings(records)] == ["closed"]


@pytest.mark.slow
def test_an_incident_that_comes_back_is_announced_and_its_second_closing_is_closed_2(github_summary):
    route, tracker = github_summary
    listed = summary("T2110Z")
    route.set_json(listed)
    assert tracker.once()[0] == 0
    route.set_json(summary("T2142Z"))
    assert [r["update_id"] for r in closings(tracker.once()[1])] == ["closed"]
    back = copy.deepcopy(listed)  # the page lists it again, with one more update (as a re-opening does)
    newest = back["incidents"][0]["incident_updates"][0]
    back["incidents"][0]["incident_updates"].insert(0, {
        **newest, "id": "reopened0001", "status": "investigating", "body": "We are seeing errors again.",
        "created_at": "2026-08-17T21:50:00.000Z", "display_at": "2026-08-17T21:50:00.000Z"})
    route.set_json(back)
    code, records, err = tracker.once()
    assert [(r["update_id"], r["message"]) for r in updates_of(records)] == [("reopened0001", "We are seeing errors again.")]
    route.set_json(summary("T2142Z"))
    code, records, err = tracker.once()
    assert [r["update_id"] for r in closings(records)] == ["closed-2"]


def test_slack_going_all_clear_closes_its_incident(server, tmp_path):
    active = data("slack-status-current-2026-09-01.json")
    route = server.route("/api/v2.0.0/current")
    route.set_json(active)
    config = write_config(tmp_path / "t.toml", [{"name": "Slack", "url": f"{server.base}", "format": "slack",
                                                   "closing_grace": 0}])
    tracker = Tracker(config, tmp_path / "t.db")
    code, records, err = tracker.once()
    assert code == 0 and updates_of(records)
    # All clear, as the API says it (the shape of the 2024 capture, which had no incident)
    clear = {**data("slack-status-current-2024-02-27T1725Z.json"), "date_updated": "2026-09-01T12:00:00-07:00"}
    route.set_json(clear)
    code, records, err = tracker.once()
    [closed] = updates_of(records)
    assert closed["inferred"] and closed["incident_id"] == str(active["active_incidents"][0]["id"])


@pytest.mark.slow
def test_the_azure_feed_emptying_closes_its_incident(server, tmp_path):
    route = server.route("/en-us/status/feed/")
    route.body, route.content_type = (FIXTURES / "azure-status-feed-2026-07-23.xml").read_bytes(), "application/rss+xml"
    config = write_config(tmp_path / "t.toml", [{"name": "Azure", "url": f"{server.base}/en-us/status/feed/",
                                                   "closing_grace": "0s"}])
    tracker = Tracker(config, tmp_path / "t.db")
    code, records, err = tracker.once()
    assert code == 0 and len(updates_of(records)) == 1
    opened = updates_of(records)[0]
    # The real empty channel of 2026-09-25: the feed lists only open communications (its
    # channel links to Azure's status page, whatever host serves it)
    route.body = (FIXTURES / "azure-status-feed-empty-2026-09-25.xml").read_bytes()
    code, records, err = tracker.once()
    [closed] = updates_of(records)
    assert closed["inferred"] and closed["incident_id"] == opened["incident_id"] and closed["status"] == "resolved"


@pytest.mark.slow
def test_aws_current_events_losing_an_event_closes_it(server, tmp_path):
    events = json.loads((FIXTURES / "aws-health-currentevents-2026-07-02.utf16be.json").read_bytes())
    route = server.route("/public/currentevents")

    def serve(items):
        route.body = codecs.BOM_UTF16_BE + json.dumps(items).encode("utf-16-be")

    serve(events)
    config = write_config(tmp_path / "t.toml", [{"name": "AWS", "url": f"{server.base}/public/currentevents",
                                                   "format": "aws"}], closing_grace=0)
    tracker = Tracker(config, tmp_path / "t.db")
    code, records, err = tracker.once()
    assert code == 0, err
    serve(events[1:])
    code, records, err = tracker.once()
    closed = closings(records)
    assert len(closed) == 1 and closed[0]["update_id"] == "closed"


# -- edits --------------------------------------------------------------------------------


@pytest.fixture
def github_incidents(server, tmp_path):
    route = server.route("/gh/api/v2/incidents.json")
    payload = data("github-incidents-2026-07-31.json")
    route.set_json(payload)
    config = write_config(tmp_path / "t.toml", [{"name": "GitHub", "id": "github", "url": f"{server.base}/gh"}])
    return route, payload, Tracker(config, tmp_path / "t.db")


def _edit_first_body(payload: dict, old: str, new: str) -> tuple[str, str]:
    """Change a real body the way GitHub did ("on Mon" became "on Wed")."""
    for inc in payload["incidents"]:
        for u in inc["incident_updates"]:
            if old in u["body"]:
                u["body"] = u["body"].replace(old, new)
                return inc["id"], u["id"]
    raise AssertionError(f"no body contains {old!r}")


@pytest.mark.slow
def test_an_edited_update_is_announced_once_as_an_edit(github_incidents):
    route, payload, tracker = github_incidents
    assert tracker.once()[0] == 0
    edited = copy.deepcopy(payload)
    incident_id, update_id = _edit_first_body(edited, "We are investigating", "We are still investigating")
    route.set_json(edited)
    code, records, err = tracker.once()
    assert code == 0, err
    assert updates_of(records) == []
    [edit] = edits_of(records)
    assert (edit["incident_id"], edit["update_id"]) == (incident_id, update_id)
    assert "We are still investigating" in edit["message"] and "We are investigating" in edit["previous_message"]
    assert edit["event_id"].startswith(f"github:{incident_id}:{update_id}:edit:") and len(edit["event_id"].split(":edit:")[1]) == 12
    # Not again: the next poll, a restart, a second process.
    for _ in range(2):
        code, records, err = tracker.once()
        assert edits_of(records) == [] and updates_of(records) == []
    with sqlite3.connect(tracker.db) as c:
        [(message,)] = c.execute("SELECT message FROM updates WHERE update_id = ?", (update_id,))
    assert "We are still investigating" in message


@pytest.mark.slow
def test_an_upgrade_that_cleans_text_differently_announces_no_edits(github_incidents):
    route, payload, tracker = github_incidents
    assert tracker.once()[0] == 0
    # A database written by the version before: raw HTML bodies stored as messages, no digests.
    bodies = {u["id"]: u["body"] for i in payload["incidents"] for u in i["incident_updates"]}
    with sqlite3.connect(tracker.db) as c:
        c.executemany("UPDATE updates SET message = ?, source_sha256 = NULL WHERE update_id = ?",
                      [(body.strip(), uid) for uid, body in bodies.items()])
        assert c.execute("SELECT count(*) FROM updates WHERE message LIKE '%<br />%'").fetchone()[0] == 61
    route.set_json({**payload, "page": {**payload["page"], "updated_at": "2026-08-01T00:00:00.000Z"}})
    code, records, err = tracker.once()
    assert code == 0 and edits_of(records) == [] and updates_of(records) == []
    with sqlite3.connect(tracker.db) as c:  # the digests adopted silently
        assert c.execute("SELECT count(*) FROM updates WHERE source_sha256 IS NULL").fetchone()[0] == 0


# -- a moved page --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_changed_url_is_a_new_first_contact(server, tmp_path):
    server.route("/gh/api/v2/incidents.json", data("github-incidents-2026-07-31.json"))
    server.route("/dbx/api/v2/incidents.json", data("dropbox-incidents-2024-01-03.json"))
    db = tmp_path / "t.db"
    first = write_config(tmp_path / "a.toml", [{"name": "P", "id": "p", "url": f"{server.base}/gh"}])
    assert Tracker(first, db).once()[0] == 0
    moved = write_config(tmp_path / "b.toml", [{"name": "P", "id": "p", "url": f"{server.base}/dbx"}])
    code, records, err = Tracker(moved, db).once()
    assert code == 0, err
    [info] = [r for r in records if r["event"] == "url_changed"]
    assert info["previous_url"] == f"{server.base}/gh" and info["url"] == f"{server.base}/dbx"
    assert [r["event"] for r in records if r["event"] == "first_contact"] == ["first_contact"]
    dropbox = data("dropbox-incidents-2024-01-03.json")
    still_open = {i["id"] for i in dropbox["incidents"] if i["status"] not in ("resolved", "completed", "postmortem")}
    assert {r["incident_id"] for r in updates_of(records)} <= still_open  # none of its history


# -- filters -------------------------------------------------------------------------------


@pytest.mark.slow
def test_kinds_min_impact_and_a_components_typo(server, tmp_path):
    cloudflare = data("cloudflare-summary-2025-11-18T1444Z.json")
    server.route("/cf/api/v2/summary.json", cloudflare)
    url = f"{server.base}/cf/api/v2/summary.json"
    incident_updates = sum(len(i["incident_updates"]) for i in cloudflare["incidents"])
    config = write_config(tmp_path / "a.toml", [{"name": "CF", "url": url, "kinds": ["incident"]}])
    code, records, err = Tracker(config, tmp_path / "a.db").once()
    assert code == 0, err
    assert len(updates_of(records)) == incident_updates == 14  # not the 66 maintenance updates
    assert {r["kind"] for r in updates_of(records)} == {"incident"}

    config = write_config(tmp_path / "b.toml", [{"name": "CF", "url": url, "min_impact": "major"}], kinds=["incident"])
    code, records, err = Tracker(config, tmp_path / "b.db").once()
    assert {r["impact"] for r in updates_of(records)} == {"critical"}
    with sqlite3.connect(tmp_path / "b.db") as c:  # everything is still recorded
        assert c.execute("SELECT count(*) FROM updates").fetchone()[0] == 80

    config = write_config(tmp_path / "c.toml", [{"name": "CF", "url": url, "components": ["Dashbord"]}])
    code, records, err = Tracker(config, tmp_path / "c.db").once()
    [warning] = [r for r in records if r["event"] == "components_unknown"]
    assert warning["components"] == ["Dashbord"] and warning["level"] == "warning"
    assert updates_of(records) == []


def test_maintenance_records_say_when(server, tmp_path):
    cloudflare = data("cloudflare-summary-2025-11-18T1444Z.json")
    server.route("/cf/api/v2/summary.json", cloudflare)
    config = write_config(tmp_path / "t.toml", [{"name": "CF", "url": f"{server.base}/cf/api/v2/summary.json",
                                                   "kinds": ["maintenance"]}])
    code, records, err = Tracker(config, tmp_path / "t.db").once()
    windows = {m["id"]: (m["scheduled_for"], m["scheduled_until"]) for m in cloudflare["scheduled_maintenances"]}
    events = updates_of(records)
    assert events and all(e["kind"] == "maintenance" for e in events)
    for e in events:
        assert (e["scheduled_for"], e["scheduled_until"]) == windows[e["incident_id"]]
