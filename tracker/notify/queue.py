"""The deliveries table (migration 0007): one row per (destination, event id), written in the
same transaction that marks the record emitted, and leased by delivery workers.

Order: a destination's deliveries of one provider form a lane, sent oldest first (by the
update's `created_at`, then by row id, so an edit follows its update). A lane is worked by one
process at a time: a worker leases the first rows of a lane only when no other live process
holds a lease in it, and a failing head of line holds back the rest of its lane (other
providers' lanes to the same destination go on). A process that dies leaves its leases to be
taken over when the lease runs out (at once when SQLite's engine sees it was a process of this
host that is gone). On PostgreSQL, where hosts lease side by side, a destination's lanes are
leased under an advisory lock of that destination, and the actions of alerting destinations
are decided under one lock: two hosts never lease one lane, nor decide one alert, at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..emit import event_fields
from ..models import CLOSED_STATUSES
from ..store import Store, Target, read_once
from ..store.common import Conn, Row
from .destinations import ALERTING, Destination

PENDING = "delivered_at IS NULL AND dropped_at IS NULL"


def records(rows: Iterable[Row], event: str, now: str) -> list[dict[str, Any]]:
    """The records the outbox logs for `rows`, as destinations receive them."""
    return [{"event": event, "level": "info", "timestamp": now,
             **event_fields(r, backfill=r["source"] == "backfill")} for r in rows]


def touched(row: Row) -> set[str]:
    """Every component the update's incident names (the update's own and the incident's)."""
    names = set(json.loads(row["components"] or "[]"))
    if "incident_components" in row.keys():
        names.update(json.loads(row["incident_components"] or "[]"))
    return names


@dataclass(frozen=True)
class Planned:
    """One delivery to queue: a destination's row for a record, and for an alerting destination
    what the record means to its alert (a closing, an edit)."""

    row: tuple  # destination, event_id, provider_id, created_at, payload, queued_at, incident_id
    alerting: str | None = None  # the destination's type when it is an alerting one
    closing: bool = False
    edit: bool = False


def plan(destinations: Sequence[Destination], found: Sequence[dict[str, Any]], now: str,
         components: Sequence[Iterable[str]] | None = None) -> list[Planned]:
    """Delivery rows for every (destination, record) the destination's filters let through.
    `components[i]`: what record i's incident touches (default: the record's components)."""
    planned = []
    for i, record in enumerate(found):
        payload = None
        for dest in destinations:
            if dest.wants(record, components[i] if components is not None else None):
                payload = payload or json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                planned.append(Planned(
                    (dest.name, record["event_id"], record["provider_id"], record["created_at"], payload, now,
                     record.get("incident_id")),
                    alerting=dest.type if dest.type in ALERTING else None,
                    closing=record.get("status") in CLOSED_STATUSES,
                    edit=record.get("event") == "incident_update_edited"))
    return planned


def alert_action(kind: str, last: str | None, closing: bool, edit: bool) -> str | None:
    """What a record does to its incident's alert at an alerting destination, given the action
    last queued for that incident there (None: none yet); None when it does nothing.

    PagerDuty: every update (re-)triggers the alert (it folds them into one by `dedup_key`);
    a closing resolves it, once; an edit re-triggers only an open alert. Opsgenie: the first
    update creates the alert, later ones are notes on it; a closing closes it, once; an
    update after a closing creates a new alert (the incident was re-opened)."""
    if kind == "pagerduty":
        if closing:
            return "resolve" if last == "trigger" else None
        if edit:
            return "trigger" if last == "trigger" else None
        return "trigger"
    is_open = last in ("create", "note")
    if closing:
        return "close" if is_open else None
    if edit:
        return "note" if is_open else None
    return "note" if is_open else "create"


def inserter(planned: list[Planned]) -> Callable[[Conn], int] | None:
    """A function that inserts the planned rows inside the caller's transaction (None: nothing
    to insert). ON CONFLICT DO NOTHING: a record announced again after a crash is not delivered
    twice. For an alerting destination each row's action is decided here, in that transaction,
    from the last one queued for the same incident (rows of this batch included): a closing
    that finds no open alert, or a second closing, is not queued at all."""
    if not planned:
        return None

    def insert(c: Conn) -> int:
        last: dict[tuple[str, str, str], str | None] = {}
        rows = []
        for p in planned:
            action = None
            if p.alerting is not None:
                key = (p.row[0], p.row[2], p.row[6])
                if key not in last:
                    found = c.execute(
                        "SELECT action FROM deliveries WHERE destination = ? AND provider_id = ? AND incident_id = ? "
                        "AND action IS NOT NULL ORDER BY id DESC LIMIT 1", key).fetchone()
                    last[key] = found[0] if found else None
                action = alert_action(p.alerting, last[key], p.closing, p.edit)
                if action is None:
                    continue
                if c.execute("SELECT 1 FROM deliveries WHERE destination = ? AND event_id = ?",
                             (p.row[0], p.row[1])).fetchone() is not None:
                    continue  # queued before (a record announced again): its action stands
                last[key] = action
            rows.append((*p.row, action))
        c.executemany(
            "INSERT INTO deliveries (destination, event_id, provider_id, created_at, payload, queued_at, "
            "incident_id, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (destination, event_id) DO NOTHING",
            rows,
        )
        return len(rows)

    return insert


@dataclass
class Delivery:
    id: int
    destination: str
    event_id: str
    provider_id: str
    created_at: str
    queued_at: str
    attempts: int
    record: dict[str, Any]
    action: str | None = None  # what it does to the incident's alert (alerting destinations)


@dataclass
class Batch:
    """What one lease gave: lanes of deliveries in order, rows dropped past retention, and when
    the earliest lane held back by backoff is due (ISO time) if any."""

    lanes: list[list[Delivery]] = field(default_factory=list)
    dropped: list[Row] = field(default_factory=list)
    next_due: str | None = None
    # provider id -> the processes whose run-out leases on that lane this lease took over
    taken: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(lane) for lane in self.lanes)


class Queue:
    """Delivery bookkeeping on a connection of the worker's own (SQLite connections belong to
    the thread that opened them)."""

    def __init__(self, store: Store, owner: str):
        self.store = store
        self.owner = owner

    def lease(self, dest: str, *, now: str, until: str, drop_before: str, per_lane: int = 20) -> Batch:
        batch = Batch()
        with self.store.transaction() as c:
            self.store.engine.lock(c, "deliveries", dest)
            batch.dropped = c.execute(
                "UPDATE deliveries SET dropped_at = ?, lease_owner = NULL, lease_until = NULL "
                f"WHERE destination = ? AND {PENDING} AND queued_at < ? "
                "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?) "
                "RETURNING id, event_id, provider_id, attempts, last_error, queued_at",
                (now, dest, drop_before, self.owner, now),
            ).fetchall()
            holders = c.execute(
                f"SELECT DISTINCT provider_id, lease_owner FROM deliveries WHERE destination = ? AND {PENDING} "
                "AND lease_owner IS NOT NULL AND lease_owner != ? AND lease_until >= ?",
                (dest, self.owner, now),
            ).fetchall()
            busy = {pid for pid, owner in holders if not self.store.engine.dead(owner)}
            # The head of each lane: one index seek per provider (the partial index is
            # ordered by destination, provider, created_at, id).
            heads = []
            for (provider_id,) in c.execute(
                f"SELECT DISTINCT provider_id FROM deliveries WHERE destination = ? AND {PENDING}", (dest,)
            ).fetchall():
                head = c.execute(
                    f"SELECT next_attempt_at FROM deliveries WHERE destination = ? AND provider_id = ? AND {PENDING} "
                    "ORDER BY created_at, id LIMIT 1", (dest, provider_id)).fetchone()
                heads.append((provider_id, head[0]))
            for provider_id, next_attempt_at in heads:
                if provider_id in busy:
                    continue
                if next_attempt_at and next_attempt_at > now:
                    batch.next_due = min(batch.next_due or next_attempt_at, next_attempt_at)
                    continue
                taken = c.execute(
                    f"SELECT DISTINCT lease_owner FROM deliveries WHERE destination = ? AND provider_id = ? AND {PENDING} "
                    "AND lease_owner IS NOT NULL AND lease_owner != ?", (dest, provider_id, self.owner)).fetchall()
                if taken:
                    batch.taken[provider_id] = sorted(r[0] for r in taken)
                rows = c.execute(
                    "UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE id IN ("
                    f" SELECT id FROM deliveries WHERE destination = ? AND provider_id = ? AND {PENDING}"
                    " ORDER BY created_at, id LIMIT ?) "
                    "RETURNING id, destination, event_id, provider_id, created_at, queued_at, attempts, payload, action",
                    (self.owner, until, dest, provider_id, per_lane),
                ).fetchall()
                lane = sorted(rows, key=lambda r: (r["created_at"], r["id"]))
                if lane:
                    batch.lanes.append([
                        Delivery(r["id"], r["destination"], r["event_id"], r["provider_id"], r["created_at"],
                                 r["queued_at"], r["attempts"], json.loads(r["payload"]), r["action"])
                        for r in lane])
        return batch

    def delivered(self, ids: Sequence[int], now: str) -> None:
        """Mark delivered (whoever holds the lease now: it went out)."""
        with self.store.transaction() as c:
            c.executemany(
                "UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL, "
                "lease_owner = NULL, lease_until = NULL WHERE id = ? AND delivered_at IS NULL",
                [(now, i) for i in ids],
            )

    def failed(self, delivery: Delivery, error: str, next_attempt_at: str) -> int:
        """One more failed attempt of a lane's head; the lane is released and held back until
        `next_attempt_at`. Returns the attempts so far."""
        with self.store.transaction() as c:
            row = c.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE id = ? RETURNING attempts",
                (error[:1000], next_attempt_at, delivery.id),
            ).fetchone()
            c.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL "
                f"WHERE destination = ? AND provider_id = ? AND lease_owner = ? AND {PENDING}",
                (delivery.destination, delivery.provider_id, self.owner),
            )
        return row[0] if row else delivery.attempts + 1

    def renew(self, dest: str, until: str) -> None:
        with self.store.transaction() as c:
            c.execute(f"UPDATE deliveries SET lease_until = ? WHERE destination = ? AND lease_owner = ? AND {PENDING}",
                      (until, dest, self.owner))

    def release(self, dest: str | None = None) -> None:
        """Give back every lease of ours (a clean stop): another process may go on at once."""
        with self.store.transaction() as c:
            c.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? "
                f"AND {PENDING}" + (" AND destination = ?" if dest else ""),
                (self.owner, dest) if dest else (self.owner,),
            )

    def waiting(self, dest: str) -> int:
        (n,) = self.store.conn.execute(
            f"SELECT count(*) FROM deliveries WHERE destination = ? AND {PENDING}", (dest,)).fetchone()
        return n


def backlog(target: Target) -> dict[str, int]:
    """{destination: deliveries waiting}, on a read-only connection of its own (for a metrics
    scrape, in the metrics server's thread)."""
    return read_once(target, lambda conn: {r[0]: r[1] for r in conn.execute(
        f"SELECT destination, count(*) FROM deliveries WHERE {PENDING} GROUP BY destination").fetchall()}) or {}


def summary(conn: Conn) -> dict[str, dict[str, Any]]:
    """Per destination name: waiting, delivered, dropped, the oldest waiting delivery and the
    lane head that is failing longest (attempts, last error, next attempt)."""
    found: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        "SELECT destination, "
        f" sum(CASE WHEN {PENDING} THEN 1 ELSE 0 END) AS waiting, "
        " count(delivered_at) AS delivered, count(dropped_at) AS dropped, "
        f" min(CASE WHEN {PENDING} THEN queued_at END) AS oldest_queued_at, "
        " max(delivered_at) AS last_delivered_at "
        "FROM deliveries GROUP BY destination"
    ):
        found[r["destination"]] = {k: r[k] for k in r.keys() if k != "destination"}
        found[r["destination"]].update(failing=None)
    for r in conn.execute(
        f"SELECT destination, provider_id, event_id, attempts, last_error, next_attempt_at FROM deliveries "
        f"WHERE {PENDING} AND attempts > 0 ORDER BY attempts"
    ):
        found[r["destination"]]["failing"] = {k: r[k] for k in r.keys() if k != "destination"}
    return found


__all__ = ["Batch", "Delivery", "Planned", "Queue", "alert_action", "backlog", "inserter", "plan", "records", "summary",
           "touched"]
