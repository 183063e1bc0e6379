-- HTTP validators of the pages `tracker backfill` walks (history pages, incident details),
-- stored once everything a page listed was recorded: a later run gets 304 and skips it.
CREATE TABLE http_cache (
    url           TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    stored_at     TEXT NOT NULL
) WITHOUT ROWID;
