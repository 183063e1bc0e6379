"""Metrics (docs/contract.md §8): /metrics scraped from a real `tracker run` daemon, with one
healthy and one failing provider served on 127.0.0.1; the listen address as option,
variable and config key; the outbox size counted at scrape time."""

from __future__ import annotations

import re
import socket
import time
import urllib.request

import pytest
from click.testing import CliRunner
from conftest import Tracker, write_config
from pages import load
from prometheus_client.parser import text_string_to_metric_families

from tracker import metrics
from tracker.cli import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> tuple[str, dict[tuple[str, tuple], float]]:
    """The text served, and {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return text, samples


@pytest.mark.slow
def test_scrape_a_daemon_with_a_healthy_and_a_failing_provider(server, tmp_path):
    server.route("/good/api/v2/incidents.json", load("openai-incidents-2025-11-15.json"))
    server.route("/bad/api/v2/incidents.json").fault = "500"
    config = write_config(tmp_path / "t.toml", [
        {"name": "Good", "url": f"{server.base}/good", "format": "statuspage"},
        {"name": "Bad", "url": f"{server.base}/bad", "format": "statuspage"},
    ], interval=1)
    port = free_port()
    tracker = Tracker(config, tmp_path / "t.db")
    proc = tracker.start("--metrics-listen", f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        samples: dict = {}
        while time.monotonic() < deadline:
            try:
                text, samples = scrape(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                time.sleep(0.1)  # not listening yet
                continue
            if samples.get(("tracker_provider_consecutive_failures", (("provider_id", "bad"),)), 0) >= 2 \
                    and samples.get(("tracker_polls_total", (("provider_id", "good"), ("result", "not_modified"))), 0):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no second failure and no second good poll within 20 s: {samples}")
    finally:
        code, records, err, _ = Tracker.stop(proc)
    assert code == 0, err

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("tracker_provider_up", provider_id="good") == 1
    assert value("tracker_provider_up", provider_id="bad") == 0
    assert value("tracker_provider_consecutive_failures", provider_id="good") == 0
    assert value("tracker_provider_consecutive_failures", provider_id="bad") >= 2
    assert value("tracker_polls_total", provider_id="good", result="ok") == 1
    assert value("tracker_polls_total", provider_id="bad", result="error") >= 2
    assert ("tracker_polls_total", (("provider_id", "bad"), ("result", "ok"))) not in samples
    # First contact announced the one open incident's updates (the capture has one open).
    announced = [r for r in records if r["event"] == "incident_update"]
    assert value("tracker_updates_announced_total", provider_id="good") == len(announced) >= 1
    assert abs(value("tracker_provider_last_success_timestamp_seconds", provider_id="good") - time.time()) < 60
    assert ("tracker_provider_last_success_timestamp_seconds", (("provider_id", "bad"),)) not in samples
    polls = value("tracker_poll_duration_seconds_count", provider_id="bad")
    assert polls == value("tracker_polls_total", provider_id="bad", result="error")
    assert value("tracker_poll_duration_seconds_bucket", provider_id="bad", le="+Inf") == polls
    assert value("tracker_outbox_size") == 0
    # The text form a Prometheus server reads, as the README shows it.
    assert re.search(r'(?m)^tracker_provider_up\{provider_id="bad"\} 0\.0$', text)
    assert "# TYPE tracker_polls_total counter" in text and "# TYPE tracker_poll_duration_seconds histogram" in text
    assert "_created" not in text  # no creation-time series beside every counter
    started = [r for r in records if r["event"] == "metrics_listening"]
    assert started and started[0]["address"] == f"127.0.0.1:{port}"


def test_outbox_size_counts_announced_but_unemitted_rows_at_scrape_time(db):
    from prometheus_client import generate_latest

    from tracker.store import Store

    store = Store.open(db)
    with store.transaction() as c:
        c.execute("INSERT INTO providers (id, name, url, format) VALUES ('p', 'P', 'https://p.example', 'statuspage')")
        c.execute("INSERT INTO incidents (provider_id, incident_id, title, status, impact, kind, created_at, "
                  "first_seen_at, last_seen_at) VALUES ('p', 'i', 'T', 'investigating', 'none', 'incident', 'x', 'x', 'x')")
        c.executemany("INSERT INTO updates (provider_id, incident_id, update_id, status, message, created_at, "
                      "recorded_at, source, announce, emitted_at) VALUES ('p', 'i', ?, 'investigating', 'm', 'x', 'x', "
                      "'run', ?, ?)", [("u1", 1, None), ("u2", 1, None), ("u3", 1, "2026-01-01"), ("u4", 0, None)])
    sink = metrics.PrometheusSink(db)
    assert b"tracker_outbox_size 2.0" in generate_latest(sink.registry)
    store.conn.execute("UPDATE updates SET emitted_at = 'now'")
    assert b"tracker_outbox_size 0.0" in generate_latest(sink.registry)
    store.close()
    # The notifications' hooks: deliveries by result, backlog read when scraped.
    sink.delivery("slack-ops", "ok")
    sink.backlog(lambda: {"slack-ops": 3})
    text = generate_latest(sink.registry).decode()
    assert 'tracker_deliveries_total{destination="slack-ops",result="ok"} 1.0' in text
    assert 'tracker_delivery_backlog{destination="slack-ops"} 3.0' in text


def test_reports_go_nowhere_until_metrics_are_served():
    assert type(metrics.active()) is metrics.Sink
    metrics.poll("x", "ok", 0.1, 0, None)  # no-op: the ledger calls it unconditionally
    metrics.delivery("d", "ok")


@pytest.mark.parametrize(("text", "listen"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), (":9464", ("", 9464)), ("[::1]:9464", ("::1", 9464)),
    ("localhost:0", ("localhost", 0)),
])
def test_parse_listen(text, listen):
    assert metrics.parse_listen(text) == metrics.Listen(*listen)


@pytest.mark.parametrize("text", ["9464", "host:", "host:http", "::1:9464", "h:70000"])
def test_parse_listen_refuses(text):
    with pytest.raises(ValueError):
        metrics.parse_listen(text)


def test_bad_listen_option_is_a_usage_error_and_variable_or_key_a_config_error(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "t.db")
    result = runner.invoke(cli, ["run", "--db", db, "--metrics-listen", "nowhere"])
    assert result.exit_code == 2 and "--metrics-listen" in result.stderr
    result = runner.invoke(cli, ["run", "--db", db], env={"TRACKER_METRICS_LISTEN": "nowhere"})
    assert result.exit_code == 78 and "TRACKER_METRICS_LISTEN: 'nowhere' is not HOST:PORT" in result.stderr
    config = write_config(tmp_path / "t.toml", [], metrics_listen="9464")
    result = runner.invoke(cli, ["run", "--db", db, "--config", str(config)])
    assert result.exit_code == 78 and "t.toml: metrics_listen:" in result.stderr


def test_a_port_in_use_stops_the_daemon_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["run", "--db", str(tmp_path / "t.db"), "--log-format", "json",
                                          "--metrics-listen", f"127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output
