"""A pair of hosts on one PostgreSQL database (docs/contract.md §2, §4, §7; docs/ha-pair.md).

The real `tracker` command in subprocesses against a real PostgreSQL server the suite starts
itself (tests/pgserver.py), polling GitHub's real page replayed moment by moment on 127.0.0.1
and notifying receivers on 127.0.0.1. Each daemon runs as its own "host": a UTS namespace with
its own host name (`unshare --uts`, where the suite may make one), so nothing can lean on two
processes sharing a host name or a pid space. The password is given as a deployment would
give it, in PGPASSWORD, never in the URL on the command line.

What is checked: two daemons and `run --once` runs announce every update once across them
and deliver it once per destination; kill -9 of either host, again and again, loses nothing;
the database restarted under a running daemon costs `store_failed` records and nothing else;
two hosts migrating a new database at once apply each migration once; `tracker db copy` moves
a single host's history into PostgreSQL without announcing anything again; the password shows
in no output.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pgserver
import pytest
from conftest import tracker_command, updates_of, write_config
from notifyserver import Receiver
from pages import all_updates, cut, load

GITHUB = "github-incidents-2026-07-31.json"
LEASE = 2  # seconds before a dead host's claims and lanes are taken over (the `lease` setting)


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode == 0


UNSHARE = _can_unshare()


@pytest.fixture
def pair(pg, tmp_path, monkeypatch):
    """A new database (its URL without the password) and PGPASSWORD set, as on a real host."""
    monkeypatch.setenv("PGPASSWORD", pgserver.PASSWORD)
    return pg.database(password=False)


class Host:
    """`tracker <args>` as host `name`: in a UTS namespace of its own where the suite can make
    one (its pid is the daemon's: unshare execs it). stdout is read line by line as it comes."""

    def __init__(self, name: str, config: Path, database: str, *args: str):
        command = [*tracker_command(), *args, "--config", str(config), "--db", database]
        if args[0] == "run":
            command += ["--log-format", "json"]
        if UNSHARE:
            command = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name, *command]
        self.name = name
        self.daemon = args[:1] == ("run",) and "--once" not in args
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.records: list[dict[str, Any]] = []
        self.err = ""
        self.threads = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._read_err, daemon=True)]
        for t in self.threads:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):  # a record (`db migrate` prints plain lines)
                self.records.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.err = self.proc.stderr.read()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in list(self.records) if r["event"] == name]

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        for t in self.threads:
            t.join(5)
        return code

    def stop(self) -> int:
        """SIGTERM, once the daemon is up: before its handlers are in place (a host started a
        moment ago) the signal's default action would end it with -15."""
        if self.daemon:
            wait_for(lambda: self.events("tracker_started") or self.proc.poll() is not None, 20,
                     f"{self.name} to start")
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait()


def once(name: str, config: Path, database: str) -> list[dict[str, Any]]:
    host = Host(name, config, database, "run", "--once")
    code = host.wait(60)
    assert code == 0, host.err
    return host.records


def wait_for(check, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def rows(pg, database: str, sql: str) -> list[tuple]:
    return pg.sql(sql, database=database.rsplit("/", 1)[1])


def settled(pg, database: str) -> bool:
    """Everything claimed was announced and everything queued was delivered."""
    return rows(pg, database, "SELECT (SELECT count(*) FROM updates WHERE announce = 1 AND emitted_at IS NULL)"
                " + (SELECT count(*) FROM deliveries WHERE delivered_at IS NULL)")[0][0] == 0


def announced_ids(pg, database: str) -> set[str]:
    return {f"{p}:{i}:{u}" for p, i, u in rows(
        pg, database, "SELECT provider_id, incident_id, update_id FROM updates WHERE announce = 1")}


class Replay:
    """Routes serving GitHub's page for each provider, and the page at its last `tail + 1`
    moments (one new update each): `new` holds the event ids the moments after the first
    bring."""

    def __init__(self, server, providers: str = "ab", tail: int = 12):
        payload = load(GITHUB)
        last = all_updates(payload)[-(tail + 1):]
        self.bodies = [json.dumps(cut(payload, at)).encode() for at, _, _ in last]
        self.routes = {p: server.route(f"/{p}/api/v2/incidents.json") for p in providers}
        for r in self.routes.values():
            r.body = self.bodies[0]
        self.new = {f"{p}:{i}:{u}" for p in providers for _, i, u in last[1:]}


def config_for(tmp_path: Path, server, rcv: Receiver, routes: dict) -> Path:
    return write_config(tmp_path / "tracker.toml",
                        [{"name": f"GitHub {p}", "id": p, "url": f"{server.base}/{p}"} for p in routes], [
        {"name": "one", "type": "webhook", "url": f"{rcv.base}/one"},
        {"name": "two", "type": "webhook", "url": f"{rcv.base}/two"},
    ], interval=1, lease=LEASE)


# -- two hosts and run --once, every update once ---------------------------------------------------

@pytest.mark.slow
def test_two_hosts_and_run_once_announce_and_deliver_each_update_once(pg, pair, server, tmp_path):
    rp = Replay(server)
    routes, bodies = rp.routes, rp.bodies
    with Receiver() as rcv:
        config = config_for(tmp_path, server, rcv, routes)
        a = Host("host-a", config, pair, "run")
        b = Host("host-b", config, pair, "run")
        logged: list[dict[str, Any]] = []
        try:
            wait_for(lambda: a.events("tracker_started") and b.events("tracker_started"), 20, "both hosts")
            wait_for(lambda: a.events("first_contact") or b.events("first_contact"), 20, "first contact")
            for n, body in enumerate(bodies[1:], 1):
                for r in routes.values():
                    r.body = body
                if n % 4 == 0:  # a third process now and then: `run --once` on another host
                    logged += once("host-c", config, pair)
                else:
                    time.sleep(0.7)
            wait_for(lambda: rp.new <= announced_ids(pg, pair) and settled(pg, pair), 30,
                     "every update announced and delivered")
        finally:
            codes = (a.stop(), b.stop())
        assert codes == (0, 0), a.err + b.err
    logged += a.records + b.records

    announced = announced_ids(pg, pair)
    every = Counter(r["event_id"] for r in updates_of(logged))
    assert rp.new <= announced  # every moment's new update (and what was open at first contact)
    assert set(every) == announced and max(every.values()) == 1, "an update was announced twice, or never"
    for name in ("one", "two"):
        assert Counter(rcv.event_ids(f"/{name}")) == Counter(announced), f"{name}: not each update once"
    owners = {r["owner"].split(":")[0] for h in (a, b) for r in h.events("tracker_started")}
    if UNSHARE:
        assert owners == {"host-a", "host-b"}
    assert not [r for r in logged if r["event"] == "store_failed"]
    assert pgserver.PASSWORD not in json.dumps(logged) + a.err + b.err
    print("pair:", json.dumps({"host-a": len(updates_of(a.records)), "host-b": len(updates_of(b.records)),
                               "run --once": len(updates_of(logged)) - len(updates_of(a.records + b.records))}))


# -- kill -9 of either host ----------------------------------------------------------------------

@pytest.mark.slow
def test_kill_9_of_either_host_loses_nothing(pg, pair, server, tmp_path):
    started = time.monotonic()
    rp = Replay(server, tail=16)
    routes, bodies = rp.routes, rp.bodies
    rng = random.Random(20261206)
    with Receiver() as rcv:
        rcv.delay = 0.03  # each delivery takes a while: kills land in the middle of sending
        config = config_for(tmp_path, server, rcv, routes)
        hosts = {name: Host(name, config, pair, "run") for name in ("host-a", "host-b")}
        wait_for(lambda: len([r for h in hosts.values() for r in h.events("first_contact")]) == 2, 20,
                 "first contact with both pages")
        finished: list[Host] = []
        position, kills = dict.fromkeys(routes, 0), 0
        while kills < 6 or any(i < len(bodies) - 1 for i in position.values()):
            assert time.monotonic() - started < 60, f"loop bound: {kills} kills, pages at {position}"
            deadline = time.monotonic() + rng.uniform(0.8, 1.6)
            while time.monotonic() < deadline:  # the pages move on while the hosts run
                time.sleep(0.1)
                p = rng.choice(list(routes))
                position[p] = min(len(bodies) - 1, position[p] + rng.choice((0, 1)))
                routes[p].body = bodies[position[p]]
            victim = rng.choice(sorted(hosts))
            hosts[victim].kill()
            kills += 1
            finished.append(hosts[victim])
            hosts[victim] = Host(victim, config, pair, "run")
        # The survivors take over what the dead left once its leases run out.
        wait_for(lambda: rp.new <= announced_ids(pg, pair) and settled(pg, pair), 30,
                 "every update announced and delivered")
        for h in hosts.values():
            assert h.stop() == 0, h.err
            finished.append(h)

    logged = [r for h in finished for r in h.records]
    announced = announced_ids(pg, pair)
    every = Counter(r["event_id"] for r in updates_of(logged))
    assert rp.new <= announced
    assert set(every) == announced, f"never logged: {sorted(announced - set(every))[:5]}"
    figures = {"kills": kills, "announced": len(announced), "logged_twice": sum(n > 1 for n in every.values()),
               "recovered": sum(r.get("updates", 0) for r in logged if r["event"] == "outbox_recovered"),
               "seconds": round(time.monotonic() - started, 1)}
    for name in ("one", "two"):
        got = Counter(rcv.event_ids(f"/{name}"))
        assert set(got) == announced, f"{name}: never delivered: {sorted(announced - set(got))[:5]}"
        figures[name] = {"received": sum(got.values()), "repeats": sum(got.values()) - len(got)}
    assert pgserver.PASSWORD not in json.dumps(logged)
    print("kill -9 of either host:", json.dumps(figures))


# -- the database restarted under a running daemon -------------------------------------------------

@pytest.mark.slow
def test_the_database_restarted_under_a_daemon_loses_nothing(server, tmp_path, monkeypatch):
    own = pgserver.PgServer()  # restarted here: not the cluster other tests share
    try:
        monkeypatch.setenv("PGPASSWORD", pgserver.PASSWORD)
        database = own.database(password=False)
        rp = Replay(server, providers="a", tail=4)
        routes, bodies = rp.routes, rp.bodies
        with Receiver() as rcv:
            config = config_for(tmp_path, server, rcv, routes)
            daemon = Host("host-a", config, database, "run")
            try:
                wait_for(lambda: daemon.events("first_contact"), 20, "first contact")
                routes["a"].body = bodies[1]
                wait_for(lambda: len(updates_of(daemon.records)) == 1, 20, "the first new update")
                own.stop("fast")  # every connection ends; the server is gone for a while
                routes["a"].body = bodies[2]  # the page moves on meanwhile
                wait_for(lambda: daemon.events("store_failed"), 20, "store_failed")
                time.sleep(2)
                own.start()
                routes["a"].body = bodies[3]
                wait_for(lambda: len(updates_of(daemon.records)) == 3 and settled(own, database), 30,
                         "the updates of the outage announced and delivered")
                assert daemon.proc.poll() is None, "the daemon stopped"
            finally:
                code = daemon.stop()
        assert code == 0, daemon.err
        failed = daemon.events("store_failed")
        assert failed and all(pgserver.PASSWORD not in json.dumps(r) and "***" not in r["database"] for r in failed)
        every = Counter(r["event_id"] for r in updates_of(daemon.records))
        assert set(every) == announced_ids(own, database) and max(every.values()) == 1
        assert Counter(rcv.event_ids("/one")) == every
        print("restart:", json.dumps({"store_failed": [r["error"][:120] for r in failed]}))
    finally:
        own.close()


# -- migrations, copy, the password ------------------------------------------------------------------

def test_two_hosts_migrating_one_new_database_at_once_apply_each_migration_once(pg, pair, tmp_path):
    config = write_config(tmp_path / "tracker.toml", [], [])
    hosts = [Host(f"host-{n}", config, pair, "db", "migrate") for n in "ab"]
    assert [h.wait() for h in hosts] == [0, 0], [h.err for h in hosts]
    applied = Counter(r[0] for r in rows(pg, pair, "SELECT name FROM _migrations"))
    shipped = sorted(p.name for p in (Path(__file__).parent.parent / "migrations").glob("*.sql"))
    assert sorted(applied) == shipped and set(applied.values()) == {1}


@pytest.mark.slow
def test_db_copy_makes_a_single_hosts_history_the_pairs_without_announcing_it_again(pg, pair, server, tmp_path):
    rp = Replay(server, providers="a", tail=3)
    routes, bodies = rp.routes, rp.bodies
    with Receiver() as rcv:
        config = config_for(tmp_path, server, rcv, routes)
        sqlite_db = tmp_path / "tracker.db"
        run = [*tracker_command(), "run", "--once", "--config", str(config), "--log-format", "json"]
        for body in bodies[:3]:
            routes["a"].body = body
            p = subprocess.run([*run, "--db", str(sqlite_db)], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
        before = rcv.event_ids("/one")
        assert before  # first contact (what was open) and the two moments after

        p = subprocess.run([*tracker_command(), "db", "copy", "--from", str(sqlite_db), "--to", pair],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(f"Copied {sqlite_db} to {pair}: ") and "updates" in p.stdout
        again = subprocess.run([*tracker_command(), "db", "copy", "--from", str(sqlite_db), "--to", pair],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "already holds a history" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1

        # The pair goes on where the single host stopped: the same page announces nothing, the
        # next moment its one new update, once.
        quiet = once("host-a", config, pair)
        assert updates_of(quiet) == [] and not [r for r in quiet if r["event"] == "first_contact"]
        routes["a"].body = bodies[3]
        moved_on = once("host-b", config, pair)
        assert len(updates_of(moved_on)) == 1
        assert rcv.event_ids("/one") == before + [updates_of(moved_on)[0]["event_id"]]
    # New rows get ids past the copied ones.
    assert rows(pg, pair, "SELECT count(DISTINCT id) = count(*) FROM updates")[0][0] is True


def test_a_password_in_the_url_is_never_shown(pg, tmp_path):
    url = pg.database()  # postgresql://postgres:<password>@127.0.0.1:port/db
    assert pgserver.PASSWORD in url
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    shown = subprocess.run([*tracker_command(), "config", "--db", url], capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and pgserver.PASSWORD not in shown.stdout + shown.stderr
    assert url.replace(pgserver.PASSWORD, "***") in shown.stdout
    # A wrong password: one line naming the database, the password not in it.
    wrong = url.replace(pgserver.PASSWORD, "not-the-password")
    failed = subprocess.run([*tracker_command(), "providers", "--db", wrong], capture_output=True, text=True, env=env)
    assert failed.returncode != 0 and "not-the-password" not in failed.stderr
    assert "password authentication failed" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_read_commands_read_the_pairs_database_in_a_read_only_transaction(pg, pair, server, tmp_path):
    rp = Replay(server, providers="a", tail=2)
    with Receiver() as rcv:
        config = config_for(tmp_path, server, rcv, rp.routes)
        once("host-a", config, pair)
        rp.routes["a"].body = rp.bodies[-1]
        once("host-a", config, pair)
        sent = {name: len(rcv.event_ids(f"/{name}")) for name in ("one", "two")}

    def read(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*tracker_command(), *args, "--config", str(config), "--db", pair],
                              capture_output=True, text=True, timeout=60)

    providers = read("providers", "--json")
    assert providers.returncode == 0, providers.stderr
    assert [(p["id"], p["last_result"]) for p in json.loads(providers.stdout)] == [("a", "ok")]
    incidents = read("incidents", "--json")
    assert incidents.returncode == 0 and len(json.loads(incidents.stdout)) == 50
    assert read("health").returncode == 0
    listed = read("notify", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {d["name"]: (d["delivered"], d["waiting"]) for d in json.loads(listed.stdout)} == {
        name: (n, 0) for name, n in sent.items()}
    # The read commands' sessions are read-only: whatever they might try to write is refused.
    from tracker.store import Store

    store = Store.open_readonly(pair)
    try:
        with pytest.raises(Exception, match="read-only transaction"):
            store.conn.execute("DELETE FROM updates")
    finally:
        store.close()
    assert rows(pg, pair, "SELECT count(*) > 0 FROM updates")[0][0] is True
