"""`tracker catalog check` (docs/contract.md §5) through the real command, against pages on
127.0.0.1 that do each thing a catalog entry's page can do: answer in its format, move to
another host, answer in another platform's format, vanish, refuse, or break."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

from conftest import tracker_command
from statusserver import StatusServer

FIXTURES = Path(__file__).parent / "fixtures"


def write_catalog(path: Path, entries: list[tuple[str, str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "url", "format", "source"])
        for eid, url, fmt in entries:
            w.writerow([eid, eid.title(), url, fmt, "test"])
    return path


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*tracker_command(), "catalog", "check", *args], capture_output=True, text=True, timeout=60)


def test_each_outcome_of_a_catalog_check(tmp_path):
    github = (FIXTURES / "github-incidents-2026-07-31.json").read_bytes()
    slack = (FIXTURES / "slack-status-current-2026-09-01.json").read_bytes()
    with StatusServer() as srv, StatusServer() as elsewhere:
        srv.route("/ok/api/v2/incidents.json").body = github
        srv.route("/moved/api/v2/incidents.json").location = f"{elsewhere.base}/moved/api/v2/incidents.json"
        elsewhere.route("/moved/api/v2/incidents.json").body = github
        srv.route("/wrong/api/v2/incidents.json").body = slack  # the entry says statuspage; it is Slack's API
        for path, status in [("/blocked", 403), ("/limited", 429), ("/broken", 500)]:
            srv.route(f"{path}/api/v2/incidents.json").status = status
        catalog = write_catalog(tmp_path / "catalog.csv", [
            ("ok", f"{srv.base}/ok", "statuspage"),
            ("moved", f"{srv.base}/moved", "statuspage"),
            ("wrong", f"{srv.base}/wrong", "statuspage"),
            ("gone", f"{srv.base}/gone", "statuspage"),  # no such page: 404
            ("nxdomain", "https://status.nonexistent.invalid", "statuspage"),
            ("blocked", f"{srv.base}/blocked", "statuspage"),
            ("limited", f"{srv.base}/limited", "statuspage"),
            ("broken", f"{srv.base}/broken", "statuspage"),
        ])
        p = check("--catalog", str(catalog), "--json", "--timeout", "5")
        asked = {path: route.requests for path, route in srv.routes.items()}
    assert p.returncode == 1, p.stderr
    found = {r["id"]: r for r in json.loads(p.stdout)}
    assert {i: r["result"] for i, r in found.items()} == {
        "ok": "ok", "moved": "moved", "wrong": "wrong-format", "gone": "gone", "nxdomain": "gone",
        "blocked": "blocked", "limited": "blocked", "broken": "failing"}
    assert found["moved"]["new_url"] == f"{elsewhere.base}/moved"
    assert found["wrong"]["reads_as"] == "slack" and found["wrong"]["detail"] == "reads as slack"
    assert found["gone"]["detail"] == "HTTP 404" and found["nxdomain"]["detail"].startswith(
        "cannot resolve status.nonexistent.invalid")
    assert found["blocked"]["detail"] == "HTTP 403" and found["broken"]["detail"] == "HTTP 500"
    assert set(asked.values()) == {1}  # each page asked once


def test_checking_entries_that_are_all_true_exits_0_and_says_so(tmp_path):
    with StatusServer() as srv:
        srv.route("/a/api/v2/incidents.json").body = (FIXTURES / "github-incidents-2026-07-31.json").read_bytes()
        srv.route("/b/api/v2.0.0/current").body = (FIXTURES / "slack-status-current-2026-09-01.json").read_bytes()
        catalog = write_catalog(tmp_path / "catalog.csv", [("a", f"{srv.base}/a", "statuspage"),
                                                          ("b", f"{srv.base}/b", "slack"),
                                                          ("c", f"{srv.base}/c", "statuspage")])
        p = check("--catalog", str(catalog), "a", "b")
    assert p.returncode == 0, p.stderr
    assert [line.split()[:3] for line in p.stdout.splitlines()] == [["ID", "FORMAT", "RESULT"], ["a", "statuspage", "ok"],
                                                                    ["b", "slack", "ok"]]
    assert p.stderr.strip() == "2 ok"


def test_an_unknown_id_or_a_broken_catalog_file_is_one_line(tmp_path):
    p = check("no-such-entry")
    assert p.returncode == 2 and "'no-such-entry' not in the catalog" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,url,format,source\nx,X,https://x.example,rss,test\n")
    p = check("--catalog", str(bad))
    assert p.returncode == 2 and "line 2: format 'rss' is not one of" in p.stderr and "Traceback" not in p.stderr


def test_searching_the_catalog_still_takes_a_word():
    p = subprocess.run([*tracker_command(), "catalog", "github", "--json"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "github" in {e["id"] for e in json.loads(p.stdout)}
