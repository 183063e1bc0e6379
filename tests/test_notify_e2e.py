"""Notifications end to end (docs/contract.md §7): the real `tracker` command in subprocesses,
polling real captured pages on 127.0.0.1 and notifying receivers on 127.0.0.1 (tests/notifyserver.py:
an HTTP receiver that records and fails on demand, and a small SMTP server).

What is checked: every update reaches each destination once, in order, with the payload of
its type; a destination that is down holds up neither polling nor the log nor the other
destinations, and gets everything once, in order, when it is back; SIGKILLs during delivery
lose nothing; a daemon, `run --once` and `backfill --emit` sharing one database deliver each
update once per destination; filters and `backfill = false`; secrets appear in no output; the
receiver verifies the HMAC signature; a missing url_env variable is exit 78.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import sqlite3
import ssl
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Tracker, parse_lines, tracker_command, updates_of, write_config
from notifyserver import Receiver, SmtpReceiver, event_id_of, free_port
from pages import all_updates, cut, load, serve_statuspage

FIXTURES = Path(__file__).parent / "fixtures"
GITHUB = "github-incidents-2026-07-31.json"
CLOUDFLARE = "cloudflare-summary-2025-11-18T1444Z.json"
T0 = "2026-07-25T09:45:00.000Z"  # one incident open (1 update)
T1 = "2026-07-25T12:40:00.000Z"  # +5 updates
T2 = "2026-07-29T16:00:00.000Z"  # +10 (an incident opened and resolved between two polls)
T3 = "2026-07-31T00:00:00.000Z"  # +12
FAST = "100/s"  # chat destinations in tests that are not about pacing
HMAC_SECRET = "hmac-s3cret-value"


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["event_id"] for r in updates_of(records)]


def lanes(event_ids: list[str]) -> dict[str, list[str]]:
    """Event ids per provider, in the order given."""
    found: dict[str, list[str]] = {}
    for e in event_ids:
        found.setdefault(e.split(":", 1)[0], []).append(e)
    return found


def deliveries(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
    finally:
        conn.close()


def wait_for(check, timeout: float, step: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")


class Daemon:
    """`tracker run` in a subprocess, its stdout read line by line as it comes (each record
    with the time it arrived)."""

    def __init__(self, tracker: Tracker, *extra: str):
        self.proc = subprocess.Popen(tracker.args("run", *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.records: list[tuple[float, dict[str, Any]]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.records.append((time.monotonic(), json.loads(line)))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for _, r in list(self.records) if r["event"] == name]

    def stop(self, timeout: float = 20) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        self.thread.join(5)
        return self.proc.returncode, err


# -- every update, once, in order, with the payload of each type ---------------------------------

@pytest.mark.slow
def test_every_update_reaches_each_destination_once_in_order_with_its_payload(server, tmp_path, monkeypatch):
    payload = load(GITHUB)
    route = server.route("/github/api/v2/incidents.json", cut(payload, T0))
    with Receiver() as rcv, SmtpReceiver() as smtp:
        monkeypatch.setenv("HOOK_URL", f"{rcv.base}/hook/k3y")
        monkeypatch.setenv("HOOK_SECRET", HMAC_SECRET)
        monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{rcv.base}/slack/T0/B0/s3cr3t")
        monkeypatch.setenv("DISCORD_WEBHOOK_URL", f"{rcv.base}/discord/1/tok")
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", f"{rcv.base}/teams/workflows/sig")
        config = write_config(tmp_path / "tracker.toml", [{"name": "GitHub", "url": f"{server.base}/github"}], [
            {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"},
            {"type": "slack", "url_env": "SLACK_WEBHOOK_URL", "rate": FAST},
            {"type": "discord", "url_env": "DISCORD_WEBHOOK_URL", "rate": FAST},
            {"type": "teams", "url_env": "TEAMS_WEBHOOK_URL", "rate": FAST},
            {"type": "email", "smtp": f"127.0.0.1:{smtp.port}", "from": "tracker@example.com",
             "to": ["ops@example.com"], "starttls": False},
        ])
        tracker = Tracker(config, tmp_path / "tracker.db")
        logged: list[dict[str, Any]] = []
        for at in (T0, T1, T2, T3):
            route.set_json(cut(payload, at))
            code, records, err = tracker.once()
            assert code == 0, err
            assert not [r for r in records if r["event"].startswith("notify_")], records
            logged += updates_of(records)
        expected = [r["event_id"] for r in logged]
        assert len(expected) == len(set(expected)) == 28

        # Every type got every update once, in the order of the log.
        for path in ("/hook/k3y", "/slack/T0/B0/s3cr3t", "/discord/1/tok", "/teams/workflows/sig"):
            assert rcv.event_ids(path) == expected, path
        assert [m.message["X-Tracker-Event-Id"] for m in smtp.mails] == expected
        assert not rcv.failed and all(r.headers["User-Agent"].startswith("tracker/") for r in rcv.got)

        for record, hook, slack, discord, teams, mail in zip(
            logged, rcv.on("/hook/k3y"), rcv.on("/slack/T0/B0/s3cr3t"), rcv.on("/discord/1/tok"),
            rcv.on("/teams/workflows/sig"), smtp.mails,
        ):
            # webhook: the record as logged, its event id in a header, signed.
            body = hook.json
            assert {k: v for k, v in body.items() if k != "timestamp"} == \
                {k: v for k, v in record.items() if k != "timestamp"}
            assert hook.headers["X-Tracker-Event-Id"] == record["event_id"]
            expected_sig = "sha256=" + hmac.new(HMAC_SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(hook.headers["X-Tracker-Signature"], expected_sig)
            assert hook.headers["Content-Type"].startswith("application/json")

            # Slack: header, linked title, status/impact/provider/components, the message, a fallback.
            s = slack.json
            blocks = {b["type"]: b for b in s["blocks"]}
            assert blocks["header"]["text"]["text"].endswith(f"GitHub · {record['status']}")
            title = record["incident"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert s["blocks"][1]["text"]["text"] == f"<{record['url']}|*{title}*>"
            fields = [f["text"] for f in s["blocks"][2]["fields"]]
            assert fields[:3] == [f"*Status*\n{record['status']}", f"*Impact*\n{record['impact']}", "*Provider*\nGitHub"]
            assert fields[3] == "*Components*\n" + (", ".join(record["components"]) or "—")
            message = s["blocks"][3]["text"]["text"]
            assert message.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") == record["message"][:3000]
            assert s["text"].endswith(f"[GitHub] {record['status']}: {title}")

            # Discord: one embed.
            (embed,) = discord.json["embeds"]
            assert embed["title"] == record["incident"] and embed["url"] == record["url"]
            assert embed["description"] == record["message"]
            assert {f["name"]: f["value"] for f in embed["fields"]}["Status"] == record["status"]
            assert embed["footer"]["text"] == record["event_id"] and discord.json["allowed_mentions"] == {"parse": []}

            # Teams: an Adaptive Card 1.4 in a Workflows message.
            card = teams.json["attachments"][0]["content"]
            assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
            texts = [b.get("text") for b in card["body"]]
            assert record["incident"] in texts and record["message"] in texts
            assert card["actions"][0]["url"] == record["url"]

            # Mail: plain text, subject "[provider] status: incident".
            m = mail.message
            assert m["Subject"].strip() == f"[GitHub] {record['status']}: {record['incident']}"  # may be folded
            assert m["From"] == "tracker@example.com" and m["To"] == "ops@example.com"
            text = m.get_content().replace("\r\n", "\n")  # SMTP's line ends
            assert record["message"] in text and record["url"] in text
            assert mail.recipients == ["ops@example.com"] and not mail.tls

        # The database agrees: everything delivered once, nothing waiting.
        rows = deliveries(tracker.db)
        assert len(rows) == 5 * 28 and all(r["delivered_at"] and r["attempts"] == 1 for r in rows)


@pytest.mark.slow
def test_slack_is_paced_at_one_message_a_second_by_default(server, tmp_path, monkeypatch):
    payload = load(GITHUB)
    server.route("/github/api/v2/incidents.json", cut(payload, T0))
    with Receiver() as rcv:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{rcv.base}/slack/x")
        config = write_config(tmp_path / "tracker.toml", [{"name": "GitHub", "url": f"{server.base}/github"}],
                              [{"type": "slack", "url_env": "SLACK_WEBHOOK_URL"}])
        tracker = Tracker(config, tmp_path / "tracker.db")
        assert tracker.once()[0] == 0
        server.route("/github/api/v2/incidents.json", cut(payload, "2026-07-25T10:05:00.000Z"))  # +2 updates
        code, records, err = tracker.once()
        assert code == 0 and len(updates_of(records)) == 2, err
        times = [r.at for r in rcv.on("/slack/x")]
        assert len(times) == 3
        assert times[2] - times[1] >= 0.95  # Slack: one message per second per webhook


def test_edits_and_inferred_closings_are_delivered_as_such(server, tmp_path):
    summary = server.route("/gh/api/v2/summary.json",
                           json.loads((FIXTURES / "github-summary-2026-08-17T2110Z.json").read_bytes()))
    payload = load(GITHUB)
    incidents = server.route("/ghi/api/v2/incidents.json", payload)
    with Receiver() as rcv:
        config = write_config(tmp_path / "tracker.toml", [
            {"name": "GitHub", "id": "gh", "url": f"{server.base}/gh/api/v2/summary.json", "closing_grace": 0},
            {"name": "GitHub", "id": "ghi", "url": f"{server.base}/ghi"},
        ], [
            {"name": "hook", "type": "webhook", "url": f"{rcv.base}/hook"},
            {"name": "chat", "type": "slack", "url": f"{rcv.base}/chat", "rate": FAST},
        ])
        tracker = Tracker(config, tmp_path / "tracker.db")
        code, records, err = tracker.once()
        assert code == 0, err
        # The incident leaves the summary (closed by inference); an update's text changes.
        summary.set_json(json.loads((FIXTURES / "github-summary-2026-08-17T2142Z.json").read_bytes()))
        edited = json.loads(json.dumps(payload))
        body = next(u for i in edited["incidents"] for u in i["incident_updates"] if "We are investigating" in u["body"])
        body["body"] = body["body"].replace("We are investigating", "We are still investigating")
        incidents.set_json(edited)
        code, records, err = tracker.once()
        assert code == 0, err
    [closing] = [r for r in records if r["event"] == "incident_update" and r.get("inferred")]
    [edit] = [r for r in records if r["event"] == "incident_update_edited"]
    hooks = {r.json["event_id"]: r.json for r in rcv.on("/hook")}
    assert hooks[closing["event_id"]]["inferred"] is True and hooks[closing["event_id"]]["update_id"] == "closed"
    sent = hooks[edit["event_id"]]
    assert sent["event"] == "incident_update_edited" and ":edit:" in sent["event_id"]
    assert sent["previous_message"] == edit["previous_message"] and sent["message"] == edit["message"]
    chat = {event_id_of("/chat", r): json.dumps(r.json, ensure_ascii=False) for r in rcv.on("/chat")}
    assert "✅" in chat[closing["event_id"]] and "Closed by tracker" in chat[closing["event_id"]]
    assert "✏️ Edited" in chat[edit["event_id"]] and "Before: " in chat[edit["event_id"]]
    assert len(rcv.on("/hook")) == len(hooks) == len(rcv.on("/chat"))  # once each


# -- a destination that is down ------------------------------------------------------------------

@pytest.mark.slow
def test_a_destination_down_delays_nothing_and_gets_every_update_once_in_order_when_back(server, tmp_path):
    payload = load(GITHUB)
    route = server.route("/github/api/v2/incidents.json", cut(payload, T0))
    port = free_port()
    down = Receiver(port)  # not started: connections are refused
    with Receiver() as up:
        config = write_config(tmp_path / "tracker.toml", [{"name": "GitHub", "url": f"{server.base}/github"}], [
            {"name": "down", "type": "webhook", "url": f"http://127.0.0.1:{port}/hook", "timeout": 1},
            {"name": "up", "type": "webhook", "url": f"{up.base}/hook"},
        ], interval=1)
        tracker = Tracker(config, tmp_path / "tracker.db")
        daemon = Daemon(tracker)
        try:
            wait_for(lambda: daemon.events("incident_update"), 10, what="first contact")
            wait_for(lambda: any("connection refused" in (r["last_error"] or "")
                                 for r in deliveries(tracker.db) if r["destination"] == "down"), 10,
                     what="a refused delivery")
            listing = subprocess.run([*tracker_command(), "notify", "list", "--json", "--config", str(config),
                                      "--db", str(tracker.db)], capture_output=True, text=True, timeout=30)
            shown = {d["name"]: d for d in json.loads(listing.stdout)}
            assert shown["down"]["waiting"] == 1 and shown["down"]["failing"]["last_error"] == "connection refused"
            assert shown["up"]["waiting"] == 0 and shown["up"]["delivered"] == 1 and shown["up"]["failing"] is None
            # It comes back, badly at first: a 500, a 429 with Retry-After, a hang past the
            # timeout. Meanwhile the page moves on: polling and the log carry on, and so does
            # the destination that is up.
            down.script.extend(["500", "429", "hang"])
            down.start()
            published = time.monotonic()
            route.set_json(cut(payload, T1))
            wait_for(lambda: len(daemon.events("incident_update")) == 6, 10, what="T1 logged")
            logged_at = [t for t, r in daemon.records if r["event"] == "incident_update"][1:]
            assert max(logged_at) - published < 3.5, "the log waited for the destination"
            wait_for(lambda: len(up.on("/hook")) == 6, 5, what="the other destination")
            assert len(down.on("/hook")) == 0
            route.set_json(cut(payload, T2))
            wait_for(lambda: len(daemon.events("incident_update")) == 16, 10, what="T2 logged")
            wait_for(lambda: len(down.on("/hook")) == 16, 30, step=0.1, what="everything held delivered")
        finally:
            code, err = daemon.stop()
            down.stop()
        assert code == 0, err
        logged = [r["event_id"] for r in daemon.events("incident_update")]
        assert down.event_ids("/hook") == logged  # once each, in order
        assert up.event_ids("/hook") == logged
        assert [f for _, f, _ in down.failed] == ["500", "429", "hang"]
        # notify_failed: each of the first three failures in a row, then at most one per 10 minutes.
        failed = daemon.events("notify_failed")
        assert failed[0]["error"] == "connection refused" and len(failed) == 3
        assert {r["error"] for r in failed} <= {"connection refused", "HTTP 500: (an HTML page)",
                                                "HTTP 429: (an HTML page)", "no answer within 1 s"}
        assert all(r["destination"] == "down" and r["level"] == "warning" for r in failed)
        (recovered,) = daemon.events("notify_recovered")
        assert recovered["destination"] == "down" and recovered["failures"] >= 4
        assert recovered.get("unlogged", 0) == recovered["failures"] - 3
        # The 429's Retry-After (1 s) was honoured before the next attempt.
        after_429 = [at for _, f, at in down.failed if f == "hang"][0] - [at for _, f, at in down.failed if f == "429"][0]
        assert after_429 >= 0.95


@pytest.mark.slow
def test_past_the_retention_deliveries_are_dropped_and_said_so(server, tmp_path):
    payload = load(GITHUB)
    server.route("/github/api/v2/incidents.json", cut(payload, T1))
    port = free_port()  # refuses connections
    config = write_config(tmp_path / "tracker.toml", [{"name": "GitHub", "url": f"{server.base}/github"}], [
        {"name": "gone", "type": "webhook", "url": f"http://127.0.0.1:{port}/hook", "retention": 1}])
    tracker = Tracker(config, tmp_path / "tracker.db")
    code, records, err = tracker.once()  # tries, fails, leaves them queued
    assert code == 0, err
    time.sleep(1.1)
    code, more, err = tracker.once()  # the retention has passed: dropped
    assert code == 0, err
    announced = ids(records)
    dropped = [r for r in records + more if r["event"] == "notify_dropped"]
    assert len(announced) == 2 and sorted(r["event_id"] for r in dropped) == sorted(announced)
    assert all(r["level"] == "error" and r["destination"] == "gone" for r in dropped)
    # The head of the lane was tried (and refused); the one behind it waited its turn.
    assert [r["error"] for r in dropped] == ["connection refused", None]
    assert all(r["dropped_at"] and not r["delivered_at"] for r in deliveries(tracker.db))
    listing = subprocess.run([*tracker_command(), "notify", "list", "--json", "--config", str(config), "--db",
                              str(tracker.db)], capture_output=True, text=True, timeout=30)
    [gone] = json.loads(listing.stdout)
    assert (gone["waiting"], gone["delivered"], gone["dropped"]) == (0, 0, 2)
    with Receiver(port) as rcv:  # back: what was dropped stays dropped
        assert tracker.once()[0] == 0
        assert rcv.got == []


# -- crashes -------------------------------------------------------------------------------------

KILLS = 20
TAIL = 40  # the capture's last 40 updates, published one or two at a time while daemons die


@pytest.mark.slow
def test_sigkill_loop_during_delivery_loses_nothing(server, tmp_path, monkeypatch):
    started = time.monotonic()
    payload = load(GITHUB)
    moments = [at for at, _, _ in all_updates(payload)[-(TAIL + 1):]]
    bodies = [json.dumps(cut(payload, at)).encode() for at in moments]
    routes = {p: server.route(f"/{p}/api/v2/incidents.json") for p in ("a", "b")}
    for r in routes.values():
        r.body = bodies[0]
    rng = random.Random(20261128)
    with Receiver() as rcv:
        rcv.delay = 0.03  # each delivery takes a while: kills land in the middle of sending
        config = write_config(tmp_path / "tracker.toml",
                              [{"name": f"GitHub {p}", "id": p, "url": f"{server.base}/{p}"} for p in routes], [
            {"name": "one", "type": "webhook", "url": f"{rcv.base}/one"},
            {"name": "two", "type": "webhook", "url": f"{rcv.base}/two"},
        ], interval=1)
        tracker = Tracker(config, tmp_path / "tracker.db")
        position = dict.fromkeys(routes, 0)
        kills = 0
        while kills < KILLS or any(i < len(bodies) - 1 for i in position.values()):
            assert time.monotonic() - started < 45, f"loop bound: {kills} kills, pages at {position}"
            proc = subprocess.Popen(tracker.args("run"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + rng.uniform(0.4, 1.0)
            while time.monotonic() < deadline:  # the pages move on while it runs
                time.sleep(0.1)
                p = rng.choice(list(routes))
                position[p] = min(len(bodies) - 1, position[p] + rng.choice((0, 1, 2)))
                routes[p].body = bodies[position[p]]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
        # One clean run sends whatever the dead processes left.
        code, records, err = tracker.once(timeout=60)
        assert code == 0, err

    conn = sqlite3.connect(tracker.db)
    announced = {f"{p}:{i}:{u}" for p, i, u in conn.execute(
        "SELECT provider_id, incident_id, update_id FROM updates WHERE announce = 1")}
    waiting = conn.execute("SELECT count(*) FROM deliveries WHERE delivered_at IS NULL").fetchone()[0]
    unemitted = conn.execute("SELECT count(*) FROM updates WHERE announce = 1 AND emitted_at IS NULL").fetchone()[0]
    conn.close()
    assert len(announced) >= 2 * TAIL and waiting == 0 and unemitted == 0
    figures = {"kills": kills, "announced": len(announced), "seconds": round(time.monotonic() - started, 1)}
    for name in ("one", "two"):
        got = rcv.event_ids(f"/{name}")
        lost = announced - set(got)
        figures[name] = {"received": len(got), "distinct": len(set(got)), "duplicates": len(got) - len(set(got)),
                         "lost": len(lost)}
        assert not lost, f"{name}: {len(lost)} announced updates never delivered: {sorted(lost)[:5]}"
        assert set(got) <= announced
    print("kill loop:", json.dumps(figures))


# -- several processes on one database -----------------------------------------------------------

@pytest.mark.slow
def test_daemon_run_once_and_backfill_emit_deliver_each_update_once_per_destination(server, tmp_path):
    payload = load(GITHUB)
    page = cut(payload, T1)
    routes = serve_statuspage(server, "/gh", page, recent=8)
    with Receiver() as rcv:
        config = write_config(tmp_path / "tracker.toml", [{"name": "GitHub", "id": "gh", "url": f"{server.base}/gh"}], [
            {"name": "all", "type": "webhook", "url": f"{rcv.base}/all", "backfill": True},
            {"name": "live", "type": "webhook", "url": f"{rcv.base}/live"},
        ], interval=1)
        tracker = Tracker(config, tmp_path / "tracker.db")
        daemon = Daemon(tracker)
        logs: list[dict[str, Any]] = []
        try:
            wait_for(lambda: daemon.events("first_contact"), 10, what="first contact")
            backfill = subprocess.Popen(tracker.args("backfill", "--emit"), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
            for at in (T2, T3):
                routes["recent"].set_json({**payload, "incidents": sorted(
                    cut(payload, at)["incidents"], key=lambda i: i["created_at"], reverse=True)[:8]})
                code, records, err = tracker.once()
                assert code == 0, err
                logs += records
            out, err = backfill.communicate(timeout=60)
            assert backfill.returncode == 0, err
            logs += parse_lines(out)
            time.sleep(1.5)
        finally:
            code, err = daemon.stop()
        assert code == 0, err
        logs += [r for _, r in daemon.records]
        code, records, err = tracker.once()  # whatever is still waiting
        assert code == 0, err
        logs += records

    announced = updates_of(logs)
    every = Counter(r["event_id"] for r in announced)
    assert every and max(every.values()) == 1, "an update was announced twice"
    backfilled = {r["event_id"] for r in announced if r.get("backfill")}
    live = {r["event_id"] for r in announced if not r.get("backfill")}
    assert backfilled and live
    got_all, got_live = rcv.event_ids("/all"), rcv.event_ids("/live")
    assert Counter(got_all) == Counter(every), "each update once to the backfill = true destination"
    assert Counter(got_live) == Counter(live), "live updates once, backfill records never, to the other"
    assert all(r["delivered_at"] for r in deliveries(tracker.db))


# -- filters, backfill = false, secrets, config errors ------------------------------------------

@pytest.mark.slow
def test_filters_choose_what_each_destination_gets(server, tmp_path):
    payload = load(GITHUB)
    gh = server.route("/gh/api/v2/incidents.json", cut(payload, T0))
    server.route("/cf/api/v2/summary.json", load(CLOUDFLARE))
    with Receiver() as rcv:
        config = write_config(tmp_path / "tracker.toml", [
            {"name": "GitHub", "id": "gh", "url": f"{server.base}/gh"},
            {"name": "Cloudflare", "id": "cf", "url": f"{server.base}/cf/api/v2/summary.json", "format": "statuspage"},
        ], [
            {"name": "only-gh", "type": "webhook", "url": f"{rcv.base}/only-gh", "providers": ["gh"]},
            {"name": "maint", "type": "webhook", "url": f"{rcv.base}/maint", "kinds": ["maintenance"]},
            {"name": "major", "type": "webhook", "url": f"{rcv.base}/major", "min_impact": "major",
             "kinds": ["incident"]},
            {"name": "actions", "type": "webhook", "url": f"{rcv.base}/actions", "components": ["actions"]},
        ])
        tracker = Tracker(config, tmp_path / "tracker.db")
        logged: list[dict[str, Any]] = []
        for at in (T0, T2, T3):
            gh.set_json(cut(payload, at))
            code, records, err = tracker.once()
            assert code == 0, err
            logged += updates_of(records)

        touched = {i["id"]: {c["name"].lower() for c in i.get("components") or []}
                   | {c["name"].lower() for u in i["incident_updates"] for c in u.get("affected_components") or []
                      if isinstance(c, dict) and c.get("name")}
                   for i in payload["incidents"]}

        def expect(keep) -> dict[str, list[str]]:
            return lanes([r["event_id"] for r in logged if keep(r)])

        def got(path: str) -> dict[str, list[str]]:
            return lanes(rcv.event_ids(path))

        # Order is kept per provider (each provider's deliveries are a lane of their own).
        assert {r["provider_id"] for r in logged} == {"gh", "cf"}
        assert got("/only-gh") == expect(lambda r: r["provider_id"] == "gh")
        assert got("/maint") == expect(lambda r: r["kind"] == "maintenance") != {}
        assert got("/major") == expect(lambda r: r["kind"] == "incident" and r["impact"] in ("major", "critical")) != {}
        assert got("/actions") == expect(
            lambda r: "actions" in {c.lower() for c in r["components"]} | touched.get(r["incident_id"], set())) != {}


def test_backfill_records_go_only_where_backfill_is_true(server, tmp_path):
    payload = load(GITHUB)
    serve_statuspage(server, "/gh", cut(payload, T1), recent=5)
    with Receiver() as rcv:
        config = write_config(tmp_path / "tracker.toml", [{"name": "GitHub", "id": "gh", "url": f"{server.base}/gh"}], [
            {"name": "history", "type": "webhook", "url": f"{rcv.base}/history", "backfill": True},
            {"name": "live", "type": "webhook", "url": f"{rcv.base}/live"},
        ])
        tracker = Tracker(config, tmp_path / "tracker.db")
        p = subprocess.run(tracker.args("backfill", "--emit"), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        emitted = ids(parse_lines(p.stdout))
        assert len(emitted) > 50 and all(r.get("backfill") for r in updates_of(parse_lines(p.stdout)))
    assert rcv.event_ids("/history") == emitted
    assert rcv.on("/live") == []
    assert all(json.loads(r.body)["backfill"] is True for r in rcv.on("/history"))
    assert {r["destination"] for r in deliveries(tracker.db)} == {"history"}


SECRETS = ("T0SECRET", "XyZsEcReTtOkEn", HMAC_SECRET, "smtp-pa55word", "k3y-in-path")


@pytest.mark.slow
def test_secrets_appear_in_no_output(server, tmp_path, monkeypatch):
    payload = load(GITHUB)
    server.route("/github/api/v2/incidents.json", cut(payload, T1))
    with Receiver() as rcv:
        rcv.fault = "500"
        monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{rcv.base}/services/T0SECRET/B0SECRET/XyZsEcReTtOkEn")
        monkeypatch.setenv("HOOK_URL", f"http://127.0.0.1:{free_port()}/hooks/k3y-in-path")
        monkeypatch.setenv("HOOK_SECRET", HMAC_SECRET)
        monkeypatch.setenv("SMTP_USER", "tracker")
        monkeypatch.setenv("SMTP_PASSWORD", "smtp-pa55word")
        config = write_config(tmp_path / "tracker.toml", [{"name": "GitHub", "url": f"{server.base}/github"}], [
            {"type": "slack", "url_env": "SLACK_WEBHOOK_URL"},
            {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET", "timeout": 1},
            {"name": "mail", "type": "email", "smtp": f"127.0.0.1:{free_port()}", "from": "t@example.com",
             "to": "ops@example.com", "username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD", "timeout": 1,
             "starttls": True},
        ])
        tracker = Tracker(config, tmp_path / "tracker.db")
        outputs = []
        for args in (["--help"], ["run", "--help"], ["notify", "--help"], ["notify", "list", "--help"],
                     ["notify", "test", "--help"], ["config", "--help"]):
            p = subprocess.run([*tracker_command(), *args], capture_output=True, text=True, timeout=30)
            assert p.returncode == 0
            outputs.append(p.stdout + p.stderr)
        for level in ("debug",):
            p = subprocess.run(tracker.args("run", "--once", "--log-level", level), capture_output=True, text=True,
                               timeout=60)
            assert p.returncode == 0, p.stderr
            outputs.append(p.stdout + p.stderr)
        assert [r["destination"] for r in parse_lines(outputs[-1]) if r["event"] == "notify_failed"].count("slack")
        p = subprocess.run([*tracker_command(), "run", "--once", "--config", str(tracker.config), "--db",
                            str(tracker.db), "--log-format", "console"], capture_output=True, text=True, timeout=60)
        outputs.append(p.stdout + p.stderr)
        for args in (["notify", "list"], ["notify", "list", "--json"], ["config"], ["config", "--json"],
                     ["notify", "test", "slack"], ["notify", "test", "webhook"], ["notify", "test", "mail"]):
            p = subprocess.run([*tracker_command(), *args, "--config", str(tracker.config), "--db", str(tracker.db)],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == (1 if args[:2] == ["notify", "test"] else 0), (args, p.stderr)
            outputs.append(p.stdout + p.stderr)
        assert "not delivered: HTTP 500" in outputs[-3] and "not delivered: connection refused" in outputs[-2]
        assert "$SLACK_WEBHOOK_URL" in outputs[-7]
    text = "\n".join(outputs)
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked"


def test_missing_url_env_variable_is_exit_78_naming_file_key_and_variable(tmp_path):
    config = write_config(tmp_path / "tracker.toml", [{"name": "GitHub", "url": "http://127.0.0.1:9/gh"}],
                          [{"type": "slack", "url_env": "SLACK_WEBHOOK_URL"}])
    for args in (["run", "--once"], ["notify", "list"]):
        p = subprocess.run([*tracker_command(), *args, "--config", str(config), "--db", str(tmp_path / "t.db")],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 78
        assert p.stderr == f"Error: {config}: notify #1.url_env: SLACK_WEBHOOK_URL is not set\n"
        assert p.stdout == ""
    assert not (tmp_path / "t.db").exists()


# -- tracker notify test ---------------------------------------------------------------------------

def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_notify_test_sends_a_sample_and_says_so(tmp_path):
    with Receiver() as rcv:
        rcv.script.append("500")
        config = write_config(tmp_path / "tracker.toml", [], [
            {"name": "ops", "type": "webhook", "url": f"{rcv.base}/ops"}])
        run = [*tracker_command(), "notify", "test", "ops", "--config", str(config)]
        p = subprocess.run(run, capture_output=True, text=True, timeout=30)
        assert p.returncode == 1
        assert p.stderr == "Error: notify 'ops' (webhook, url in the config file (hidden)): not delivered: " \
                           "HTTP 500: (an HTML page)\n"
        p = subprocess.run(run, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert p.stdout == "Sent a test message to 'ops' (webhook, url in the config file (hidden)).\n"
        (got,) = rcv.on("/ops")
        assert got.json["test"] is True and got.json["incident"] == "Test notification from tracker"
        p = subprocess.run([*run[:3], "nope", *run[4:]], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "'nope' is not a configured destination (configured: ops)" in p.stderr
        assert not (tmp_path / "home" / ".local").exists()  # touches no database


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test certificate")
def test_mail_goes_through_starttls_with_login(tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with SmtpReceiver(tls=context) as smtp:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this one certificate
        monkeypatch.setenv("SMTP_USER", "tracker")
        monkeypatch.setenv("SMTP_PASSWORD", "smtp-pa55word")
        config = write_config(tmp_path / "tracker.toml", [], [
            {"name": "mail", "type": "email", "smtp": f"localhost:{smtp.port}", "from": "Tracker <t@example.com>",
             "to": ["a@example.com", "b@example.com"], "starttls": True, "username_env": "SMTP_USER",
             "password_env": "SMTP_PASSWORD"}])
        p = subprocess.run([*tracker_command(), "notify", "test", "mail", "--config", str(config)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        (mail,) = smtp.mails
        assert mail.tls and mail.login == ("tracker", "smtp-pa55word")
        assert mail.recipients == ["a@example.com", "b@example.com"]
        assert mail.message["Subject"] == "[tracker] investigating: Test notification from tracker"
        # A server that does not offer STARTTLS is refused, not spoken to in clear text.
    with SmtpReceiver() as plain:
        config.write_text(config.read_text().replace(str(smtp.port), str(plain.port)))
        p = subprocess.run([*tracker_command(), "notify", "test", "mail", "--config", str(config)],
                           capture_output=True, text=True, timeout=30, env={**os.environ})
        assert p.returncode == 1 and "does not offer STARTTLS" in p.stderr
        assert plain.mails == []
