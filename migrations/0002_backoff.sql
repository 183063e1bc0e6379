-- Not-before time of a provider's next poll while it is failing (backoff or Retry-After),
-- so a restart does not hammer a page that asked to be left alone.
ALTER TABLE providers ADD COLUMN next_poll_at TEXT;
