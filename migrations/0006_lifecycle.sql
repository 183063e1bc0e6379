-- Lifecycle truth (docs/contract.md §3, §4): edits, inferred closings, maintenance windows, and
-- a moved page starting afresh.

-- The digest of each update's source text as the page gave it, and the view it came from.
-- Rows recorded before this migration have none: the next poll that lists them adopts its
-- digest silently, so upgrading (and a new way of cleaning text) never announces an edit.
ALTER TABLE updates ADD COLUMN source_sha256 TEXT;
ALTER TABLE updates ADD COLUMN source_view TEXT NOT NULL DEFAULT '';
-- 1 on a closing tracker inferred because the incident left a page listing only open ones.
ALTER TABLE updates ADD COLUMN inferred INTEGER NOT NULL DEFAULT 0;

ALTER TABLE incidents ADD COLUMN scheduled_for TEXT;
ALTER TABLE incidents ADD COLUMN scheduled_until TEXT;
-- When a poll of a page listing only open incidents first found this one missing (cleared when
-- it is listed again); it is closed once missing for the format's grace period.
ALTER TABLE incidents ADD COLUMN gone_at TEXT;

-- The URL of the last successful poll: another URL is a new first contact.
ALTER TABLE providers ADD COLUMN polled_url TEXT;

-- Edits: one row per distinct new source text of an update, claimed exactly once (the digest
-- is in the key), with its own outbox columns like updates.
CREATE TABLE edits (
    id               INTEGER PRIMARY KEY,
    provider_id      TEXT NOT NULL,
    incident_id      TEXT NOT NULL,
    update_id        TEXT NOT NULL,
    source_sha256    TEXT NOT NULL,
    message          TEXT NOT NULL,
    previous_message TEXT NOT NULL,
    recorded_at      TEXT NOT NULL,
    source           TEXT NOT NULL,
    announce         INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until      TEXT,
    emitted_at       TEXT,
    UNIQUE (provider_id, incident_id, update_id, source_sha256)
);
CREATE INDEX edits_outbox ON edits (lease_until) WHERE announce = 1 AND emitted_at IS NULL;
