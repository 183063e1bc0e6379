"""The delivery queue and workers in-process (docs/contract.md §7), on both engines: a real
SQLite file or PostgreSQL database, the real Deliverer threads, a fake `send` in place of HTTP.
Head-of-line per provider lane, leases across two "processes" (two owners on one database),
exactly-once queueing with the outbox's mark, and live reconfiguration (SIGHUP)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tracker.notify import queue
from tracker.notify.destinations import Destination
from tracker.notify.transport import DeliveryFailed, Sent
from tracker.notify.worker import Deliverer
from tracker.store import Store
from tracker.times import now_iso

def record(provider: str, n: int) -> dict:
    return {"event": "incident_update", "event_id": f"{provider}:i:{n:03d}", "provider_id": provider, "kind": "incident",
            "impact": "minor", "components": [], "created_at": f"2026-07-25T10:{n:02d}:00.000Z"}


def enqueue(db: Path, dests: list[Destination], records: list[dict]) -> int:
    store = Store.open(db)
    try:
        with store.transaction() as c:
            insert = queue.inserter(queue.plan(dests, records, now_iso()))
            return insert(c) if insert else 0
    finally:
        store.close()


class FakeSend:
    """Records what was sent per destination; `fail(dest, event_id, times)` makes a delivery fail."""

    def __init__(self, pause: float = 0.0):
        self.pause = pause
        self.sent: dict[str, list[str]] = {}
        self.failures: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()

    def fail(self, dest: str, event_id: str, times: int) -> None:
        self.failures[(dest, event_id)] = times

    def __call__(self, dest: Destination, rec: dict, session=None) -> Sent:
        time.sleep(self.pause)
        with self.lock:
            key = (dest.name, rec["event_id"])
            if self.failures.get(key, 0) > 0:
                self.failures[key] -= 1
                raise DeliveryFailed("HTTP 500")
            self.sent.setdefault(dest.name, []).append(rec["event_id"])
        return Sent(200)


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def db(db):
    """conftest's `db` (each engine), created before the workers start."""
    Store.open(db).close()
    return db


def test_a_failing_head_holds_back_only_its_own_providers_lane(db):
    dest = Destination("d", "webhook", url="http://127.0.0.1:9/h")
    enqueue(db, [dest], [record("a", n) for n in range(5)] + [record("b", n) for n in range(5)])
    send = FakeSend()
    send.fail("d", "a:i:000", 2)  # the head of lane a fails twice
    log = _Log()
    d = Deliverer(db, [dest], log, send=send)
    d.start()
    wait_until(lambda: len(send.sent.get("d", [])) == 10)
    d.stop()
    sent = send.sent["d"]
    assert [e for e in sent if e.startswith("b:")] == [f"b:i:{n:03d}" for n in range(5)]
    assert [e for e in sent if e.startswith("a:")] == [f"a:i:{n:03d}" for n in range(5)]  # in order, once
    assert sent.index("b:i:004") < sent.index("a:i:000")  # b went on while a's head was failing
    rows = _rows(db)
    assert all(r["delivered_at"] for r in rows)
    assert {r["event_id"]: r["attempts"] for r in rows}["a:i:000"] == 3
    assert [(lvl, e, kw["error"], kw["attempts"]) for lvl, e, kw in log.records if e == "notify_failed"] == [
        ("warning", "notify_failed", "HTTP 500", 1), ("warning", "notify_failed", "HTTP 500", 2)]
    # The destination took lane b's messages meanwhile: it counts as working again each time.
    recovered = [kw for _, e, kw in log.records if e == "notify_recovered"]
    assert recovered and all(kw["failures"] == 1 and kw["destination"] == "d" for kw in recovered)


def test_queueing_is_once_per_destination_and_event_whoever_announces(db):
    dests = [Destination("x", "webhook", url="http://h/x"), Destination("y", "webhook", url="http://h/y",
                                                                          providers=("a",))]
    recs = [record("a", 1), record("b", 1)]
    assert enqueue(db, dests, recs) == 3  # x gets both, y only provider a
    enqueue(db, dests, recs)  # announced again after a crash: nothing more queued
    assert sorted((r["destination"], r["event_id"]) for r in _rows(db)) == [
        ("x", "a:i:001"), ("x", "b:i:001"), ("y", "a:i:001")]


def test_two_processes_share_the_lanes_and_send_each_delivery_once(db):
    dest = Destination("d", "webhook", url="http://h/d")
    enqueue(db, [dest], [record(p, n) for p in "abcd" for n in range(30)])
    send = FakeSend(pause=0.002)
    first, second = Deliverer(db, [dest], _Log(), send=send), Deliverer(db, [dest], _Log(), send=send)
    assert first.owner != second.owner
    first.start()
    second.start()
    wait_until(lambda: len(send.sent.get("d", [])) == 120)
    time.sleep(0.2)
    first.stop()
    second.stop()
    sent = send.sent["d"]
    assert len(sent) == len(set(sent)) == 120
    for p in "abcd":
        assert [e for e in sent if e.startswith(p)] == [f"{p}:i:{n:03d}" for n in range(30)]
    assert first.delivered + second.delivered == 120


def test_a_lane_whose_process_died_is_taken_over_in_order_when_its_lease_runs_out(db):
    """Another host leased a lane and died sending it: its lease still runs, so the lane waits;
    once it has run out this process sends the lane, in order, and says whose it took over."""
    dest = Destination("d", "webhook", url="http://h/d")
    enqueue(db, [dest], [record("a", n) for n in range(5)] + [record("b", n) for n in range(2)])
    store = Store.open(db)
    gone = "host-b:4242:5e1f0a2c"  # another host: no pid of this one tells whether it lives
    later = "2999-01-01T00:00:00.000Z"
    dead = queue.Queue(store, gone).lease("d", now=now_iso(), until=later, drop_before="2000-01-01T00:00:00.000Z",
                                          per_lane=3)
    assert [[x.event_id for x in lane] for lane in dead.lanes] == [
        ["a:i:000", "a:i:001", "a:i:002"], ["b:i:000", "b:i:001"]]
    send, log = FakeSend(), _Log()
    d = Deliverer(db, [dest], log, send=send)
    d.start()
    try:
        time.sleep(0.5)
        assert send.sent == {}  # its lease runs: the lanes are its own
        with store.transaction() as c:  # ... until it runs out
            c.execute("UPDATE deliveries SET lease_until = '2000-01-01T00:00:00.000Z' WHERE lease_owner = ?", (gone,))
        d.wake()
        wait_until(lambda: len(send.sent.get("d", [])) == 7)
    finally:
        d.stop()
        store.close()
    for p, n in (("a", 5), ("b", 2)):
        assert [e for e in send.sent["d"] if e.startswith(p)] == [f"{p}:i:{i:03d}" for i in range(n)]
    taken = [kw for _, event, kw in log.records if event == "notify_taken_over"]
    assert sorted(t["provider_id"] for t in taken) == ["a", "b"]
    assert all(t["previous_owner"] == [gone] for t in taken)


def test_reload_starts_new_destinations_and_stops_removed_ones(db):
    a = Destination("a", "webhook", url="http://h/a")
    b = Destination("b", "webhook", url="http://h/b")
    send = FakeSend()
    d = Deliverer(db, [a], _Log(), send=send)
    d.start()
    enqueue(db, [a, b], [record("p", 1)])
    d.wake()
    wait_until(lambda: send.sent.get("a") == ["p:i:001"])
    d.update([a, b])  # b added: its waiting delivery goes out
    wait_until(lambda: send.sent.get("b") == ["p:i:001"])
    d.update([b])  # a removed: its worker stops, its backlog stays queued
    wait_until(lambda: not d.workers.get("a"))
    enqueue(db, [a, b], [record("p", 2)])
    d.wake()
    wait_until(lambda: send.sent.get("b") == ["p:i:001", "p:i:002"])
    time.sleep(0.2)
    d.stop()
    assert send.sent["a"] == ["p:i:001"]
    assert [r["event_id"] for r in _rows(db) if r["destination"] == "a" and not r["delivered_at"]] == ["p:i:002"]


def test_finish_drains_what_is_waiting_and_leaves_later_retries(db):
    dest = Destination("d", "webhook", url="http://h/d")
    enqueue(db, [dest], [record("a", 1), record("b", 1)])
    send = FakeSend()
    send.fail("d", "a:i:001", 10)
    log = _Log()
    d = Deliverer(db, [dest], log, send=send)
    d.start()
    started = time.monotonic()
    d.finish(budget=10)
    assert time.monotonic() - started < 5  # it did not sit out the backoff
    assert send.sent["d"] == ["b:i:001"]
    [(_, _, deferred)] = [r for r in log.records if r[1] == "notify_deferred"]
    assert deferred["waiting"] == 1
    assert [r["event_id"] for r in _rows(db) if not r["delivered_at"]] == ["a:i:001"]


class _Log:
    """A logger that keeps what the worker threads log."""

    def __init__(self):
        self.records: list[tuple[str, str, dict]] = []

    def _add(self, level: str, event: str, **kw) -> None:
        self.records.append((level, event, kw))

    def info(self, event: str, **kw) -> None:
        self._add("info", event, **kw)

    def warning(self, event: str, **kw) -> None:
        self._add("warning", event, **kw)

    def error(self, event: str, **kw) -> None:
        self._add("error", event, **kw)

    def debug(self, event: str, **kw) -> None:
        self._add("debug", event, **kw)


def _rows(db: Path) -> list:
    store = Store.open(db)
    try:
        return store.conn.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
    finally:
        store.close()
