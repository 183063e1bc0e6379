"""tracker backfill against a whole Statuspage page served from 127.0.0.1 (a real capture's
incidents behind incidents.json, /history?page=N and /api/v2/incidents/<id>.json)."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time

import pytest
from conftest import Tracker, parse_lines, tracker_command, updates_of, write_config
from pages import all_updates, load, serve_statuspage

from tracker.store import Store

GITHUB = "github-incidents-2026-07-31.json"


def _site(server, tmp_path, db):
    payload = load(GITHUB)
    routes = serve_statuspage(server, "/gh", payload, recent=20)
    config = write_config(tmp_path / "t.toml", [{"name": "GitHub", "url": f"{server.base}/gh"}], interval=1)
    return payload, routes, Tracker(config, db)


@pytest.fixture
def site(server, tmp_path):
    """GitHub's 50 real incidents; incidents.json shows only the newest 20 of them, so the
    other 30 are reachable only through the history pages."""
    return _site(server, tmp_path, tmp_path / "t.db")


@pytest.fixture
def either_site(server, tmp_path, db):
    """`site` on each engine (conftest's `db`)."""
    return _site(server, tmp_path, db)


def backfill(tracker: Tracker, *extra: str, timeout: float = 60) -> tuple[int, list[dict], str]:
    p = subprocess.run(tracker.args("backfill", *extra), capture_output=True, text=True, timeout=timeout)
    return p.returncode, parse_lines(p.stdout), p.stderr


def recorded(tracker: Tracker) -> set[tuple[str, str]]:
    store = Store.open_readonly(tracker.db)
    try:
        return {tuple(r) for r in store.conn.execute("SELECT incident_id, update_id FROM updates")}
    finally:
        store.close()


@pytest.mark.slow
def test_silent_backfill_records_all_history_then_run_announces_nothing(either_site):
    payload, routes, tracker = either_site
    code, records, err = backfill(tracker)
    assert code == 0, err
    assert updates_of(records) == []
    everything = {(i, u) for _, i, u in all_updates(payload)}
    assert recorded(tracker) == everything  # 287 updates, 30 of the 50 incidents via history
    (summary,) = [r for r in records if r["event"] == "backfill_provider"]
    assert (summary["incidents"], summary["new"], summary["emitted"]) == (50, 287, 0)
    assert routes["history1"].requests == 1 and sum(routes[i["id"]].requests for i in payload["incidents"]) == 30
    assert routes["recent"].requests == 1  # `format = "auto"`: the probe's read of it was used
    code, records, err = tracker.once()
    assert code == 0 and updates_of(records) == []  # first contact does not re-fire


@pytest.mark.slow
def test_emit_announces_every_update_once_oldest_first_marked_backfill(site):
    payload, routes, tracker = site
    code, records, err = backfill(tracker, "--emit")
    assert code == 0, err
    events = updates_of(records)
    assert [(e["incident_id"], e["update_id"]) for e in events] == [(i, u) for _, i, u in all_updates(payload)]
    assert all(e["backfill"] is True for e in events)
    assert [e["created_at"] for e in events] == sorted(e["created_at"] for e in events)
    code, records, err = backfill(tracker, "--emit")  # already recorded: nothing again
    assert code == 0 and updates_of(records) == []


@pytest.mark.slow
def test_second_run_resumes_without_refetching_what_is_recorded(site):
    payload, routes, tracker = site
    details = [routes[i["id"]] for i in payload["incidents"]]
    assert backfill(tracker)[0] == 0
    before = sum(r.requests for r in details)
    code, records, err = backfill(tracker)
    assert code == 0, err
    assert sum(r.requests for r in details) == before  # closed and recorded: skipped
    assert routes["history1"].conditional_hits == 1  # and the history page answered 304


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_recorded_and_a_second_run_finishes(site):
    payload, routes, tracker = site
    for inc in payload["incidents"]:
        routes[inc["id"]].hang_seconds = 0.15  # a slow page: the walk takes ~5 s
    proc = subprocess.Popen(tracker.args("backfill"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    partial = recorded(tracker)
    everything = {(i, u) for _, i, u in all_updates(payload)}
    assert 0 < len(partial) < len(everything)
    (summary,) = [r for r in parse_lines(out) if r["event"] == "backfill_provider"]
    assert summary["interrupted"] is True
    fetched_first = sum(routes[i["id"]].requests for i in payload["incidents"])
    code, records, err = backfill(tracker)
    assert code == 0, err
    assert recorded(tracker) == everything
    fetched_both = sum(routes[i["id"]].requests for i in payload["incidents"])
    assert fetched_both <= 30 + 1  # each older incident fetched once (the one in flight maybe twice)
    assert fetched_first < 30


@pytest.mark.slow
def test_backfill_beside_a_running_daemon_announces_each_update_at_most_once(either_site):
    payload, routes, tracker = either_site
    daemon = tracker.start()
    try:
        time.sleep(0.5)
        runs = [backfill(tracker, "--emit") for _ in range(2)]
        time.sleep(1.5)
    finally:
        code, daemon_records, err, _ = Tracker.stop(daemon)
    assert code == 0, err
    announced = [(e["incident_id"], e["update_id"]) for e in updates_of(daemon_records)]
    for code, records, err in runs:
        assert code == 0, err
        assert "database is locked" not in err
        announced += [(e["incident_id"], e["update_id"]) for e in updates_of(records)]
    assert len(announced) == len(set(announced))
    assert recorded(tracker) == {(i, u) for _, i, u in all_updates(payload)}
    assert not any(r["event"] == "store_failed" for r in daemon_records)


@pytest.mark.slow
def test_retry_after_is_honoured_and_a_page_without_history_is_fine(site, server, tmp_path):
    payload, routes, tracker = site
    routes["history1"].fault = "429"  # Retry-After: 3
    proc = subprocess.Popen(tracker.args("backfill"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    routes["history1"].fault = None
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert routes["history1"].requests == 2  # asked once, waited, asked again
    assert recorded(tracker) == {(i, u) for _, i, u in all_updates(payload)}

    # incident.io's Statuspage copy (OpenAI) has no history pages: incidents.json is all.
    openai = load("openai-incidents-2025-11-15.json")
    server.route("/openai/api/v2/incidents.json", openai)
    config = write_config(tmp_path / "o.toml", [{"name": "OpenAI", "url": f"{server.base}/openai"}])
    code, records, err = backfill(Tracker(config, tmp_path / "o.db"))
    assert code == 0, err
    assert any(r["event"] == "backfill_note" and "no history pages" in r["detail"] for r in records)
    (summary,) = [r for r in records if r["event"] == "backfill_provider"]
    assert summary["new"] == sum(len(i["incident_updates"]) for i in openai["incidents"])


def test_since_bounds_how_far_back_it_goes(site):
    payload, routes, tracker = site
    since = "2026-07-01"
    code, records, err = backfill(tracker, "--since", since)
    assert code == 0, err
    with sqlite3.connect(tracker.db) as c:
        kept = {r[0] for r in c.execute("SELECT incident_id FROM incidents")}
    assert kept == {i["id"] for i in payload["incidents"] if i["created_at"] >= since}
    # The walk stopped once a history page was wholly older than --since.
    assert sum(1 for k, r in routes.items() if k.startswith("history") and r.requests) < len(
        [k for k in routes if k.startswith("history")])


def test_unknown_provider_is_a_usage_error(site):
    payload, routes, tracker = site
    code, records, err = backfill(tracker, "--provider", "nope")
    assert code == 2 and "'nope' not configured (configured: github)" in err


def test_incidents_csv(site):
    payload, routes, tracker = site
    backfill(tracker)
    p = subprocess.run([*tracker_command(), "incidents", "--csv", "--db", str(tracker.db), "--config",
                        str(tracker.config)], capture_output=True, text=True, check=True)
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert len(rows) == 50
    by_id = {i["id"]: i for i in payload["incidents"]}
    for row in rows:
        assert row["title"] == by_id[row["incident_id"]]["name"]
        assert int(row["update_count"]) == len(by_id[row["incident_id"]]["incident_updates"])


def test_exit_1_when_no_provider_could_be_read_and_0_when_one_could(site, server, tmp_path):
    payload, routes, tracker = site
    server.route("/down/api/v2/incidents.json").fault = "500"
    down = write_config(tmp_path / "down.toml", [{"name": "Down", "url": f"{server.base}/down",
                                                  "format": "statuspage"}])
    code, records, err = backfill(Tracker(down, tmp_path / "d.db"))
    assert code == 1, err  # a oneshot unit must not go green having recorded nothing
    assert "no provider could be read" in err and "Traceback" not in err
    assert [r["event"] for r in records if r["event"].startswith("backfill_")][-2:] == [
        "backfill_failed", "backfill_complete"]
    both = write_config(tmp_path / "both.toml", [
        {"name": "Down", "url": f"{server.base}/down", "format": "statuspage"},
        {"name": "GitHub", "url": f"{server.base}/gh"}])
    code, records, err = backfill(Tracker(both, tmp_path / "b.db"))
    assert code == 0, err
    (done,) = [r for r in records if r["event"] == "backfill_complete"]
    assert done["failed"] == 1


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(site):
    payload, routes, tracker = site
    routes["history1"].fault = "hang"  # answers nothing for 8 s
    proc = subprocess.Popen(tracker.args("backfill"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not routes["history1"].requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert proc.poll() is None  # the first one waits for the request in flight…
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)  # …the second does not
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and time.monotonic() - started < 2, err
    assert "Traceback" not in err
    parse_lines(out)  # whatever was logged is whole lines
    assert recorded(tracker)  # incidents.json was recorded before the hang


def _on_a_terminal(args: list[str], interrupt_after: float | None = None) -> tuple[int, list[str]]:
    """Run `args` with stdout and stderr on one pseudo-terminal, as a person would; return the
    exit code and the lines as the terminal shows them (each line's text after its last
    carriage return / erase-line)."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    started = time.monotonic()
    sent = False
    while True:
        if interrupt_after is not None and not sent and time.monotonic() - started > interrupt_after:
            proc.send_signal(signal.SIGINT)
            sent = True
        try:
            import select

            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                data = os.read(master, 65536)
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                continue
        except OSError:  # EIO: the child closed the terminal
            break
    os.close(master)
    code = proc.wait(timeout=30)
    text = b"".join(chunks).decode()
    shown = []
    for line in text.replace("\r\n", "\n").split("\n"):
        visible = line.rsplit("\r", 1)[-1].replace("\x1b[K", "")
        if visible.strip():
            shown.append(visible)
    return code, shown


def _records_and_progress(lines: list[str]) -> tuple[list[dict], list[str]]:
    import json

    records, progress = [], []
    for line in lines:
        if line.startswith("{"):
            records.append(json.loads(line))  # a record is a whole line: never the bar's
        else:
            progress.append(line)
    return records, progress


def test_progress_counts_requests_and_never_shares_a_line_with_a_record(site):
    payload, routes, tracker = site
    code, lines = _on_a_terminal(tracker.args("backfill"))
    assert code == 0, lines
    records, progress = _records_and_progress(lines)
    assert {"backfill_started", "backfill_provider", "backfill_complete"} <= {r["event"] for r in records}
    # The line left on screen: the end state, counting requests and pages, not providers only.
    (final,) = progress
    (summary,) = [r for r in records if r["event"] == "backfill_provider"]
    assert final.startswith("Backfilling: 1/1 providers done, ")
    assert f"{summary['requests']} requests" in final and f"{summary['history_pages']} history pages" in final
    assert summary["requests"] > 30  # incidents.json, the history pages and 30 incident details


@pytest.mark.slow
def test_an_interrupted_backfill_shows_as_interrupted_not_done(site):
    payload, routes, tracker = site
    for inc in payload["incidents"]:
        routes[inc["id"]].hang_seconds = 0.15  # a slow page: the walk takes ~5 s
    code, lines = _on_a_terminal(tracker.args("backfill"), interrupt_after=1.5)
    assert code == 130, lines
    records, progress = _records_and_progress(lines)
    assert any(re.match(r"Interrupted after \d+ requests, \d+ history pages, \d+ new updates", line)
               for line in progress), progress
    assert not any(line.startswith("Backfilling: 1/1") for line in progress)
    assert any("run the same command again to resume" in line for line in progress)
