"""The history of every incident and update, and the claim that makes emission exactly-once
across restarts, processes and hosts (docs/contract.md §4).

The store is one class put together by concern: provider poll state (polls.py), the claim and
its edits (claim.py), closings by disappearance (closing.py), the outbox and its leases
(outbox.py), the read commands' queries (queries.py); the delivery queue's storage is
tracker.notify.queue. They all write the same SQL through an engine, and what differs between
the engines (connection, placeholders, locking, the claim's read-back, the schema's dialect)
is the engine's alone: sqlite.py for a file on this host (the default), postgres.py for a
database a pair of hosts share.

One connection per Store, used from the thread that opened it: the daemon's main thread, and
each delivery worker opens its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from .. import migrations
from ..errors import StoreError
from .claim import Claims
from .closing import Closings, times_iso_minus
from .common import CHUNK, CLOSED_MESSAGE, OPEN, Claim, PollRecord, Shut
from .outbox import Leases
from .polls import PollStates
from .postgres import PgURL, Postgres, is_url
from .queries import Queries
from .sqlite import BUSY_TIMEOUT, SQLite, EmptyDatabase, WriteLock, connect, owner_is_dead

Target = Path | PgURL  # where a database is: a file, or a PostgreSQL URL

# Kept under its old name for the delivery queue and the tests.
_owner_is_dead = owner_is_dead


def locate(value: str | Path | PgURL) -> Target:
    """A `database` setting as the engines take it: a PostgreSQL URL, else a file path."""
    if isinstance(value, (Path, PgURL)):
        return value
    return PgURL(value) if is_url(value) else Path(value).expanduser()


def _engine(target: Target) -> type[SQLite] | type[Postgres]:
    return Postgres if isinstance(target, PgURL) else SQLite


class Store(PollStates, Claims, Closings, Leases, Queries):
    """The database of one tracker installation (or of a pair of hosts)."""

    def __init__(self, engine: SQLite | Postgres):
        self.engine = engine

    @property
    def conn(self) -> Any:
        return self.engine.conn

    @property
    def path(self) -> Target:
        """Where the database is (a PostgreSQL URL prints without its password)."""
        return self.engine.target

    @property
    def readonly(self) -> bool:
        return self.engine.readonly

    @classmethod
    def open(cls, target: str | Path | PgURL, *, migrate: bool = True, create: bool = True) -> "Store":
        """Open for writing and apply migrations. With `create`, a missing file (and its
        directory) is created; without, a missing file is a StoreError naming it."""
        target = locate(target)
        store = cls(_engine(target).open(target, create=create))
        if migrate:
            try:
                store.migrate()
            except BaseException:
                store.engine.close()
                raise
        return store

    @classmethod
    def open_readonly(cls, target: str | Path | PgURL) -> "Store":
        """Open an existing database read-only (a file in SQLite's `mode=ro`, a PostgreSQL
        database in one read-only transaction): never creates, migrates or locks it. A missing
        database, or one no tracker has written yet, is a StoreError that names it."""
        target = locate(target)
        engine = _engine(target).open_readonly(target)
        try:
            missing = {name for name, _ in migrations.available()} - engine.recorded()
        except BaseException:
            engine.close()
            raise
        if missing:
            engine.close()
            raise StoreError(f"{target} needs a schema upgrade first: run `tracker db migrate --db {target}`")
        return cls(engine)

    def migrate(self) -> list[str]:
        return self.engine.migrate()

    def check(self) -> None:
        self.engine.check()

    def close(self) -> None:
        self.engine.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One write transaction (`BEGIN IMMEDIATE` on SQLite), rolled back on any exception."""
        with self.engine.transaction() as c:
            yield c


def read_once(target: Target, read: Callable[[Any], Any]) -> Any:
    """`read(conn)` on a short read-only connection of its own (a metrics scrape, in the
    metrics server's thread); None when the database is missing, busy or unreachable."""
    try:
        engine = _engine(target).open_readonly(target, timeout=2)
    except StoreError:
        return None
    try:
        return read(engine.conn)
    except Exception:  # busy or broken: leave the sample out rather than fail the scrape
        return None
    finally:
        try:
            engine.close()
        except Exception:
            pass


__all__ = ["BUSY_TIMEOUT", "CHUNK", "CLOSED_MESSAGE", "OPEN", "Claim", "EmptyDatabase", "PgURL", "PollRecord",
           "Shut", "Store", "Target", "WriteLock", "connect", "locate", "read_once", "times_iso_minus"]
