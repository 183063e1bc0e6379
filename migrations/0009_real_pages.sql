-- Real pages' habits (docs/contract.md §4): a maintenance cut from a page's list before its
-- window began is not completed, and a stale copy of a page is not evidence.

-- When a maintenance left the page's open-only list while still scheduled, before its window
-- began (by the page's clock): it is neither missing nor closed, and if the page lists it again
-- it carries on as if it never left (cleared then).
ALTER TABLE incidents ADD COLUMN unlisted_at TEXT;

-- The newest clock an open-only view of the page has stated (Statuspage's page.updated_at): a
-- payload older than this is a stale copy (a CDN serving an old version), which closes nothing.
ALTER TABLE providers ADD COLUMN page_time TEXT;
