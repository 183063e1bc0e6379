"""`tracker db copy`: one database's whole history into another, empty one (a single host's
SQLite file into the PostgreSQL database a pair will share), so nothing is announced again.

Every row is copied as it is, ids included: what was emitted stays emitted, what was claimed
but not yet announced keeps its lease and is announced by whichever host takes it over when
the lease runs out, deliveries keep their place in their lanes. One transaction: a copy that
fails leaves the target as empty as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import StoreError
from . import Store, Target

# Parents before children (incidents before their updates), everything the history holds.
TABLES = ("providers", "incidents", "updates", "edits", "view_cache", "http_cache", "deliveries")
NUMBERED = ("updates", "edits", "deliveries")  # the tables whose ids a sequence hands out
BATCH = 1000


def copy(source: Target, target: Target, progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
    """Copy every row of `source` into `target` (migrated first, and empty); returns the rows
    copied per table. `progress(table, done, total)` is called as rows go."""
    if source == target:
        raise StoreError(f"--from and --to are the same database ({source})")
    src = Store.open_readonly(source)
    try:
        dst = Store.open(target)
        try:
            return _copy(src, dst, progress)
        finally:
            dst.close()
    finally:
        src.close()


def _copy(src: Store, dst: Store, progress: Callable[[str, int, int], None] | None) -> dict[str, int]:
    held = dst.conn.execute("SELECT (SELECT count(*) FROM providers) + (SELECT count(*) FROM updates)").fetchone()[0]
    if held:
        raise StoreError(f"{dst.path} already holds a history: copy only into an empty database "
                         "(a new one, or one `tracker db migrate` has just created)")
    copied: dict[str, int] = {}
    with dst.transaction() as c:
        for table in TABLES:
            columns = src.engine.columns(table)
            total = src.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            insert = (f"INSERT INTO {table} ({', '.join(columns)}) "
                      f"VALUES ({', '.join('?' * len(columns))})")
            done = 0
            rows = src.conn.execute(f"SELECT {', '.join(columns)} FROM {table}")
            while batch := rows.fetchmany(BATCH):
                c.executemany(insert, [tuple(r) for r in batch])
                done += len(batch)
                if progress is not None:
                    progress(table, done, total)
            copied[table] = done
        dst.engine.copied(c, list(NUMBERED))
    return copied


__all__ = ["TABLES", "copy"]
