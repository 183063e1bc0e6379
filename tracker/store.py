"""SQLite: the history of every incident and update, and the claim that makes emission
exactly-once across restarts and across processes sharing one file.

One connection per process, used from the main thread only (worker threads fetch and parse,
never touch the database). Every write is a short `BEGIN IMMEDIATE` transaction: it takes the
write lock up front, so a second process waits on the busy timeout instead of failing on a
lock upgrade (a deferred transaction that reads then writes gets SQLITE_BUSY at once in WAL
mode, bypassing the busy handler).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import migrations
from .errors import StoreError
from .models import CLOSED_STATUSES, Cached, Incident, PollState, source_digest
from .policy import Policy
from .times import iso, now_iso

# "status NOT IN (…)" of an incident still open, for SQL (the statuses are constants, not input);
# "i.{OPEN}" for a table named i
OPEN = "status NOT IN (" + ",".join(f"'{x}'" for x in sorted(CLOSED_STATUSES)) + ")"
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's write lock
CHUNK = 400  # rows per multi-row statement (well under SQLite's variable limit)


def _wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (readers run beside the writer; the mode is stored in the file,
    and cannot change inside a transaction, which is why it is here and not in a migration).

    On a file still in rollback mode while another process writes it, SQLite answers BUSY at
    once instead of waiting (its busy handler would risk a deadlock), so wait here."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def connect(path: str | Path) -> sqlite3.Connection:
    """Open `path` with the pragmas every process must share."""
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None)
        _wal(conn)
        # FULL syncs the WAL on every commit: a power loss cannot roll back a claim that was
        # already announced. tracker commits tens of rows a minute, far below its cost.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # A 512 KiB page cache instead of SQLite's 2 MiB: a poll touches a few pages, and a
        # cold run over 200 pages costs the same CPU either way (tests/benchmarks/bench_run.py);
        # the daemon keeps 1.5 MB less for good.
        conn.execute("PRAGMA cache_size=-512")
    except sqlite3.Error as e:
        raise StoreError(f"cannot open database {path}: {e}") from None
    conn.row_factory = sqlite3.Row
    return conn


@functools.lru_cache(maxsize=4096)
def _json_names(names: tuple[str, ...]) -> str:
    """Component names as stored (a JSON list); pages repeat the same few sets endlessly."""
    return json.dumps(list(names)) if names else "[]"


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


@dataclass(frozen=True)
class Claim:
    """What one recorded poll changed."""

    new: int  # updates recorded for the first time, announced or not
    announce_ids: list[int]  # row ids of those to emit, oldest first
    first_contact: bool
    recovered_after: int  # consecutive failures before this success (0: none)
    edit_ids: list[int] = field(default_factory=list)  # edits rows to emit
    edits: int = 0  # updates whose source text changed on the page
    closed: int = 0  # incidents closed because they left a page listing only open ones
    moved_from: str | None = None  # the URL of the last poll, when this one read another
    gone: int = 0  # incidents missing from the page, waiting out the grace period
    # Maintenances this poll found unlisted before their window (rows: incident_id, title,
    # scheduled_for), each found by one process only: the maintenance_unlisted records.
    unlisted: list[Any] = field(default_factory=list)
    stale: bool = False  # the open-only view was older than one already read: no evidence
    # With PollRecord.track: the incidents held open afterwards (id -> kind) and which of them
    # are missing (the worker's PollState.held and .missing). None: not asked.
    held: dict[str, str] | None = None
    missing: frozenset[str] | None = None


CLOSED_MESSAGE = "No longer listed on the status page"


@dataclass
class Shut:
    """What `_close_missing` did: closings claimed (row id, announce, created_at), incidents
    still waiting out the grace, maintenances unlisted before their window, and (when asked)
    what is held open afterwards."""

    closing: list[tuple[int, int, str]] = field(default_factory=list)
    gone: int = 0
    unlisted: list[Any] = field(default_factory=list)
    held: dict[str, str] | None = None
    missing: frozenset[str] | None = None


@dataclass(frozen=True)
class PollRecord:
    """A successful poll of a provider's own page: the format it was read in, and the URL
    validators to keep now that what those URLs returned is recorded."""

    format: str
    cache: dict[str, Cached]
    url: str | None = None  # the page's configured URL (another one: a new first contact)
    # Incident ids listed by the views that list only open incidents, when such a view was read
    # in full this poll (None: none was, so nothing can be found missing).
    listed: frozenset[str] | None = None
    grace: float = 0.0  # seconds an incident must stay missing before it is closed
    # What `format = "auto"` found by probing this poll, to remember with the rest (one commit
    # instead of two on a first contact: each costs a WAL write and an fsync).
    detected: str | None = None
    capped: frozenset[str] = frozenset()  # kinds whose open-only list was at its cap: none missing
    vouched: frozenset[str] = frozenset()  # ids a history view lists as still open: not missing
    page_time: str | None = None  # the page's clock, as the open-only views state it
    track: bool = False  # the page has open-only views: say what is held open afterwards


def times_iso_minus(now: str, seconds: float) -> str:
    """`now` (ISO, UTC) less `seconds`, in the same fixed-width form (so it compares as text)."""
    if not seconds:
        return now
    return iso(datetime.fromisoformat(now.replace("Z", "+00:00")) - timedelta(seconds=seconds))


def _owner_is_dead(owner: str) -> bool:
    """True if `owner` ("host:pid:token") names a process of this host that no longer runs.
    Its unemitted updates can then be taken over at once instead of after the lease."""
    host, pid_text, _token = (owner.rsplit(":", 2) + ["", ""])[:3]
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, another user's
        return False
    return False


class WriteLock:
    """An advisory lock (flock) on `<database>.lock` held around every write transaction
    and around closing the connection, so tracker processes sharing a database never write
    or checkpoint at the same moment.

    Why: SQLite 3.7.0-3.51.2 (Debian 12 ships 3.40.1) has a WAL-reset race that can corrupt
    the file or lose commits when two connections write or checkpoint concurrently
    (https://sqlite.org/wal.html#walresetbug). Checkpoints run inside COMMIT, or when the last
    connection closes, so serialising those removes the race between tracker processes. It is
    a separate file: closing any descriptor of the database itself would drop SQLite's own
    POSIX locks.
    """

    def __init__(self, path: Path):
        try:
            self.fd: int | None = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        except OSError:
            self.fd = None  # a read-only place: nothing will be written there anyway

    @contextmanager
    def held(self, timeout: float = BUSY_TIMEOUT) -> Iterator[None]:
        if self.fd is None:
            yield
            return
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"database is busy: another process held its write lock for {timeout:g} s"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class EmptyDatabase(StoreError):
    """A read-only open found no database, or one nothing was recorded in."""


class _NoLock:
    """A read-only connection writes nothing, so it takes no write lock."""

    fd = None

    @contextmanager
    def held(self, timeout: float = BUSY_TIMEOUT) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


class Store:
    """The database of one tracker installation."""

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: "WriteLock | None" = None):
        self.conn = conn
        self.path = path
        self.lock = lock or WriteLock(path)

    @classmethod
    def open(cls, path: str | Path, *, migrate: bool = True, create: bool = True) -> "Store":
        """Open for writing and apply migrations. With `create`, a missing file (and its
        directory) is created; without, a missing file is a StoreError naming it."""
        path = Path(path)
        if not create and not path.exists():
            raise StoreError(f"no database at {path} (nothing created; check --db / TRACKER_DB)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create directory {path.parent}: {e.strerror or e}") from None
        lock = WriteLock(path)
        try:
            with lock.held():  # tracker processes opening a new file together take turns
                conn = connect(path)
        except BaseException:
            lock.close()
            raise
        store = cls(conn, path, lock)
        if migrate:
            store.migrate()
        return store

    @classmethod
    def open_readonly(cls, path: str | Path) -> "Store":
        """Open an existing database read-only (datasette's `mode=ro`): never creates, migrates
        or locks it. A missing file, or one no tracker has written yet, is a StoreError that
        names the file."""
        path = Path(path)
        if path.exists() and not path.is_file():
            raise StoreError(f"cannot read database {path}: not a regular file")
        if not path.is_file():
            raise EmptyDatabase(f"no database at {path}: nothing recorded yet "
                             "(run `tracker run` first, or point --db / TRACKER_DB at the right file)")
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT,
                                   isolation_level=None)
            conn.row_factory = sqlite3.Row
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as e:
            raise StoreError(f"cannot read database {path}: {e}") from None
        if "providers" not in tables:
            conn.close()
            raise EmptyDatabase(f"{path} is empty: no tracker has written to it yet")
        missing = {name for name, _ in migrations.available()} - migrations.recorded(conn)
        if missing:
            conn.close()
            raise StoreError(f"{path} needs a schema upgrade first: run `tracker db migrate --db {path}`")
        store = cls(conn, path, _NoLock())
        store.readonly = True
        return store

    def migrate(self) -> list[str]:
        try:
            with self.lock.held():
                return migrations.apply(self.conn)
        except sqlite3.Error as e:
            raise StoreError(f"cannot migrate database {self.path}: {e}") from None

    def check(self) -> None:
        """PRAGMA quick_check: raise StoreError naming the first problem if the file is damaged."""
        try:
            rows = [r[0] for r in self.conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as e:
            rows = [str(e)]
        if rows != ["ok"]:
            raise StoreError(f"{self.path}: the database is damaged: {rows[0]}"
                             + (f" (and {len(rows) - 1} more problems)" if len(rows) > 1 else ""))

    readonly = False

    def close(self) -> None:
        # The last connection to close checkpoints the WAL: a write, so under the lock.
        with self.lock.held():
            self.conn.close()
        self.lock.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on any exception."""
        with self.lock.held():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # -- providers ---------------------------------------------------------------------

    def sync_providers(self, providers: Iterable[Any]) -> None:
        """Make sure every configured provider has a row; keep its poll state."""
        rows = [(p.id, p.name, p.url, p.format) for p in providers]
        with self.transaction() as c:
            c.executemany(
                "INSERT INTO providers (id, name, url, format) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, "
                "format = excluded.format, "
                # a new URL may be another platform: probe it again
                "detected_format = CASE WHEN url = excluded.url THEN detected_format END",
                rows,
            )

    def poll_states(self) -> dict[str, PollState]:
        """Provider id -> its poll state, as recorded (the validators of every URL included)."""
        states = {
            row["id"]: PollState(
                failures=row["failures"], next_poll_at=row["next_poll_at"],
                detected_format=row["detected_format"], polled_format=row["polled_format"],
                first_polled_at=row["first_polled_at"], last_ok_at=row["last_ok_at"],
            )
            for row in self.conn.execute("SELECT * FROM providers")
        }
        held: dict[str, dict[str, str]] = {}
        missing: dict[str, set[str]] = {}
        for pid, iid, kind, gone_at in self.conn.execute(
            f"SELECT provider_id, incident_id, kind, gone_at FROM incidents WHERE {OPEN} AND unlisted_at IS NULL"
        ):
            held.setdefault(pid, {})[iid] = kind
            if gone_at is not None:
                missing.setdefault(pid, set()).add(iid)
        for pid, state in states.items():
            state.held = held.get(pid, {})
            state.missing = frozenset(missing.get(pid, ()))
        for row in self.conn.execute("SELECT * FROM view_cache"):
            if row["provider_id"] in states:
                states[row["provider_id"]].cache[row["url"]] = Cached(
                    row["etag"], row["last_modified"], row["body_sha256"])
        return states

    @staticmethod
    def _keep_cache(c: sqlite3.Connection, provider_id: str, cache: dict[str, Cached]) -> None:
        c.executemany(
            "INSERT INTO view_cache (provider_id, url, etag, last_modified, body_sha256) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (provider_id, url) DO UPDATE SET etag = excluded.etag, "
            "last_modified = excluded.last_modified, "
            "body_sha256 = COALESCE(excluded.body_sha256, body_sha256)",
            [(provider_id, url, v.etag, v.last_modified, v.body_sha256) for url, v in cache.items()],
        )

    def record_not_modified(self, provider_id: str, now: str, cache: dict[str, Cached] | None = None) -> int:
        """A 304 (or a body identical to the last one recorded): the poll succeeded and
        found nothing new. New validators for the same body are kept. Returns the
        consecutive failures this success ends."""
        with self.transaction() as c:
            before = c.execute("SELECT failures FROM providers WHERE id = ?", (provider_id,)).fetchone()
            c.execute(
                "UPDATE providers SET last_poll_at = ?, last_ok_at = ?, last_result = 'not_modified', "
                "last_error = NULL, failures = 0, next_poll_at = NULL WHERE id = ?",
                (now, now, provider_id),
            )
            if cache:
                self._keep_cache(c, provider_id, cache)
        return before["failures"] if before else 0

    def remember_format(self, provider_id: str, fmt: str) -> None:
        """What `format = "auto"` found by probing the page."""
        with self.transaction() as c:
            c.execute("UPDATE providers SET detected_format = ? WHERE id = ?", (fmt, provider_id))

    def record_quiet(self, polled: dict[str, str]) -> None:
        """Many "polled at <time>, nothing new" results at once (provider id -> time), for
        providers that were not failing: one commit instead of one per poll."""
        with self.transaction() as c:
            c.executemany(
                "UPDATE providers SET last_poll_at = ?1, last_ok_at = ?1, last_result = 'not_modified', "
                "last_error = NULL, failures = 0, next_poll_at = NULL WHERE id = ?2",
                [(when, pid) for pid, when in polled.items()],
            )

    def record_failure(self, provider_id: str, error: str, now: str, not_before: str | None = None) -> int:
        """Count one more consecutive failure and keep the next poll from starting before
        `not_before` (backoff). Returns the count including this one."""
        with self.transaction() as c:
            row = c.execute(
                "UPDATE providers SET last_poll_at = ?, last_result = 'error', last_error = ?, "
                "failures = failures + 1, next_poll_at = ? WHERE id = ? RETURNING failures",
                (now, error[:1000], not_before, provider_id),
            ).fetchone()
        return row["failures"] if row else 1

    # -- the claim ---------------------------------------------------------------------

    def record(
        self,
        provider_id: str,
        incidents: Sequence[Incident],
        *,
        now: str,
        source: str,
        policy: Policy,
        lease: tuple[str, str],
        poll: PollRecord | None = None,
    ) -> Claim:
        """Record incidents and claim every update not seen before, every edit and every
        closing.

        The one writer path: `run`, `run --once` and `backfill` all come here. Inside one
        `BEGIN IMMEDIATE` transaction it upserts the incidents and inserts the updates with
        `ON CONFLICT DO NOTHING`, and reads back the rows past the table's last id: only rows
        this process really inserted come back; any other process (or an earlier run) that
        recorded an update first owns it.
        Edits (an update whose source text changed) are claimed the same way, keyed by the new
        text's digest, and so are inferred closings (`closed`, `closed-2`, …).

        `policy` decides which new updates are announced; those are leased to `lease` =
        (owner, until) for the outbox. `poll` is given for a poll of the provider's own page:
        it says in which format and at which URL the page was read, which URL validators to
        keep and which incidents the open-only views listed, and makes this the provider's
        last successful poll (first contact: its first, or the first in another format or at
        another URL). Without it (backfill) the poll state is left alone and nothing closes.
        """
        owner, lease_until = lease
        with self.transaction() as c:
            # With the write lock held (nobody else inserts meanwhile), the rows this claim
            # inserts are those past the updates table's last id, taken here in the same query.
            state = c.execute(
                "SELECT first_polled_at, failures, polled_format, polled_url, page_time, "
                "(SELECT coalesce(max(id), 0) FROM updates) AS last_id FROM providers WHERE id = ?",
                (provider_id,),
            ).fetchone()
            if state is None:
                raise StoreError(f"provider {provider_id!r} has no row; sync_providers() first")
            moved_from = None
            if poll is not None and poll.url and state["polled_url"] not in (None, poll.url):
                moved_from = state["polled_url"]
            # First contact: never polled, or polled in another format or at another URL (its
            # ids differ, or its history is not ours: §4).
            first_contact = poll is not None and (
                state["first_polled_at"] is None or state["polled_format"] not in (None, poll.format)
                or moved_from is not None
            )

            incident_rows = []
            update_rows = []
            announced: dict[str, bool] = {}
            for inc in incidents:
                names = list(inc.components)
                for u in inc.updates:
                    names.extend(n for n in u.components if n not in names)
                incident_rows.append(
                    (provider_id, inc.incident_id, inc.title, inc.status, inc.impact, inc.kind, inc.url,
                     _json_names(tuple(names)), inc.created_at, inc.updated_at, inc.resolved_at, now, now,
                     inc.scheduled_for, inc.scheduled_until)
                )
                announce = announced[inc.incident_id] = policy.announces(inc, first_contact)
                for u in inc.updates:
                    update_rows.append(
                        (provider_id, inc.incident_id, u.update_id, u.status, u.message,
                         _json_names(u.components), u.created_at, now, source, int(announce),
                         owner if announce else None, lease_until if announce else None,
                         u.digest, u.view)
                    )

            for chunk in _chunks(incident_rows):
                c.execute(
                    "INSERT INTO incidents (provider_id, incident_id, title, status, impact, kind, url, "
                    "components, created_at, updated_at, resolved_at, first_seen_at, last_seen_at, "
                    "scheduled_for, scheduled_until) VALUES "
                    + ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk))
                    + " ON CONFLICT (provider_id, incident_id) DO UPDATE SET title = excluded.title, "
                    "status = excluded.status, impact = excluded.impact, kind = excluded.kind, "
                    "url = excluded.url, components = excluded.components, "
                    "updated_at = excluded.updated_at, resolved_at = excluded.resolved_at, "
                    "last_seen_at = excluded.last_seen_at, "
                    "scheduled_for = COALESCE(excluded.scheduled_for, scheduled_for), "
                    "scheduled_until = COALESCE(excluded.scheduled_until, scheduled_until)",
                    [v for row in chunk for v in row],
                )
            # The rows inserted are read back in one query past `last_id`: RETURNING would
            # hand back every row, one step (and one release of the interpreter to the worker
            # threads) at a time, where first contact needs only the few it announces.
            last_id = state["last_id"]
            inserted = 0
            for chunk in _chunks(update_rows):
                inserted += c.execute(
                    "INSERT INTO updates (provider_id, incident_id, update_id, status, message, components, "
                    "created_at, recorded_at, source, announce, lease_owner, lease_until, source_sha256, "
                    "source_view) VALUES "
                    + ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk))
                    + " ON CONFLICT (provider_id, incident_id, update_id) DO NOTHING",
                    [v for row in chunk for v in row],
                ).rowcount
            # When every update listed is new (first contact above all), only the announced
            # ones are read back (none when no incident is announced: a first contact with
            # nothing open); else every new one, to tell which of the others may carry an edit.
            every_row = inserted == len(update_rows)
            if not inserted or every_row and not any(announced.values()):
                new_rows = []
            else:
                new_rows = c.execute(
                    "SELECT id, announce, created_at, incident_id, update_id FROM updates WHERE id > ?"
                    + (" AND announce = 1" if every_row else ""), (last_id,),
                ).fetchall()
            claimed = [(r[0], r[1], r[2]) for r in new_rows]
            seen_before = []
            if not every_row:
                new_keys = {(r[3], r[4]) for r in new_rows}
                seen_before = [row for row in update_rows if (row[1], row[2]) not in new_keys]
            edit_ids, edits = self._claim_edits(c, provider_id, seen_before, announced, now, source, owner,
                                               lease_until) if seen_before else ([], 0)

            shut = Shut()
            stale = False
            if poll is not None:
                # A page whose clock is older than one already read is a stale copy (a CDN
                # serving an old version): what it does not list is not missing.
                known_time = None if first_contact else state["page_time"]
                stale = bool(poll.page_time and known_time and poll.page_time < known_time)
                shut = self._close_missing(c, provider_id, poll, policy, now, source, owner, lease_until,
                                           first_contact, stale)
                c.execute(
                    "UPDATE providers SET first_polled_at = COALESCE(first_polled_at, ?), "
                    "last_poll_at = ?, last_ok_at = ?, last_result = 'ok', last_error = NULL, "
                    "failures = 0, next_poll_at = NULL, polled_format = ?, "
                    "polled_url = COALESCE(?, polled_url), detected_format = COALESCE(?, detected_format), "
                    "page_time = ? WHERE id = ?",
                    (now, now, now, poll.format, poll.url, poll.detected,
                     max(filter(None, (known_time, poll.page_time)), default=None), provider_id),
                )
                self._keep_cache(c, provider_id, poll.cache)
            closing = shut.closing
        everything = claimed + closing
        announce_ids = [row_id for row_id, ann, _ in sorted(everything, key=lambda r: (r[2], r[0])) if ann]
        return Claim(
            new=inserted,
            announce_ids=announce_ids,
            first_contact=first_contact,
            recovered_after=state["failures"] if poll is not None else 0,
            edit_ids=edit_ids,
            edits=edits,
            closed=len(closing),
            moved_from=moved_from,
            gone=shut.gone,
            unlisted=shut.unlisted,
            stale=stale,
            held=shut.held,
            missing=shut.missing,
        )

    def _claim_edits(self, c: sqlite3.Connection, provider_id: str, rows: list[tuple], announced: dict[str, bool],
                     now: str, source: str, owner: str, lease_until: str) -> tuple[list[int], int]:
        """Updates listed again whose source text is not the one recorded: store the new text
        and claim one edit per distinct new text. Rows recorded before digests were kept adopt
        theirs silently. A text is compared only with one from the same view of the page (two
        views may word an update differently), except that text replacing a fallback line (the
        page gave none before) is always an edit."""
        stored: dict[tuple[str, str], sqlite3.Row] = {}
        by_incident: dict[str, list[str]] = {}
        for row in rows:
            by_incident.setdefault(row[1], []).append(row[2])
        for incident_id, update_ids in by_incident.items():
            for chunk in _chunks(update_ids):
                for r in c.execute(
                    "SELECT incident_id, update_id, message, source_sha256, source_view FROM updates "
                    f"WHERE provider_id = ? AND incident_id = ? AND update_id IN ({','.join('?' * len(chunk))})",
                    [provider_id, incident_id, *chunk],
                ):
                    stored[(r[0], r[1])] = r
        adopt, changed = [], []
        empty = source_digest("")
        for row in rows:
            incident_id, update_id, message, digest, view = row[1], row[2], row[4], row[12], row[13]
            old = stored.get((incident_id, update_id))
            if old is None or old["source_sha256"] == digest or digest == empty:
                continue  # unchanged, or the page gives no text now: never a downgrade
            if old["source_sha256"] is None:
                adopt.append((digest, view, provider_id, incident_id, update_id))
            elif old["source_sha256"] == empty or old["source_view"] == view:
                changed.append((row, old["message"]))
        if adopt:
            c.executemany("UPDATE updates SET source_sha256 = ?, source_view = ? "
                          "WHERE provider_id = ? AND incident_id = ? AND update_id = ?", adopt)
        ids: list[int] = []
        for row, previous in changed:
            incident_id, update_id, message, digest, view = row[1], row[2], row[4], row[12], row[13]
            c.execute("UPDATE updates SET message = ?, source_sha256 = ?, source_view = ? "
                      "WHERE provider_id = ? AND incident_id = ? AND update_id = ?",
                      (message, digest, view, provider_id, incident_id, update_id))
            announce = announced.get(incident_id, False)
            got = c.execute(
                "INSERT INTO edits (provider_id, incident_id, update_id, source_sha256, message, previous_message, "
                "recorded_at, source, announce, lease_owner, lease_until) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (provider_id, incident_id, update_id, source_sha256) DO NOTHING RETURNING id",
                (provider_id, incident_id, update_id, digest, message, previous, now, source, int(announce),
                 owner if announce else None, lease_until if announce else None),
            ).fetchone()
            if got is not None and announce:
                ids.append(got[0])
        return ids, len(changed)

    def _close_missing(self, c: sqlite3.Connection, provider_id: str, poll: PollRecord, policy: Policy, now: str,
                       source: str, owner: str, lease_until: str, first_contact: bool, stale: bool = False
                       ) -> "Shut":
        """Closing by disappearance (docs/contract.md §4).

        Incidents held open that the page's open-only views no longer list are marked missing
        (`gone_at`), unless the list they were on is at its cap, or they are maintenances
        still scheduled whose window has not begun by the page's clock: those are marked
        unlisted instead (`unlisted_at`), never closed for it. What a history view still lists
        as open is not missing either: its `gone_at` moves on to now. An incident missing for
        `poll.grace` seconds is closed: silently when the page's own closing is already
        recorded (a view that listed it lagged behind), else by an inferred closing
        (`closed`, `closed-2`, …). On first contact (a new page) whatever is missing is closed
        silently. A stale copy of the page marks nothing."""
        shut = Shut()
        if poll.listed is not None and not stale:
            open_rows = c.execute(
                "SELECT incident_id, title, kind, status, scheduled_for, gone_at, unlisted_at FROM incidents "
                f"WHERE provider_id = ? AND {OPEN}",
                (provider_id,),
            ).fetchall()
            back = [r[0] for r in open_rows if r[0] in poll.listed and (r[5] or r[6])]
            c.executemany("UPDATE incidents SET gone_at = NULL, unlisted_at = NULL "
                          "WHERE provider_id = ? AND incident_id = ?", [(provider_id, i) for i in back])
            if first_contact:
                missing = [r for r in open_rows if r[0] not in poll.listed and r[5] is None]
            else:
                missing = [r for r in open_rows if r[0] not in poll.listed and r[5] is None and r[6] is None
                           and r[2] not in poll.capped]
                clock = poll.page_time or now
                shut.unlisted = [r for r in missing if r[2] == "maintenance" and r[3] == "scheduled"
                                 and r[4] is not None and clock < r[4] and not self._started(c, provider_id, r[0])]
                if shut.unlisted:
                    unlisted = {r[0] for r in shut.unlisted}
                    missing = [r for r in missing if r[0] not in unlisted]
                    c.executemany("UPDATE incidents SET unlisted_at = ? WHERE provider_id = ? AND incident_id = ?",
                                  [(now, provider_id, i) for i in unlisted])
            c.executemany("UPDATE incidents SET gone_at = ? WHERE provider_id = ? AND incident_id = ?",
                          [(now, provider_id, r[0]) for r in missing])
        if poll.vouched:
            c.executemany("UPDATE incidents SET gone_at = ? WHERE provider_id = ? AND incident_id = ? "
                          "AND gone_at IS NOT NULL", [(now, provider_id, i) for i in poll.vouched])
        due = times_iso_minus(now, poll.grace)
        gone = c.execute(
            "SELECT incident_id, title, status, impact, kind, url, components, created_at, gone_at "
            f"FROM incidents WHERE provider_id = ? AND gone_at IS NOT NULL AND {OPEN}",
            (provider_id,),
        ).fetchall()
        # What a history view lists as open this poll is not closed whatever the grace; the
        # grace counts from the last poll that vouched for it.
        rows = [r for r in gone if first_contact or r["gone_at"] <= due and r["incident_id"] not in poll.vouched]
        shut.gone = len(gone) - len(rows)
        for r in rows:
            # The page's own closing, recorded already (a view listing it again lagged behind
            # the history that told it): the incident is over, nothing to infer.
            told = c.execute("SELECT status FROM updates WHERE provider_id = ? AND incident_id = ? AND inferred = 0 "
                             "ORDER BY created_at DESC, id DESC LIMIT 1", (provider_id, r["incident_id"])).fetchone()
            if told is not None and told[0] in CLOSED_STATUSES:
                c.execute("UPDATE incidents SET status = ?, gone_at = NULL WHERE provider_id = ? AND incident_id = ?",
                          (told[0], provider_id, r["incident_id"]))
                continue
            inc = Incident(incident_id=r["incident_id"], title=r["title"], status=r["status"], impact=r["impact"],
                           kind=r["kind"], url=r["url"], created_at=r["created_at"],
                           components=tuple(json.loads(r["components"] or "[]")))
            status = inc.closing_status
            before = c.execute("SELECT count(*) FROM updates WHERE provider_id = ? AND incident_id = ? AND inferred = 1",
                               (provider_id, inc.incident_id)).fetchone()[0]
            update_id = "closed" if before == 0 else f"closed-{before + 1}"
            announce = not first_contact and policy.announces(inc, False)
            got = c.execute(
                "INSERT INTO updates (provider_id, incident_id, update_id, status, message, components, created_at, "
                "recorded_at, source, announce, lease_owner, lease_until, source_sha256, inferred) "
                "VALUES (?,?,?,?,?,'[]',?,?,?,?,?,?,?,1) ON CONFLICT (provider_id, incident_id, update_id) DO NOTHING "
                "RETURNING id, announce, created_at",
                (provider_id, inc.incident_id, update_id, status, CLOSED_MESSAGE, now, now, source, int(announce),
                 owner if announce else None, lease_until if announce else None, source_digest(CLOSED_MESSAGE)),
            ).fetchone()
            c.execute("UPDATE incidents SET status = ?, resolved_at = ?, updated_at = ?, gone_at = NULL "
                      "WHERE provider_id = ? AND incident_id = ?", (status, now, now, provider_id, inc.incident_id))
            if got is not None:
                shut.closing.append((got[0], got[1], got[2]))
        if poll.track:
            held = c.execute(f"SELECT incident_id, kind, gone_at FROM incidents WHERE provider_id = ? AND {OPEN} "
                             "AND unlisted_at IS NULL", (provider_id,)).fetchall()
            shut.held = {r[0]: r[1] for r in held}
            shut.missing = frozenset(r[0] for r in held if r[2] is not None)
        return shut

    @staticmethod
    def _started(c: sqlite3.Connection, provider_id: str, incident_id: str) -> bool:
        """Whether a maintenance was ever said to be under way (in progress or verifying)."""
        return c.execute("SELECT 1 FROM updates WHERE provider_id = ? AND incident_id = ? "
                         "AND status IN ('in_progress', 'verifying') LIMIT 1", (provider_id, incident_id)).fetchone() \
            is not None

    def close_gone(self, provider_id: str, *, now: str, source: str, policy: Policy, lease: tuple[str, str],
                   poll: PollRecord) -> Claim:
        """On a poll that found nothing new on the page's own views: what a history view still
        lists as open (`poll.vouched`) waits on, what has been missing for the grace is closed."""
        owner, lease_until = lease
        with self.transaction() as c:
            shut = self._close_missing(c, provider_id, replace(poll, listed=None, track=True), policy, now, source,
                                       owner, lease_until, False)
            if poll.cache:
                self._keep_cache(c, provider_id, poll.cache)
        return Claim(new=0, announce_ids=[r[0] for r in shut.closing if r[1]], first_contact=False,
                     recovered_after=0, closed=len(shut.closing), gone=shut.gone, held=shut.held,
                     missing=shut.missing)

    # -- the outbox --------------------------------------------------------------------

    def lease_pending(self, owner: str, now: str, lease_until: str, limit: int = 1000,
                      table: str = "updates") -> list[int]:
        """Take over updates (or edits: `table="edits"`) recorded for announcement but never
        emitted whose process died between commit and emission: at once when it was a process
        of this host that is gone, otherwise when its lease has run out. Returns their row ids."""
        assert table in ("updates", "edits")
        with self.transaction() as c:
            holders = c.execute(
                f"SELECT DISTINCT lease_owner FROM {table} WHERE announce = 1 AND emitted_at IS NULL"
                " AND lease_until >= ?",
                (now,),
            ).fetchall()
            dead = [h[0] for h in holders if h[0] and h[0] != owner and _owner_is_dead(h[0])]
            rows = c.execute(
                f"UPDATE {table} SET lease_owner = ?, lease_until = ? WHERE id IN ("
                # INDEXED BY: the partial index holds only what is not yet emitted (a handful of
                # rows); without it the OR below makes SQLite scan every update ever recorded,
                # twice a minute (0.3 % of a core with 300,000 updates).
                f" SELECT id FROM {table} INDEXED BY {table}_outbox WHERE announce = 1 AND emitted_at IS NULL"
                " AND (lease_until IS NULL OR lease_until < ?"
                f" OR lease_owner IN ({','.join('?' * len(dead))})) ORDER BY id LIMIT ?) RETURNING id",
                (owner, lease_until, now, *dead, limit),
            ).fetchall()
        return [r[0] for r in rows]

    # What a record needs of an update (docs/contract.md §3), read back after the claim.
    _EVENT = ("{t}.id, {t}.provider_id, p.name AS provider, {t}.incident_id, {t}.update_id, "
              "i.title AS incident, u.status, i.impact, i.kind, u.components, "
              "i.components AS incident_components, {t}.message, u.created_at, i.url, {t}.source, "
              "u.inferred, i.scheduled_for, i.scheduled_until")

    def _read_back(self, select: str, joins: str, alias: str, ids: Sequence[int]) -> list[sqlite3.Row]:
        rows: list[sqlite3.Row] = []
        for chunk in _chunks(list(ids)):
            rows.extend(self.conn.execute(
                f"SELECT {select} {joins} JOIN incidents i USING (provider_id, incident_id) "
                f"JOIN providers p ON p.id = {alias}.provider_id "
                f"WHERE {alias}.id IN ({','.join('?' * len(chunk))})",
                list(chunk),
            ).fetchall())
        rows.sort(key=lambda r: (r["provider_id"], r["created_at"], r["id"]))
        return rows

    def events(self, ids: Sequence[int]) -> list[sqlite3.Row]:
        """Everything an `incident_update` record needs, oldest first within a provider."""
        return self._read_back(self._EVENT.format(t="u"), "FROM updates u", "u", ids)

    def edit_events(self, ids: Sequence[int]) -> list[sqlite3.Row]:
        """Everything an `incident_update_edited` record needs (the update as it is now, the
        new text and the one it replaced), oldest update first within a provider."""
        return self._read_back(
            self._EVENT.format(t="e") + ", e.previous_message, e.source_sha256",
            "FROM edits e JOIN updates u USING (provider_id, incident_id, update_id)", "e", ids)

    def mark_emitted(self, ids: Sequence[int], owner: str, now: str, table: str = "updates",
                     also: Any = None) -> None:
        """Mark rows emitted. `also(conn)`, if given, runs in the same transaction: the
        notification deliveries of these records (notify.queue), so a record is queued for
        its destinations exactly when it is marked emitted, never twice, never not at all."""
        assert table in ("updates", "edits")
        with self.transaction() as c:
            for chunk in _chunks(list(ids)):
                c.execute(
                    f"UPDATE {table} SET emitted_at = ?, lease_owner = NULL, lease_until = NULL "
                    f"WHERE id IN ({','.join('?' * len(chunk))}) AND lease_owner = ?",
                    [now, *chunk, owner],
                )
            if also is not None:
                also(c)

    # -- backfill ----------------------------------------------------------------------

    def component_names(self, provider_id: str) -> set[str]:
        """Every component name the provider's incidents have ever named."""
        names: set[str] = set()
        for (listed,) in self.conn.execute(
            "SELECT DISTINCT components FROM incidents WHERE provider_id = ? AND components != '[]'", (provider_id,)
        ):
            names.update(json.loads(listed))
        return names

    def incident_statuses(self) -> dict[str, dict[str, str]]:
        """provider id -> {incident id -> status}: what a backfill can skip."""
        found: dict[str, dict[str, str]] = {}
        for pid, iid, status in self.conn.execute("SELECT provider_id, incident_id, status FROM incidents"):
            found.setdefault(pid, {})[iid] = status
        return found

    def http_cache(self) -> dict[str, tuple[str | None, str | None]]:
        return {r[0]: (r[1], r[2]) for r in self.conn.execute("SELECT url, etag, last_modified FROM http_cache")}

    def remember(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Keep a page's validators once everything it listed is recorded."""
        if not etag and not last_modified:
            return
        with self.transaction() as c:
            c.execute(
                "INSERT INTO http_cache (url, etag, last_modified, stored_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, "
                "last_modified = excluded.last_modified, stored_at = excluded.stored_at",
                (url, etag, last_modified, now_iso()),
            )

    # -- queries for the CLI -------------------------------------------------------------

    def provider_summaries(self) -> dict[str, dict[str, Any]]:
        """Poll state and counts per provider id."""
        rows = self.conn.execute(
            "SELECT p.*, "
            " (SELECT count(*) FROM incidents i WHERE i.provider_id = p.id) AS incidents, "
            f" (SELECT count(*) FROM incidents i WHERE i.provider_id = p.id AND i.{OPEN})"
            "   AS open_incidents, "
            " (SELECT count(*) FROM updates u WHERE u.provider_id = p.id) AS updates "
            "FROM providers p"
        ).fetchall()
        return {r["id"]: dict(r) for r in rows}

    def query_incidents(
        self,
        provider_ids: Sequence[str] = (),
        *,
        open_only: bool = False,
        since: str | None = None,
        limit: int | None = None,
        with_updates: bool = False,
    ) -> list[dict[str, Any]]:
        """Incidents newest first, each with its update count (and its updates, oldest first)."""
        where, args = [], []
        if provider_ids:
            where.append(f"i.provider_id IN ({','.join('?' * len(provider_ids))})")
            args.extend(provider_ids)
        if open_only:
            where.append(f"i.{OPEN}")
        if since:
            # "Created or updated since": an incident opened last month and still moving this
            # week belongs to "since Monday" (the page's updated_at, or a newer update of it).
            where.append("(i.created_at >= ? OR COALESCE(i.updated_at, i.created_at) >= ? OR EXISTS ("
                         "SELECT 1 FROM updates u WHERE u.provider_id = i.provider_id"
                         " AND u.incident_id = i.incident_id AND u.created_at >= ?))")
            args.extend([since, since, since])
        sql = (
            "SELECT i.provider_id, p.name AS provider, i.incident_id, i.title, i.status, i.impact, i.kind, "
            "i.url, i.components, i.created_at, i.updated_at, i.resolved_at, i.unlisted_at, "
            "(SELECT count(*) FROM updates u WHERE u.provider_id = i.provider_id AND u.incident_id = i.incident_id)"
            " AS update_count "
            "FROM incidents i JOIN providers p ON p.id = i.provider_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY i.created_at DESC, i.provider_id"
            + (" LIMIT ?" if limit else "")
        )
        if limit:
            args.append(limit)
        found = []
        for r in self.conn.execute(sql, args).fetchall():
            item = dict(r)
            item["components"] = json.loads(item["components"])
            if with_updates:
                item["updates"] = [
                    {**dict(u), "components": json.loads(u["components"])}
                    for u in self.conn.execute(
                        "SELECT update_id, status, message, components, created_at FROM updates "
                        "WHERE provider_id = ? AND incident_id = ? ORDER BY created_at, id",
                        (r["provider_id"], r["incident_id"]),
                    )
                ]
            found.append(item)
        return found
