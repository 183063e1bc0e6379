-- A page may be read through several endpoints (views) of one id space (incident.io: the
-- native summary and the Statuspage-compatible copy). Each URL keeps its own validators and
-- the digest of the last body whose content was fully recorded, so an unchanged view is not
-- parsed again and a view that failed is asked again on the next poll.
CREATE TABLE view_cache (
    provider_id   TEXT NOT NULL,
    url           TEXT NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    body_sha256   TEXT,
    PRIMARY KEY (provider_id, url)
) WITHOUT ROWID;

INSERT INTO view_cache (provider_id, url, etag, last_modified, body_sha256)
    SELECT id, validators_url, etag, last_modified, body_sha256 FROM providers
    WHERE validators_url IS NOT NULL;

-- providers.etag, last_modified, validators_url and body_sha256 are no longer written.
