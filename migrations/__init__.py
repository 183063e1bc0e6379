"""Numbered SQL migrations, installed as the package `tracker.migrations`.

Each `NNNN_name.sql` runs once, in order, inside its own transaction (`BEGIN IMMEDIATE` on
SQLite), and is recorded in `_migrations`. They are written for SQLite; the PostgreSQL engine
runs the same files translated (tracker.store.postgres.schema), so both engines record the same
names. The files are read through importlib.resources, so they work from
an installed wheel as well as from a checkout.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

from ..errors import MigrationError
from ..times import now_iso

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available() -> list[tuple[str, str]]:
    """(name, sql) of every migration shipped with this version, in order."""
    found = []
    for entry in resources.files(__name__).iterdir():
        if _NAME.match(entry.name):
            found.append((entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def recorded(conn: sqlite3.Connection) -> set[str]:
    """Names of the migrations a database records, without writing to it."""
    try:
        return {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    except sqlite3.OperationalError:  # no _migrations table: nothing applied
        return set()


def applied(conn: sqlite3.Connection) -> set[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    return {row[0] for row in conn.execute("SELECT name FROM _migrations")}


def refuse_unknown(done: set[str], shipped: list[tuple[str, str]]) -> None:
    """A database some newer tracker migrated further is not ours to write."""
    unknown = done - {name for name, _ in shipped}
    if unknown:
        raise MigrationError(
            f"database has migrations this tracker does not know ({', '.join(sorted(unknown))}); "
            "it was written by a newer version"
        )


def apply(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations; return the names applied (empty if up to date).

    Several processes may open a fresh database at once, so each migration re-checks
    `_migrations` after taking the write lock and skips itself if another process won.
    """
    done = applied(conn)
    shipped = available()
    refuse_unknown(done, shipped)
    ran = []
    for name, sql in shipped:
        if name in done:
            continue
        # executescript() commits any open transaction and ignores isolation_level, so
        # the transaction control has to be inside the script itself.
        script = (
            "BEGIN IMMEDIATE;\n"
            f"INSERT INTO _migrations (name, applied_at) VALUES ('{name}', '{now_iso()}');\n"
            f"{sql}\n"
            "COMMIT;"
        )
        try:
            conn.executescript(script)
        except sqlite3.IntegrityError:
            # Another process applied this one between our check and our lock.
            conn.execute("ROLLBACK") if conn.in_transaction else None
            continue
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationError(f"migration {name} failed: {e}") from e
        ran.append(name)
    return ran
