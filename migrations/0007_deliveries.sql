-- Notifications (docs/contract.md §7): one row per (destination, event id), inserted in the
-- transaction that marks the record emitted (so a crash re-announcing it cannot queue it
-- twice), sent by delivery workers that lease rows like the outbox does.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    destination     TEXT NOT NULL,             -- the [[notify]] table's name
    event_id        TEXT NOT NULL,             -- the record's event_id (edits have their own)
    provider_id     TEXT NOT NULL,
    created_at      TEXT NOT NULL,             -- the update's own time: the order of sending
    payload         TEXT NOT NULL,             -- the record as JSON, as it was logged
    queued_at       TEXT NOT NULL,             -- when it was queued: retention counts from here
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,                      -- a failing head of line waits until then
    last_error      TEXT,
    lease_owner     TEXT,                      -- process sending it now ("host:pid:token")
    lease_until     TEXT,
    delivered_at    TEXT,
    dropped_at      TEXT,                      -- given up after the destination's retention
    UNIQUE (destination, event_id)
);

-- The lanes: what is waiting per destination and provider, oldest first.
CREATE INDEX deliveries_waiting ON deliveries (destination, provider_id, created_at, id)
    WHERE delivered_at IS NULL AND dropped_at IS NULL;
