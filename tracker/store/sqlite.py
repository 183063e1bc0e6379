"""The SQLite engine: one file on this host, the embedded default.

One connection per process, used from one thread. Every write is a short `BEGIN IMMEDIATE`
transaction: it takes the write lock up front, so a second process waits on the busy timeout
instead of failing on a lock upgrade (a deferred transaction that reads then writes gets
SQLITE_BUSY at once in WAL mode, bypassing the busy handler). Writers are therefore serialised
across the whole file: what the PostgreSQL engine locks per provider or per destination
(`lock()`), SQLite has locked already.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import migrations
from ..errors import StoreError

BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's write lock


class EmptyDatabase(StoreError):
    """A read-only open found no database, or one nothing was recorded in."""


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


def connect_readonly(path: Path, timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """datasette's `mode=ro`: never creates, writes or locks the file."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def owner_is_dead(owner: str) -> bool:
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


class _NoLock:
    """A read-only connection writes nothing, so it takes no write lock."""

    fd = None

    @contextmanager
    def held(self, timeout: float = BUSY_TIMEOUT) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


class SQLite:
    """The engine of a database file: its connection, its write lock, its dialect."""

    name = "sqlite"
    # The claim reads back what it inserted past the table's last id (the write lock keeps
    # everyone else out meanwhile), which costs less than RETURNING every row on first contact.
    returning_claim = False
    readonly = False

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: WriteLock | _NoLock | None = None):
        self.conn = conn
        self.path = path
        self.lock_file = lock or WriteLock(path)

    @property
    def target(self) -> Path:
        return self.path

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> "SQLite":
        """Open for writing. With `create`, a missing file (and its directory) is created;
        without, a missing file is a StoreError naming it."""
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
        return cls(conn, path, lock)

    @classmethod
    def open_readonly(cls, path: Path, timeout: float = BUSY_TIMEOUT) -> "SQLite":
        """Open an existing database read-only: a missing file, or one no tracker has written
        yet, is a StoreError that names the file."""
        if path.exists() and not path.is_file():
            raise StoreError(f"cannot read database {path}: not a regular file")
        if not path.is_file():
            raise EmptyDatabase(f"no database at {path}: nothing recorded yet "
                                "(run `tracker run` first, or point --db / TRACKER_DB at the right file)")
        try:
            conn = connect_readonly(path, timeout)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as e:
            raise StoreError(f"cannot read database {path}: {e}") from None
        engine = cls(conn, path, _NoLock())
        engine.readonly = True
        if "providers" not in tables:
            engine.close()
            raise EmptyDatabase(f"{path} is empty: no tracker has written to it yet")
        return engine

    # -- transactions and locks ----------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on any exception."""
        with self.lock_file.held():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def lock(self, c: sqlite3.Connection, *key: str) -> None:
        """Nothing to do: `BEGIN IMMEDIATE` holds the whole file's write lock already."""

    @staticmethod
    def indexed_by(index: str) -> str:
        return f"INDEXED BY {index}"

    skip_locked = ""  # one writer at a time: nothing is ever locked by another

    @staticmethod
    def dead(owner: str) -> bool:
        """A lease holder of this host whose process is gone (its leases are taken at once)."""
        return owner_is_dead(owner)

    # -- schema and upkeep ----------------------------------------------------------------

    def recorded(self) -> set[str]:
        return migrations.recorded(self.conn)

    def migrate(self) -> list[str]:
        try:
            with self.lock_file.held():
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

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")]

    def copied(self, c: sqlite3.Connection, tables: list[str]) -> None:
        """Rows were copied in with their ids: SQLite's next id follows the largest by itself."""

    def close(self) -> None:
        # The last connection to close checkpoints the WAL: a write, so under the lock.
        with self.lock_file.held():
            self.conn.close()
        self.lock_file.close()


__all__ = ["BUSY_TIMEOUT", "EmptyDatabase", "SQLite", "WriteLock", "connect", "connect_readonly", "owner_is_dead"]
