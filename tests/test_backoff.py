"""Backoff: the arithmetic, and what a daemon does with it against a real failing page."""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import datetime, timezone

import pytest
from conftest import Tracker, write_config
from pages import cut, load

from tracker.backoff import MAX_BACKOFF, MAX_RETRY_AFTER, delay, parse_retry_after

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Mon, 23 Nov 2026 12:02:30 GMT", 150.0),  # an HTTP-date in the future
        ("Mon, 23 Nov 2026 11:00:00 GMT", 0.0),  # in the past: no wait
        ("999999", MAX_RETRY_AFTER),  # hostile or buggy: capped
        ("-5", None),
        ("soon-ish", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header, seconds):
    assert parse_retry_after(header, now=NOW) == seconds


def test_delay_doubles_with_jitter_up_to_the_cap():
    rng = random.Random(7)
    assert delay(1, 60, rng=rng) == 60  # the first failure keeps the normal interval
    for failures, base in ((2, 120), (3, 240), (4, 480), (5, 600), (12, 600)):
        waits = [delay(failures, 60, rng=rng) for _ in range(200)]
        assert base / 2 <= min(waits) and max(waits) <= base <= MAX_BACKOFF
        assert max(waits) - min(waits) > base / 4  # spread: providers failing together part ways
    assert delay(1, 60, retry_after=900) == 900  # a longer Retry-After wins
    assert delay(1, 60, retry_after=5) == 60  # a shorter one does not speed polling up


@pytest.fixture
def pages(server, tmp_path):
    payload = load("github-incidents-2026-07-31.json")
    page = cut(payload, "2026-07-25T09:45:00.000Z")
    failing = server.route("/failing/api/v2/incidents.json", page)
    healthy = server.route("/healthy/api/v2/incidents.json", page)
    return failing, healthy


@pytest.mark.slow
def test_a_long_outage_is_logged_a_few_times_not_every_poll(pages, server, tmp_path):
    failing, _ = pages
    failing.fault = "500"
    config = write_config(tmp_path / "t.toml", [{"name": "failing", "url": f"{server.base}/failing"}], interval=0.2)
    proc = Tracker(config, tmp_path / "t.db").start()
    try:
        time.sleep(6)
    finally:
        code, records, err, _ = Tracker.stop(proc)
    assert code == 0, err
    failed = [r for r in records if r["event"] == "poll_failed"]
    assert failing.requests >= 5  # it kept trying (0.2, 0.4, 0.8, 1.6, 3.2 s apart, with jitter)…
    assert len(failed) == 3  # …but past three failures in a row the same error is not repeated
    assert [r["failures"] for r in failed] == [1, 2, 3]
    assert all(r["level"] == "warning" and r["error"] == "HTTP 500" for r in failed)
    gaps = [b - a for a, b in zip(failing.times, failing.times[1:])]
    assert gaps[-1] > 1.0 > 0.2  # it backed off


@pytest.mark.slow
def test_retry_after_survives_a_restart(pages, server, tmp_path):
    failing, healthy = pages
    failing.fault = "429"  # Retry-After: 3
    config = write_config(tmp_path / "t.toml", [
        {"name": "failing", "url": f"{server.base}/failing"},
        {"name": "healthy", "url": f"{server.base}/healthy"},
    ], interval=1)
    tracker = Tracker(config, tmp_path / "t.db")
    proc = tracker.start()
    try:
        deadline = time.monotonic() + 10
        while failing.requests < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        Tracker.stop(proc)
    not_before = sqlite3.connect(tmp_path / "t.db").execute(
        "SELECT next_poll_at FROM providers WHERE id = 'failing'").fetchone()[0]
    assert not_before is not None
    asked = failing.requests
    proc = tracker.start()  # a restart right away: the page asked for 3 s of quiet
    try:
        time.sleep(1.5)
        during = failing.requests - asked
        time.sleep(3.5)
        failing.fault = None
        time.sleep(2.5)
    finally:
        code, records, err, _ = Tracker.stop(proc)
    assert code == 0, err
    assert during == 0  # not polled inside the Retry-After window, restart or not
    assert healthy.requests >= 6  # the other provider kept its pace
    assert any(r["event"] == "provider_recovered" and r["provider_id"] == "failing" for r in records)
    state = sqlite3.connect(tmp_path / "t.db").execute(
        "SELECT next_poll_at, failures FROM providers WHERE id = 'failing'").fetchone()
    assert state == (None, 0)
