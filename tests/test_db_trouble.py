"""Database trouble, each a real situation, against the real `tracker` command: another
process holding the write lock, a corrupt file, a directory where the file should be, a
parent that cannot be created, and a daemon and `run --once` sharing one file at once.

README: exit 1 is "runtime failure with a one-line message (for example a database that
cannot be opened)"; a lock held by someone else is waited for (30 s busy timeout), never
reported as "database is locked"."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import Tracker, parse_lines, tracker_command, updates_of, write_config
from pages import all_updates, cut, load

GITHUB = "github-incidents-2026-07-31.json"
T0 = "2026-07-25T09:45:00.000Z"  # one incident open (1 update)
T1 = "2026-07-25T12:40:00.000Z"  # +5 updates
T3 = "2026-07-31T00:00:00.000Z"  # the whole capture
HOLD = 3.0  # seconds the other process keeps its lock


def keys(records):
    return [(r["provider_id"], r["incident_id"], r["update_id"]) for r in updates_of(records)]


def published_between(payload, after, until, provider="github"):
    return [(provider, i, u) for at, i, u in all_updates(payload) if after < at <= until]


def open_updates(page, provider="github"):
    found = sorted(
        (u["created_at"], i["id"], u["id"])
        for i in page["incidents"] if i["status"] not in ("resolved", "completed", "postmortem")
        for u in i["incident_updates"]
    )
    return [(provider, i, u) for _, i, u in found]


@pytest.fixture
def github(server, tmp_path):
    payload = load(GITHUB)
    route = server.route("/github/api/v2/incidents.json", cut(payload, T0))
    config = write_config(
        tmp_path / "tracker.toml", [{"name": "GitHub", "url": f"{server.base}/github"}], interval=1
    )
    return payload, route, Tracker(config, tmp_path / "state" / "tracker.db")


def command(tracker: Tracker, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Any tracker command (the read commands take no --log-format)."""
    if args[0] == "run":
        argv = tracker.args(*args)
    else:
        argv = [*tracker_command(), *args, "--config", str(tracker.config), "--db", str(tracker.db)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(p: subprocess.CompletedProcess, *names: str) -> str:
    """Exit 1, exactly one stderr line `Error: ...` naming each of `names`, no traceback."""
    assert p.returncode == 1, (p.returncode, p.stdout[-500:], p.stderr[-1000:])
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    return lines[0]


def assert_no_lock_trouble(stdout: str, stderr: str) -> None:
    assert "database is locked" not in stdout and "database is locked" not in stderr
    assert "database is busy" not in stdout and "database is busy" not in stderr
    assert "store_failed" not in stdout and "Traceback" not in stderr


# -- another process holds a lock -----------------------------------------------------------

SQLITE_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE providers SET name = name")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
# Stay open until told: the last connection to close checkpoints the WAL, and that must not
# race the tracker's own writes (SQLite's WAL-reset bug); the test closes stdin when done.
sys.stdin.read()
conn.close()
"""

FLOCK_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1] + ".lock", os.O_RDWR | os.O_CREAT, 0o660)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
fcntl.flock(fd, fcntl.LOCK_UN)
print("released", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("holder", [SQLITE_HOLDER, FLOCK_HOLDER], ids=["sqlite-write-lock", "tracker-flock"])
@pytest.mark.slow
def test_a_lock_held_by_another_process_for_seconds_is_waited_for(github, holder):
    payload, route, tracker = github
    code, records, err = tracker.once()
    assert code == 0 and keys(records) == open_updates(cut(payload, T0)), err
    route.set_json(cut(payload, T1))

    other = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(holder), str(tracker.db), str(HOLD)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert other.stdout.readline().strip() == "locked", other.stderr.read()
        started = time.monotonic()
        p = command(tracker, "run", "--once")
        took = time.monotonic() - started
        assert other.stdout.readline().strip() == "released"
    finally:
        other.stdin.close()
        other.wait(timeout=10)
    assert other.returncode == 0, other.stderr.read()

    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert_no_lock_trouble(p.stdout, p.stderr)
    records = parse_lines(p.stdout)
    assert keys(records) == published_between(payload, T0, T1)
    assert took >= HOLD - 1.0, f"finished in {took:.1f} s: it did not wait for the lock"
    conn = sqlite3.connect(tracker.db)
    try:
        assert conn.execute("SELECT count(*) FROM updates").fetchone()[0] == len(all_updates(cut(payload, T1)))
        assert conn.execute("SELECT count(*) FROM updates WHERE announce = 1 AND emitted_at IS NULL").fetchone() == (0,)
    finally:
        conn.close()


# -- the database file is not a database ----------------------------------------------------

def _real_database(tracker: Tracker, route, payload) -> bytes:
    """A database written by tracker itself (its WAL checkpointed into it on close)."""
    route.set_json(cut(payload, T3))
    code, _, err = tracker.once()
    assert code == 0, err
    assert not Path(f"{tracker.db}-wal").exists() or Path(f"{tracker.db}-wal").stat().st_size == 0
    data = tracker.db.read_bytes()
    assert len(data) >= 20 * 4096 and data[:16] == b"SQLite format 3\x00"
    return data


def _corrupt(kind: str, data: bytes) -> bytes:
    if kind == "random-bytes":
        return random.Random(4096).randbytes(4096)
    if kind == "header-overwritten":
        return b"\xff" * 100 + data[100:]
    if kind == "truncated-mid-page":
        return data[: (len(data) // 2 // 4096) * 4096 + 1000]
    raise AssertionError(kind)


def _fresh(tracker: Tracker, content: bytes) -> None:
    for extra in ("-wal", "-shm"):
        Path(f"{tracker.db}{extra}").unlink(missing_ok=True)
    tracker.db.write_bytes(content)


@pytest.mark.parametrize("kind", ["random-bytes", "header-overwritten", "truncated-mid-page"])
@pytest.mark.slow
def test_a_corrupt_file_is_one_line_and_exit_1_for_every_command(github, kind):
    payload, route, tracker = github
    tracker.db.parent.mkdir(parents=True, exist_ok=True)
    bad = _corrupt(kind, _real_database(tracker, route, payload) if kind != "random-bytes" else b"")
    _fresh(tracker, bad)
    route.set_json(cut(payload, T3))
    for args in (("run", "--once"), ("incidents",), ("incidents", "--json"), ("providers",), ("db", "migrate")):
        p = command(tracker, *args)
        assert_one_line_error(p, str(tracker.db))
        assert p.stdout == "", (args, p.stdout)
    assert tracker.db.read_bytes() == bad, "the corrupt file was changed"
    assert not Path(f"{tracker.db}-wal").exists() or Path(f"{tracker.db}-wal").stat().st_size == 0


def _overwrite_table_root(tracker: Tracker, data: bytes, table: str) -> bytes:
    """`data` with the root page of `table` replaced by random bytes: the header is fine, the
    file opens, the damage shows when that table is read."""
    tracker.db.write_bytes(data)
    conn = sqlite3.connect(f"file:{tracker.db}?mode=ro", uri=True)
    try:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    finally:
        conn.close()
    start = (root - 1) * 4096
    return data[:start] + random.Random(root).randbytes(4096) + data[start + 4096:]


@pytest.mark.slow
def test_a_damaged_table_found_after_open_names_the_path(github):
    payload, route, tracker = github
    data = _real_database(tracker, route, payload)
    _fresh(tracker, _overwrite_table_root(tracker, data, "providers"))
    for args in (("incidents",), ("providers",), ("run", "--once")):
        p = command(tracker, *args)
        assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr
        assert_one_line_error(p, str(tracker.db))


@pytest.mark.slow
def test_run_once_on_a_malformed_updates_table_fails(github):
    payload, route, tracker = github
    route.set_json(cut(payload, T0))
    assert tracker.once()[0] == 0
    data = tracker.db.read_bytes()
    _fresh(tracker, _overwrite_table_root(tracker, data, "updates"))
    route.set_json(cut(payload, T3))  # new updates to record
    p = command(tracker, "run", "--once")
    assert "store_failed" in p.stdout  # logged as it happens, then...
    assert_one_line_error(p, str(tracker.db))  # ...exit 1: a timer sees the failure


# -- the path is not usable -----------------------------------------------------------------

@pytest.mark.slow
def test_the_database_path_is_a_directory(github):
    payload, route, tracker = github
    tracker.db.mkdir(parents=True)
    for args in (("run", "--once"), ("incidents",), ("providers",), ("db", "migrate")):
        p = command(tracker, *args)
        assert_one_line_error(p, str(tracker.db))
        assert p.stdout == ""
    assert tracker.db.is_dir() and list(tracker.db.iterdir()) == []


@pytest.mark.slow
def test_the_parent_directory_cannot_be_created(github, tmp_path):
    payload, route, _ = github
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a directory should be\n")
    tracker = Tracker(github[2].config, blocker / "state" / "tracker.db")
    for args in (("run", "--once"), ("db", "migrate", "--create")):
        p = command(tracker, *args)
        line = assert_one_line_error(p, str(blocker / "state"))
        assert "Not a directory" in line
        assert p.stdout == ""
    # The read commands have nothing to read: no database, no incidents, no error.
    p = command(tracker, "incidents")
    assert p.returncode == 0 and p.stdout == ""
    assert p.stderr.startswith(f"Note: no database at {tracker.db}") and "No incidents recorded" in p.stderr
    p = command(tracker, "db", "migrate")  # without --create a missing file is named, not made
    assert_one_line_error(p, str(tracker.db))
    assert "no database" in p.stderr
    assert blocker.read_text().startswith("a regular file")


# -- two processes at once ------------------------------------------------------------------

@pytest.mark.slow
def test_run_once_beside_a_daemon_on_one_database_announces_each_update_once(github):
    payload, route, tracker = github
    # The file exists (schema only: no provider polled yet). Two processes creating a fresh
    # file at the same moment is test_two_processes_creating_the_file_at_once below.
    assert command(tracker, "db", "migrate", "--create").returncode == 0
    daemon = tracker.start()
    onces = []
    try:
        # Both start at the same moment: first contact and the claim race between them.
        onces.append(command(tracker, "run", "--once"))
        moments = [at for at, _, _ in all_updates(payload) if at > T0]
        rng = random.Random(7)
        for n, at in enumerate(moments[::6] + [T3]):
            route.set_json(cut(payload, at))
            # Every third page is left to the daemon (it polls every second); the others are
            # raced by a `run --once` started within 0-0.4 s of the change.
            time.sleep(1.3 if n % 3 == 2 else rng.uniform(0.0, 0.4))
            onces.append(command(tracker, "run", "--once"))
        time.sleep(2.5)  # interval 1 s: the daemon has polled the final page
    finally:
        code, daemon_records, daemon_err, _ = Tracker.stop(daemon)
    assert code == 0, daemon_err
    announced = keys(daemon_records)
    for p in onces:
        assert p.returncode == 0, p.stderr
        assert_no_lock_trouble(p.stdout, p.stderr)
        announced += keys(parse_lines(p.stdout))
    assert_no_lock_trouble("\n".join(map(str, daemon_records)), daemon_err)
    expected = open_updates(cut(payload, T0)) + published_between(payload, T0, T3)
    assert len(announced) == len(set(announced)), "an update was announced twice"
    assert sorted(announced) == sorted(expected)
    # Both kinds of process really announced some.
    assert keys(daemon_records) and any(keys(parse_lines(p.stdout)) for p in onces)


# What another tracker process does while it creates a fresh file: it holds SQLite's write lock
# on the file, still in rollback-journal mode, for the moment it takes to switch it to WAL (and
# a tracker process would hold `<db>.lock` around such a write). Held here for seconds, so the
# moment is not left to chance.
CREATOR = """
import fcntl, os, sqlite3, sys, time
fd = os.open(sys.argv[1] + ".lock", os.O_RDWR | os.O_CREAT, 0o660)
fcntl.flock(fd, fcntl.LOCK_EX)
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
fcntl.flock(fd, fcntl.LOCK_UN)
print("released", flush=True)
sys.stdin.read()
conn.close()
"""


@pytest.mark.slow
def test_two_processes_creating_the_file_at_once(github):
    payload, route, tracker = github
    tracker.db.parent.mkdir(parents=True)
    other = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CREATOR), str(tracker.db), str(HOLD)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert other.stdout.readline().strip() == "locked", other.stderr.read()
        p = command(tracker, "run", "--once")
        assert other.stdout.readline().strip() == "released"
    finally:
        other.stdin.close()
        other.wait(timeout=10)
    assert "database is locked" not in p.stderr
    assert p.returncode == 0, p.stderr
    assert keys(parse_lines(p.stdout)) == open_updates(cut(payload, T0))


@pytest.mark.slow
def test_db_migrate_checks_integrity_and_names_the_damage(github):
    payload, route, tracker = github
    data = _real_database(tracker, route, payload)
    _fresh(tracker, _overwrite_table_root(tracker, data, "updates"))
    p = command(tracker, "db", "migrate")
    assert_one_line_error(p, str(tracker.db))
    assert "damaged" in p.stderr
