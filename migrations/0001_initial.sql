-- Poll state per provider: what the last poll did and the HTTP validators for the next
-- conditional GET, so a restart neither re-downloads nor forgets.
CREATE TABLE providers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    url             TEXT NOT NULL,
    format          TEXT NOT NULL,
    first_polled_at TEXT,             -- first successful poll; NULL: the next one is first contact
    last_poll_at    TEXT,
    last_ok_at      TEXT,
    last_result     TEXT,             -- 'ok' | 'not_modified' | 'error'
    last_error      TEXT,
    failures        INTEGER NOT NULL DEFAULT 0,   -- consecutive failed polls
    etag            TEXT,
    last_modified   TEXT,
    validators_url  TEXT,             -- the URL the validators belong to
    body_sha256     TEXT              -- digest of the last body recorded in full
);

-- Every incident ever seen: the latest title/status/impact the page gave.
CREATE TABLE incidents (
    provider_id   TEXT NOT NULL REFERENCES providers(id),
    incident_id   TEXT NOT NULL,
    title         TEXT NOT NULL,
    status        TEXT NOT NULL,
    impact        TEXT NOT NULL,
    kind          TEXT NOT NULL,      -- 'incident' | 'maintenance'
    url           TEXT,
    components    TEXT NOT NULL DEFAULT '[]',   -- JSON list of names
    created_at    TEXT NOT NULL,
    updated_at    TEXT,
    resolved_at   TEXT,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (provider_id, incident_id)
) WITHOUT ROWID;

-- Every update ever seen. The UNIQUE key is the claim: whichever process inserts the row
-- first owns the announcement (INSERT ... ON CONFLICT DO NOTHING RETURNING).
-- Rows with announce = 1 and emitted_at IS NULL are the outbox: recorded, not yet logged.
-- The UNIQUE index also serves every lookup by (provider_id, incident_id).
CREATE TABLE updates (
    id          INTEGER PRIMARY KEY,
    provider_id TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    update_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT NOT NULL,
    components  TEXT NOT NULL DEFAULT '[]',   -- JSON list of names
    created_at  TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    source      TEXT NOT NULL,                -- 'run' | 'once' | 'backfill'
    announce    INTEGER NOT NULL,             -- 1: to be emitted; 0: recorded silently
    lease_owner TEXT,                         -- process emitting it now
    lease_until TEXT,
    emitted_at  TEXT,
    UNIQUE (provider_id, incident_id, update_id),
    FOREIGN KEY (provider_id, incident_id) REFERENCES incidents(provider_id, incident_id)
);

CREATE INDEX updates_outbox ON updates (lease_until) WHERE announce = 1 AND emitted_at IS NULL;
CREATE INDEX incidents_by_time ON incidents (created_at);
