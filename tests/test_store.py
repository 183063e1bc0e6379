"""The store on both engines (SQLite and PostgreSQL, the `db` fixture): migrations, the claim
across processes, the outbox after a crash."""

from __future__ import annotations

import sqlite3
import subprocess
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import pgserver
from conftest import Tracker, tracker_command, updates_of, write_config
from pages import load

from tracker import times
from tracker.adapters import statuspage
from tracker.config import Provider
from tracker.errors import MigrationError
from tracker.policy import Policy
from tracker.store import PollRecord, Store

GITHUB = "github-incidents-2026-07-31.json"
PROVIDER = Provider(id="github", name="GitHub", url="https://www.githubstatus.com", format="statuspage")
FUTURE = "2999-01-01T00:00:00.000Z"
PAST = "2000-01-01T00:00:00.000Z"


def incidents():
    return statuspage.parse(load(GITHUB)).incidents


def fresh(db) -> Store:
    store = Store.open(db)
    store.sync_providers([PROVIDER])
    return store


def test_fresh_database_gets_the_schema_and_a_second_migrate_is_a_no_op(db):
    store = Store.open(db, migrate=False)
    shipped = sorted(p.name for p in (Path(__file__).parent.parent / "migrations").glob("*.sql"))
    assert shipped[:2] == ["0001_initial.sql", "0002_backoff.sql"]
    assert store.migrate() == shipped
    assert store.migrate() == []
    assert {"providers", "incidents", "updates", "edits", "deliveries", "_migrations"} <= set(tables(store))
    if store.engine.name == "sqlite":
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    # Both engines hold the same columns, in the same order (db copy relies on it).
    assert store.engine.columns("updates")[:3] == ["id", "provider_id", "incident_id"]


def tables(store: Store) -> list[str]:
    if store.engine.name == "sqlite":
        return [r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return [r[0] for r in store.conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]


def test_database_from_a_newer_version_is_refused_with_a_clear_error(db):
    store = Store.open(db)
    store.conn.execute("INSERT INTO _migrations VALUES ('0999_future.sql', 'x')")
    with pytest.raises(MigrationError, match="0999_future.sql"):
        store.migrate()
    store.close()
    p = subprocess.run([*tracker_command(), "db", "migrate", "--db", str(db)], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip().startswith("Error: ") and len(p.stderr.strip().splitlines()) == 1
    assert "0999_future.sql" in p.stderr and pgserver.PASSWORD not in p.stderr


def test_first_contact_records_silently_then_everything_new_is_announced(db):
    store = fresh(db)
    everything = incidents()
    older, newest = everything[1:], everything[:1]
    claim = store.record(PROVIDER.id, older, now=times.now_iso(), source="run", policy=Policy.for_provider(PROVIDER),
                 lease=("me", FUTURE), poll=PollRecord("statuspage", {}))
    assert claim.first_contact and claim.new == sum(len(i.updates) for i in older)
    assert claim.announce_ids == []  # every incident in the capture is resolved
    claim = store.record(PROVIDER.id, everything, now=times.now_iso(), source="run", policy=Policy.for_provider(PROVIDER),
                 lease=("me", FUTURE), poll=PollRecord("statuspage", {}))
    assert not claim.first_contact
    assert claim.new == len(claim.announce_ids) == len(newest[0].updates)
    rows = store.events(claim.announce_ids)
    assert [r["update_id"] for r in rows] == [u.update_id for u in newest[0].updates]  # oldest first


def test_a_claim_owns_exactly_the_rows_it_inserted_among_another_providers(db):
    """The claim reads back the rows it inserted (SQLite: those past the table's last id;
    PostgreSQL: what RETURNING says): another provider's rows recorded
    in between are not this poll's, an update listed again is not new (its changed text is an
    edit), and a poll where every update listed is new announces them all."""
    other = Provider(id="mirror", name="Mirror", url="https://mirror.example", format="statuspage")
    store = fresh(db)
    store.sync_providers([PROVIDER, other])
    everything = incidents()
    older, newest = everything[1:], everything[:1]

    def record(provider, listed):
        return store.record(provider.id, listed, now=times.now_iso(), source="run",
                            policy=Policy.for_provider(provider), lease=("me", FUTURE),
                            poll=PollRecord("statuspage", {}))

    record(PROVIDER, older)
    record(other, everything)  # first contact of another page: ids after GitHub's
    first = older[0]
    edited = first._replace(updates=(first.updates[0]._replace(source="Reworded by the page."),
                                     *first.updates[1:]))
    claim = record(PROVIDER, [*newest, edited, *older[1:]])
    assert claim.new == len(newest[0].updates) and claim.edits == 1
    assert [(r["provider_id"], r["update_id"]) for r in store.events(claim.announce_ids)] == [
        (PROVIDER.id, u.update_id) for u in newest[0].updates]

    opened = newest[0]._replace(incident_id="new-one", status="investigating", updates=tuple(
        u._replace(update_id=f"new-{u.update_id}") for u in newest[0].updates))
    claim = record(other, [opened])  # an open-only view listing one new incident: all of it new
    assert claim.new == len(opened.updates) == len(claim.announce_ids)
    assert {r["update_id"] for r in store.events(claim.announce_ids)} == {u.update_id for u in opened.updates}


def test_a_failed_transaction_leaves_nothing_behind(db):
    store = fresh(db)
    with pytest.raises(RuntimeError):
        with store.transaction() as c:
            c.execute("INSERT INTO incidents (provider_id, incident_id, title, status, impact, kind, components, "
                      "created_at, first_seen_at, last_seen_at) VALUES ('github','x','t','investigating','none',"
                      "'incident','[]','2026-01-01','n','n')")
            raise RuntimeError("boom")
    assert store.conn.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0


def _claim_in_process(path: str) -> list[tuple[str, str]]:
    """Runs in a separate process: record the whole capture, return what this process won."""
    store = Store.open(path)
    store.sync_providers([PROVIDER])
    claim = store.record(PROVIDER.id, incidents(), now=times.now_iso(), source="run", policy=Policy.for_provider(PROVIDER),
                 lease=("p", FUTURE), poll=PollRecord("statuspage", {}))
    return [(r["incident_id"], r["update_id"]) for r in store.events(claim.announce_ids)]


@pytest.mark.slow
def test_processes_racing_on_one_database_claim_each_update_exactly_once(db):
    path = db
    store = Store.open(path)
    store.sync_providers([PROVIDER])
    store.record(PROVIDER.id, [], now=times.now_iso(), source="run", policy=Policy.for_provider(PROVIDER),
                 lease=("x", FUTURE), poll=PollRecord("statuspage", {}))  # first contact done: from now on every new update is announced
    store.close()
    with ProcessPoolExecutor(max_workers=6, mp_context=get_context("spawn")) as pool:
        won = list(pool.map(_claim_in_process, [str(path)] * 6))
    flat = [k for per_process in won for k in per_process]
    total = sum(len(i.updates) for i in incidents())
    assert len(flat) == len(set(flat)) == total
    if isinstance(path, Path):
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_updates_recorded_but_never_emitted_are_emitted_after_a_crash(server, tmp_path, db):
    """A process that died between COMMIT and writing its records leaves outbox rows whose
    lease runs out; the next run emits them, once."""
    payload = load(GITHUB)
    payload["incidents"] = payload["incidents"][:5]  # the page shows exactly what was recorded
    server.route("/gh/api/v2/incidents.json", payload)
    config = write_config(tmp_path / "t.toml", [{"name": "GitHub", "url": f"{server.base}/gh"}])
    tracker = Tracker(config, db)
    store = Store.open(db)
    store.sync_providers([Provider(id="github", name="GitHub", url=f"{server.base}/gh")])
    store.record(PROVIDER.id, [], now=times.now_iso(), source="run", policy=Policy.for_provider(PROVIDER),
                 lease=("dead", PAST), poll=PollRecord("statuspage", {}))
    everything = statuspage.parse(payload).incidents
    alive, dead = everything[:2], everything[2:5]
    store.record(PROVIDER.id, dead, now=times.now_iso(), source="run", policy=Policy.for_provider(PROVIDER),
                 lease=("dead:1", PAST), poll=PollRecord("statuspage", {}))
    store.record(PROVIDER.id, alive, now=times.now_iso(), source="run", policy=Policy.for_provider(PROVIDER),
                 lease=("alive:2", FUTURE), poll=PollRecord("statuspage", {}))
    store.close()

    code, records, err = tracker.once()
    assert code == 0, err
    emitted = [(r["incident_id"], r["update_id"]) for r in updates_of(records)]
    expected_dead = [(i.incident_id, u.update_id) for i in dead for u in i.updates]
    assert sorted(emitted) == sorted(expected_dead)  # the live process's lease is respected
    assert any(r["event"] == "outbox_recovered" for r in records)
    assert updates_of(tracker.once()[1]) == []
