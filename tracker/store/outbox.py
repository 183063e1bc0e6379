"""The outbox: updates and edits claimed for announcement, leased to the process that
announces them, read back as records, marked emitted (docs/contract.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .common import Row, _chunks


class Leases:
    """The outbox's rows (a mixin of Store)."""

    def lease_pending(self, owner: str, now: str, lease_until: str, limit: int = 1000,
                      table: str = "updates", previous: set[str] | None = None) -> list[int]:
        """Take over updates (or edits: `table="edits"`) recorded for announcement but never
        emitted whose process died between commit and emission: when its lease has run out, or
        at once when the engine can tell its process is gone (SQLite: a process of this host).
        Returns their row ids; `previous`, if given, gets the processes they were taken from."""
        assert table in ("updates", "edits")
        with self.transaction() as c:
            holders = c.execute(
                f"SELECT DISTINCT lease_owner FROM {table} WHERE announce = 1 AND emitted_at IS NULL"
                " AND lease_until >= ?",
                (now,),
            ).fetchall()
            dead = [h[0] for h in holders if h[0] and h[0] != owner and self.engine.dead(h[0])]
            if previous is not None:
                previous.update(dead)
                previous.update(r[0] for r in c.execute(
                    f"SELECT DISTINCT lease_owner FROM {table} {self.engine.indexed_by(table + '_outbox')} "
                    "WHERE announce = 1 AND emitted_at IS NULL AND lease_until < ? AND lease_owner != ?",
                    (now, owner)))
            rows = c.execute(
                f"UPDATE {table} SET lease_owner = ?, lease_until = ? WHERE id IN ("
                # INDEXED BY (SQLite): the partial index holds only what is not yet emitted (a
                # handful of rows); without it the OR below makes SQLite scan every update ever
                # recorded, twice a minute (0.3 % of a core with 300,000 updates). SKIP LOCKED
                # (PostgreSQL): rows another host is taking over right now are left to it.
                f" SELECT id FROM {table} {self.engine.indexed_by(table + '_outbox')} WHERE announce = 1"
                " AND emitted_at IS NULL AND (lease_until IS NULL OR lease_until < ?"
                + (f" OR lease_owner IN ({','.join('?' * len(dead))})" if dead else "")
                + f") ORDER BY id LIMIT ?{self.engine.skip_locked}) RETURNING id",
                (owner, lease_until, now, *dead, limit),
            ).fetchall()
        return [r[0] for r in rows]

    # What a record needs of an update (docs/contract.md §3), read back after the claim.
    _EVENT = ("{t}.id, {t}.provider_id, p.name AS provider, {t}.incident_id, {t}.update_id, "
              "i.title AS incident, u.status, i.impact, i.kind, u.components, "
              "i.components AS incident_components, {t}.message, u.created_at, i.url, {t}.source, "
              "u.inferred, i.scheduled_for, i.scheduled_until")

    def _read_back(self, select: str, joins: str, alias: str, ids: Sequence[int]) -> list[Row]:
        rows: list[Row] = []
        for chunk in _chunks(list(ids)):
            rows.extend(self.conn.execute(
                f"SELECT {select} {joins} JOIN incidents i USING (provider_id, incident_id) "
                f"JOIN providers p ON p.id = {alias}.provider_id "
                f"WHERE {alias}.id IN ({','.join('?' * len(chunk))})",
                list(chunk),
            ).fetchall())
        rows.sort(key=lambda r: (r["provider_id"], r["created_at"], r["id"]))
        return rows

    def events(self, ids: Sequence[int]) -> list[Row]:
        """Everything an `incident_update` record needs, oldest first within a provider."""
        return self._read_back(self._EVENT.format(t="u"), "FROM updates u", "u", ids)

    def edit_events(self, ids: Sequence[int]) -> list[Row]:
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
                # What a record does to an alert depends on what was queued before for its
                # incident: hosts decide one at a time (SQLite's write lock does that already).
                self.engine.lock(c, "alerts")
                also(c)

