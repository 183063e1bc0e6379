"""Crash loop: a daemon `tracker run` SIGKILLed at random moments, again and again, on one
database, while the pages it polls keep publishing new updates.

Half the rounds (chosen by the seeded random generator) write to a slow log consumer: a 4 KiB
pipe read a few hundred bytes at a time, as a loaded journald or log shipper would. A daemon then
spends much of its life blocked writing records it has already committed, so many kills land
between the commit and the mark "emitted" -- the window the outbox exists for.

The guarantee under crashes is at-least-once (README, "Exactly once"): an update recorded but
not yet logged when the process dies is emitted by the next process (a dead process of this
host is taken over at once). So across every round plus one clean `run --once` at the end:
nothing published is lost, nothing that should stay silent is announced, the outbox is empty,
the file is intact. Duplicates are allowed and counted.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import Tracker, updates_of, write_config
from pages import all_updates, cut, load

GITHUB = "github-incidents-2026-07-31.json"
PROVIDERS = ("a", "b", "c")  # three providers, each serving the same capture on its own route
TAIL = 60  # the capture's last 60 updates are published one by one while the daemons run
SEED = 20260731
MIN_ROUNDS = 24  # at least this many SIGKILLs in a row
MAX_ROUNDS = 45
KILL_AFTER = (0.3, 1.5)  # seconds between the start of a daemon and its SIGKILL
STEP_EVERY = 0.12  # seconds between two advances of one page (1-2 updates each)
BUDGET = 50.0  # seconds for the whole loop, a hard bound
PIPE_SIZE = 4096  # the slow consumer's pipe (the smallest Linux allows: one page)
SLOW_READ = (256, 0.05)  # the slow consumer reads 256 bytes every 50 ms (~5 KB/s)


class Consumer:
    """The reading end of a daemon's stdout pipe, in a thread: slow (a few hundred bytes at a
    time) or fast; after the kill it drains what is left at full speed. Everything read is also
    written to `path` for the record."""

    def __init__(self, path: Path, slow: bool):
        self.path = path
        self.slow = slow
        self.read_fd, self.write_fd = os.pipe()
        if slow:
            fcntl.fcntl(self.write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self.chunks: list[bytes] = []
        self.drain = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        size, pause = SLOW_READ if self.slow else (65536, 0.0)
        while True:
            data = os.read(self.read_fd, 65536 if self.drain.is_set() else size)
            if not data:
                return
            self.chunks.append(data)
            if pause and not self.drain.is_set():
                self.drain.wait(pause)

    def start(self) -> int:
        self.thread.start()
        return self.write_fd

    def finish(self) -> bytes:
        """After the writer is dead: read the rest, close, return everything."""
        self.drain.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "stdout pipe never reached EOF"
        os.close(self.read_fd)
        data = b"".join(self.chunks)
        self.path.write_bytes(data)
        return data


def _read_round(data: bytes) -> tuple[list[dict], int]:
    """Records of one round's stdout. The kill may cut the last line: a final line that is not
    valid JSON is ignored and counted; every other line must be one JSON object."""
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    tail = lines.pop()  # "" when the output ends with a newline
    records = [json.loads(line) for line in lines if line.strip()]
    cut_lines = 0
    if tail.strip():
        try:
            records.append(json.loads(tail))
        except ValueError:
            cut_lines = 1
    return records, cut_lines


def _key(record: dict) -> tuple[str, str, str]:
    return record["provider_id"], record["incident_id"], record["update_id"]


class Pages:
    """The three routes, each stepping through the capture's tail at its own random pace."""

    def __init__(self, server, payload: dict, rng: random.Random):
        moments = [at for at, _, _ in all_updates(payload)[-(TAIL + 1):]]
        self.start, self.final = moments[0], moments[-1]
        # Precomputed bodies: the cut at the update before the tail, then one per update.
        self.bodies = [json.dumps(cut(payload, at)).encode() for at in moments]
        self.rng = rng
        self.pos = dict.fromkeys(PROVIDERS, 0)
        self.routes = {p: server.route(f"/{p}/api/v2/incidents.json") for p in PROVIDERS}
        for p, route in self.routes.items():
            route.body = self.bodies[0]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._advance, daemon=True)

    def done(self) -> bool:
        return all(i == len(self.bodies) - 1 for i in self.pos.values())

    def _advance(self) -> None:
        while not self.stop.wait(STEP_EVERY) and not self.done():
            p = self.rng.choice([p for p in PROVIDERS if self.pos[p] < len(self.bodies) - 1])
            self.pos[p] = min(len(self.bodies) - 1, self.pos[p] + self.rng.choice((1, 1, 2)))
            self.routes[p].body = self.bodies[self.pos[p]]


def _first_contact_done(db: Path) -> bool:
    """Between rounds (no tracker process alive): has every provider had its first contact?"""
    if not db.exists():
        return False
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT id, first_polled_at FROM providers").fetchall()
    except sqlite3.OperationalError:  # killed before the schema was in place
        return False
    finally:
        conn.close()
    return {r[0] for r in rows if r[1]} == set(PROVIDERS)


@pytest.mark.slow
def test_sigkill_loop_loses_nothing_and_leaves_a_sound_database(server, tmp_path):
    started = time.monotonic()
    payload = load(GITHUB)
    rng = random.Random(SEED)
    pages = Pages(server, payload, random.Random(SEED + 1))
    config = write_config(
        tmp_path / "tracker.toml",
        [{"name": f"GitHub {p.upper()}", "id": p, "url": f"{server.base}/{p}"} for p in PROVIDERS],
        interval=1,
    )
    tracker = Tracker(config, tmp_path / "state" / "tracker.db")
    out_dir = tmp_path / "rounds"
    out_dir.mkdir()

    emitted: list[tuple[str, str, str]] = []
    figures = {"rounds": 0, "kills": 0, "cut_lines": 0, "outbox_recovered": 0, "takeover_rounds": 0,
               "rounds_emitting": 0, "slow_consumer_rounds": 0}
    errors: list[str] = []
    advancing = False
    rounds_after_final = 0
    try:
        while True:
            n = figures["rounds"]
            if n >= MIN_ROUNDS and pages.done() and rounds_after_final >= 2:
                break
            assert n < MAX_ROUNDS and time.monotonic() - started < BUDGET, (
                f"loop bound reached: {figures}, pages at {pages.pos}, advancing={advancing}"
            )
            if pages.done():
                rounds_after_final += 1
            stdout_path, stderr_path = out_dir / f"{n:02d}.out", out_dir / f"{n:02d}.err"
            slow = rng.random() < 0.5
            kill_after = rng.uniform(*KILL_AFTER)
            consumer = Consumer(stdout_path, slow)
            figures["slow_consumer_rounds"] += slow
            with open(stderr_path, "wb") as err:
                try:
                    proc = subprocess.Popen(tracker.args("run"), stdout=consumer.start(), stderr=err)
                finally:
                    os.close(consumer.write_fd)
                try:
                    time.sleep(kill_after)
                    alive = proc.poll() is None
                    proc.send_signal(signal.SIGKILL)
                finally:
                    proc.kill()  # no-op if already dead; never leave a daemon behind
                    proc.wait(timeout=10)
            data = consumer.finish()
            figures["rounds"] += 1
            assert alive, f"round {n}: the daemon exited by itself ({proc.returncode}): {stderr_path.read_text()}"
            figures["kills"] += 1

            records, cut_lines = _read_round(data)
            figures["cut_lines"] += cut_lines
            got = [_key(r) for r in updates_of(records)]
            emitted += got
            figures["rounds_emitting"] += bool(got)
            # A round that starts by taking over rows: the kill before it landed between a
            # commit and the mark "emitted".
            recovered = sum(r["updates"] for r in records if r["event"] == "outbox_recovered")
            figures["outbox_recovered"] += recovered
            figures["takeover_rounds"] += bool(recovered)
            errors += [f"round {n}: {r}" for r in records if r["event"] == "store_failed" or r.get("level") == "error"]
            stderr = stderr_path.read_text()
            if stderr.strip():
                errors.append(f"round {n} stderr: {stderr.strip()[-500:]}")

            if not advancing and _first_contact_done(tracker.db):
                # First contact happened on the starting page; from now on new updates keep
                # appearing while the daemons run (and get killed).
                advancing = True
                pages.thread.start()
            assert advancing or n < 10, "no first contact after 10 rounds"
    finally:
        pages.stop.set()
        if pages.thread.is_alive():
            pages.thread.join(5)

    assert pages.done()
    # One clean run takes over whatever the dead processes left recorded but unemitted.
    code, records, err = tracker.once(timeout=30)
    assert code == 0, err
    assert "Traceback" not in err and "database is locked" not in err
    final = [_key(r) for r in updates_of(records)]
    emitted += final
    errors += [f"final: {r}" for r in records if r["event"] == "store_failed" or r.get("level") == "error"]

    # What should have been announced: the first-contact page's open incidents, then every
    # update published after it, for each provider.
    start_page = cut(payload, pages.start)
    open_at_start = [
        (i["id"], u["id"]) for i in start_page["incidents"]
        if i["status"] not in ("resolved", "completed", "postmortem") for u in i["incident_updates"]
    ]
    published = [(i, u) for at, i, u in all_updates(payload) if pages.start < at <= pages.final]
    assert len(published) == TAIL and open_at_start
    expected = {(p, i, u) for p in PROVIDERS for i, u in open_at_start + published}
    history = {(p, i, u) for p in PROVIDERS for _, i, u in all_updates(cut(payload, pages.final))}

    duplicates = len(emitted) - len(set(emitted))
    figures.update(
        expected=len(expected), emitted=len(emitted), distinct=len(set(emitted)), duplicates=duplicates,
        final_once=len(final), seconds=round(time.monotonic() - started, 1),
    )
    print(f"\ncrash loop: {json.dumps(figures)}")

    assert errors == []
    assert expected - set(emitted) == set(), "lost: published but never emitted"
    assert set(emitted) - expected == set(), "announced what should have stayed silent"

    conn = sqlite3.connect(tracker.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = conn.execute("SELECT provider_id, incident_id, update_id, announce, emitted_at FROM updates").fetchall()
        outbox = conn.execute(
            "SELECT count(*) FROM updates WHERE announce = 1 AND emitted_at IS NULL"
        ).fetchone()[0]
    finally:
        conn.close()
    assert outbox == 0
    assert {(p, i, u) for p, i, u, *_ in rows} == history and len(rows) == len(history)
    assert {(p, i, u) for p, i, u, ann, _ in rows if ann} == expected
    assert all(emitted_at for *_, ann, emitted_at in rows if ann)
    assert figures["kills"] >= 20
