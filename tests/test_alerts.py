"""Alerts that follow the incident (docs/contract.md §7): PagerDuty's Events API v2 and
Opsgenie's Alert API open one alert per incident and resolve it with the incident; Apprise
carries every update to the services it speaks.

The end-to-end tests run the real `tracker` command moment by moment over GitHub's real
summary.json of 2026-08-17 (the incident's real resolution in the page's incidents.json at
the end) and Cloudflare's real summary, against a receiver on 127.0.0.1 that records what each
API was sent (tests/notifyserver.py)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Tracker, tracker_command, updates_of, write_config
from notifyserver import Receiver
from test_real_pages import github_resolved

from tracker.notify import payloads
from tracker.notify.queue import alert_action

FIXTURES = Path(__file__).parent / "fixtures"
AFTERNOON = ["T1348Z", "T1503Z", "T2110Z"]  # GitHub's summary.json on 2026-08-17, then it resolves
ROUTING_KEY = "R0UT1NGk3ysecret0123456789abcdef"
API_KEY = "0g-api-k3y-5ecret-4567"
FAST = "100/s"


def data(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


# -- what each update does to the alert -----------------------------------------------------------


@pytest.mark.parametrize("kind, history, expected", [
    # PagerDuty: triggers fold into one alert; one resolve after them; nothing to resolve before
    ("pagerduty", [("open", None), ("open", "trigger"), ("closing", "trigger"), ("closing", "resolve")],
     ["trigger", "trigger", "resolve", None]),
    ("pagerduty", [("closing", None)], [None]),  # never triggered here: nothing to resolve
    ("pagerduty", [("edit", "trigger"), ("edit", "resolve"), ("open", "resolve")], ["trigger", None, "trigger"]),
    # Opsgenie: create once, notes after, close once; a new update after a close re-opens
    ("opsgenie", [("open", None), ("open", "create"), ("open", "note"), ("closing", "note"), ("closing", "close"),
                  ("open", "close")], ["create", "note", "note", "close", None, "create"]),
    ("opsgenie", [("edit", "create"), ("edit", "close"), ("edit", None)], ["note", None, None]),
])
def test_what_an_update_does_to_its_alert(kind, history, expected):
    got = [alert_action(kind, last, what == "closing", what == "edit") for what, last in history]
    assert got == expected


RECORD = {"event": "incident_update", "event_id": "github:zkxwbgr0cnmx:abc", "kind": "incident",
          "provider": "GitHub", "provider_id": "github", "incident_id": "zkxwbgr0cnmx", "update_id": "abc",
          "incident": "Incident with GitHub.com " + "x" * 2000, "status": "investigating", "impact": "critical",
          "components": ["Git Operations", "API Requests"], "message": "We are investigating.\nMore soon.",
          "created_at": "2026-08-17T13:40:00.000Z", "url": "https://www.githubstatus.com/incidents/zkxwbgr0cnmx"}


def test_a_pagerduty_trigger_and_resolve_as_the_events_api_takes_them():
    trigger = payloads.pagerduty(RECORD, "trigger", "key")
    assert (trigger["routing_key"], trigger["event_action"], trigger["dedup_key"]) == ("key", "trigger",
                                                                                        "github:zkxwbgr0cnmx")
    body = trigger["payload"]
    assert len(body["summary"]) <= 1024 and body["summary"].startswith("[GitHub] Incident with GitHub.com")
    assert (body["source"], body["severity"]) == ("GitHub", "critical")
    assert body["custom_details"]["message"] == "We are investigating.\nMore soon."
    assert body["custom_details"]["components"] == ["Git Operations", "API Requests"]
    assert trigger["links"] == [{"href": RECORD["url"], "text": "The incident on the status page"}]
    for impact, severity in [("major", "error"), ("minor", "warning"), ("none", "info")]:
        assert payloads.pagerduty({**RECORD, "impact": impact}, "trigger", "k")["payload"]["severity"] == severity
    assert payloads.pagerduty({**RECORD, "kind": "maintenance", "impact": "maintenance"}, "trigger", "k")[
        "payload"]["severity"] == "info"
    assert payloads.pagerduty(RECORD, "resolve", "key") == {"routing_key": "key", "event_action": "resolve",
                                                            "dedup_key": "github:zkxwbgr0cnmx"}
    long_id = {**RECORD, "incident_id": "tag:example.com,2005:Incident/" + "9" * 300}
    key = payloads.pagerduty(long_id, "resolve", "k")["dedup_key"]
    assert len(key) <= 255 and key.startswith("github:") and key == payloads.alert_key(long_id, 255)


def test_opsgenie_create_note_and_close_address_the_alert_by_its_alias():
    path, create = payloads.opsgenie(RECORD, "create")
    assert path == "/v2/alerts"
    assert len(create["message"]) <= 130 and create["message"].startswith("[GitHub] Incident with GitHub.com")
    assert (create["alias"], create["priority"]) == ("github:zkxwbgr0cnmx", "P1")
    assert "We are investigating." in create["description"]
    path, note = payloads.opsgenie(RECORD, "note")
    assert path == "/v2/alerts/github%3Azkxwbgr0cnmx/notes?identifierType=alias"
    assert note["note"].startswith("investigating: We are investigating.")
    path, close = payloads.opsgenie({**RECORD, "status": "resolved", "message": "Resolved."}, "close")
    assert path == "/v2/alerts/github%3Azkxwbgr0cnmx/close?identifierType=alias" and "Resolved." in close["note"]


# -- configuration --------------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*tracker_command(), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def config(tmp_path: Path, notify: list[dict[str, Any]], providers: list[dict[str, Any]] | None = None) -> Path:
    return write_config(tmp_path / "t.toml", providers or [{"name": "GitHub", "id": "github",
                                                              "url": "https://www.githubstatus.com"}], notify)


def test_pagerduty_and_opsgenie_keys_come_from_the_environment_and_are_never_shown(tmp_path):
    path = config(tmp_path, [{"type": "pagerduty", "routing_key_env": "PD_KEY"},
                             {"type": "opsgenie", "api_key_env": "OG_KEY", "url": "https://api.eu.opsgenie.com"}])
    missing = run("config", "--config", str(path))
    assert missing.returncode == 78 and missing.stderr.count("\n") == 1 and "PD_KEY is not set" in missing.stderr
    shown = run("config", "--json", "--config", str(path), env={"PD_KEY": ROUTING_KEY, "OG_KEY": API_KEY})
    assert shown.returncode == 0, shown.stderr
    pd, og = json.loads(shown.stdout)["notify"]
    assert (pd["type"], pd["endpoint"], pd["routing_key"]) == ("pagerduty", "https://events.pagerduty.com/v2/enqueue",
                                                               "$PD_KEY")
    assert (og["endpoint"], og["api_key"]) == ("https://api.eu.opsgenie.com", "$OG_KEY")
    assert pd["kinds"] == og["kinds"] == ["incident"] and pd["edits"] is False  # a pager's defaults
    assert ROUTING_KEY not in shown.stdout + shown.stderr and API_KEY not in shown.stdout + shown.stderr


def test_an_apprise_url_apprise_does_not_understand_stops_the_config(tmp_path):
    path = config(tmp_path, [{"type": "apprise", "url_env": "APPRISE_URL"}])
    bad = run("config", "--config", str(path), env={"APPRISE_URL": "nosuchservice://t0ken-s3cret@example"})
    assert bad.returncode == 78 and bad.stderr.count("\n") == 1, bad.stderr
    assert "APPRISE_URL holds a URL Apprise does not understand" in bad.stderr
    assert "'nosuchservice'" in bad.stderr and "t0ken-s3cret" not in bad.stderr
    good = run("config", "--json", "--config", str(path), env={"APPRISE_URL": "ntfy://ntfy.example/t0ken-s3cret"})
    assert good.returncode == 0, good.stderr
    [shown] = json.loads(good.stdout)["notify"]
    assert shown["url"] == "$APPRISE_URL" and shown["edits"] is True and "t0ken-s3cret" not in good.stdout


# -- end to end -----------------------------------------------------------------------------------


def sent(rcv: Receiver, prefix: str) -> list[tuple[str, dict]]:
    return [(r.path, r.json) for r in rcv.got if r.path.startswith(prefix)]


@pytest.mark.slow
def test_a_replayed_afternoon_opens_one_alert_and_resolves_it_once(server, tmp_path):
    summary, history = server.route("/gh/api/v2/summary.json"), server.route("/gh/api/v2/incidents.json")
    history.status = 404  # until the resolution is there
    with Receiver() as rcv:
        path = config(tmp_path, [
            {"type": "pagerduty", "routing_key_env": "PD_KEY", "url": f"{rcv.base}/pd/v2/enqueue", "rate": FAST},
            {"type": "opsgenie", "api_key_env": "OG_KEY", "url": f"{rcv.base}/og", "rate": FAST},
            {"type": "apprise", "url_env": "APPRISE_URL", "rate": FAST},
        ], [{"name": "GitHub", "id": "github", "url": f"{server.base}/gh/api/v2/summary.json"}])
        env = {"PD_KEY": ROUTING_KEY, "OG_KEY": API_KEY,
               "APPRISE_URL": f"json://127.0.0.1:{rcv.port}/apprise/t0ken-s3cret"}
        outputs, announced = [], []
        for moment in [*AFTERNOON, "T2142Z"]:
            summary.set_json(data(f"github-summary-2026-08-17{moment}.json"))
            if moment == "T2142Z":
                history.set_json(github_resolved())
            p = run("run", "--once", "--config", str(path), "--db", str(tmp_path / "t.db"), "--log-format", "json",
                    env=env)
            assert p.returncode == 0, p.stderr
            outputs.append(p.stdout + p.stderr)
            announced += [r["event_id"] for r in updates_of([json.loads(line) for line in p.stdout.splitlines()])]
    assert len(announced) == 36 and announced[-1] == "github:zkxwbgr0cnmx:zkxres0lved1"

    pd = sent(rcv, "/pd/")
    assert [e["event_action"] for _, e in pd] == ["trigger"] * 35 + ["resolve"]
    assert {e["dedup_key"] for _, e in pd} == {"github:zkxwbgr0cnmx"} and {e["routing_key"] for _, e in pd} == {
        ROUTING_KEY}
    assert pd[0][1]["payload"]["severity"] == "critical"

    og = sent(rcv, "/og/")
    assert [p.split("?")[0] for p, _ in og] == (["/og/v2/alerts"] + ["/og/v2/alerts/github%3Azkxwbgr0cnmx/notes"] * 34
                                                 + ["/og/v2/alerts/github%3Azkxwbgr0cnmx/close"])
    assert og[0][1]["alias"] == "github:zkxwbgr0cnmx" and "This incident has been resolved" in og[-1][1]["note"]
    assert {r.headers.get("Authorization") for r in rcv.got if r.path.startswith("/og/")} == {f"GenieKey {API_KEY}"}

    apprise = sent(rcv, "/apprise/")
    assert len(apprise) == 36  # every update, once
    assert apprise[-1][1]["title"].endswith("[GitHub] resolved: Incident with GitHub.com")
    assert "This incident has been resolved." in apprise[-1][1]["message"]
    for text in outputs:
        assert ROUTING_KEY not in text and API_KEY not in text and "t0ken-s3cret" not in text


@pytest.mark.slow
def test_maintenance_pages_a_pager_only_when_asked(server, tmp_path):
    server.route("/cf/api/v2/summary.json", data("cloudflare-summary-2025-11-18T1444Z.json"))
    with Receiver() as rcv:
        path = config(tmp_path, [
            {"name": "pager", "type": "pagerduty", "routing_key_env": "PD_KEY", "url": f"{rcv.base}/pd",
             "rate": FAST},
            {"name": "pager-all", "type": "pagerduty", "routing_key_env": "PD_KEY", "url": f"{rcv.base}/pdall",
             "rate": FAST, "kinds": ["incident", "maintenance"], "min_impact": "critical"},
        ], [{"name": "Cloudflare", "id": "cf", "url": f"{server.base}/cf/api/v2/summary.json"}])
        p = run("run", "--once", "--config", str(path), "--db", str(tmp_path / "t.db"), "--log-format", "json",
                env={"PD_KEY": ROUTING_KEY})
        assert p.returncode == 0, p.stderr
    pager, everything = sent(rcv, "/pd"), sent(rcv, "/pdall")
    pager = [e for path, e in pager if path == "/pd"]
    assert len(pager) == 14 and {e["payload"]["class"] for e in pager} == {"incident"}  # the 14 incident updates
    assert {e["dedup_key"] for e in pager} == {f"cf:{i['id']}" for i in data(
        "cloudflare-summary-2025-11-18T1444Z.json")["incidents"]}
    # asked for maintenance (and only critical incidents): the 66 maintenance updates and the 13 critical ones
    assert len(everything) == 66 + 13 and sum(e["payload"]["class"] == "maintenance" for _, e in everything) == 66


def test_notify_test_leaves_no_alert_open(tmp_path):
    with Receiver() as rcv:
        path = config(tmp_path, [
            {"name": "pd", "type": "pagerduty", "routing_key_env": "PD_KEY", "url": f"{rcv.base}/pd"},
            {"name": "og", "type": "opsgenie", "api_key_env": "OG_KEY", "url": f"{rcv.base}/og"},
            {"name": "chat", "type": "apprise", "url_env": "APPRISE_URL"},
        ])
        env = {"PD_KEY": ROUTING_KEY, "OG_KEY": API_KEY, "APPRISE_URL": f"json://127.0.0.1:{rcv.port}/apprise"}
        results = [run("notify", "test", name, "--config", str(path), env=env) for name in ("pd", "og", "chat")]
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert results[0].stdout.startswith("Sent trigger and resolve to 'pd'")
    assert results[1].stdout.startswith("Sent create and close to 'og'")
    pd = sent(rcv, "/pd")
    assert [e["event_action"] for _, e in pd] == ["trigger", "resolve"] and pd[0][1]["dedup_key"] == pd[1][1]["dedup_key"]
    og = sent(rcv, "/og")
    assert [p.split("?")[0] for p, _ in og] == ["/og/v2/alerts", "/og/v2/alerts/tracker%3Atest/close"]
    assert len(sent(rcv, "/apprise")) == 1
    assert all(ROUTING_KEY not in r.stdout + r.stderr and API_KEY not in r.stdout + r.stderr for r in results)


@pytest.mark.slow
def test_a_rate_limited_pager_gets_its_resolve_after_its_triggers(server, tmp_path):
    """PagerDuty answering 429 (Retry-After) to the first trigger: retried, and the resolve
    never overtakes the triggers queued before it."""
    summary, history = server.route("/gh/api/v2/summary.json"), server.route("/gh/api/v2/incidents.json")
    summary.set_json(data("github-summary-2026-08-17T2110Z.json"))
    history.status = 404
    with Receiver() as rcv:
        rcv.script.extend(["429", "429"])
        rcv.retry_after = "1"
        path = config(tmp_path, [{"type": "pagerduty", "routing_key_env": "PD_KEY", "url": f"{rcv.base}/pd",
                                  "rate": FAST}],
                      [{"name": "GitHub", "id": "github", "url": f"{server.base}/gh/api/v2/summary.json",
                        "interval": 1}])
        tracker = Tracker(path, tmp_path / "t.db")
        proc = subprocess.Popen(tracker.args("run"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PD_KEY": ROUTING_KEY})
        try:
            deadline = time.monotonic() + 30
            while len(sent(rcv, "/pd")) < 35 and time.monotonic() < deadline:
                time.sleep(0.1)
            history.set_json(github_resolved())
            summary.set_json(data("github-summary-2026-08-17T2142Z.json"))
            while len(sent(rcv, "/pd")) < 36 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            code, records, err, _ = Tracker.stop(proc)
    assert code == 0, err
    assert [e["event_action"] for _, e in sent(rcv, "/pd")] == ["trigger"] * 35 + ["resolve"]
    assert len(rcv.failed) == 2 and [r["event"] for r in records if r["event"] == "notify_failed"]
