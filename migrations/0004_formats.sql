-- The format a provider's page was last read in, and what `format = "auto"` found. A poll in a
-- format other than the one recorded is a new first contact (docs/contract.md §5): switching formats, or
-- a page moving platform, never re-announces history under the new format's ids.
ALTER TABLE providers ADD COLUMN polled_format TEXT;
ALTER TABLE providers ADD COLUMN detected_format TEXT;
-- Databases from before formats: every successful poll was a Statuspage read.
UPDATE providers SET polled_format = 'statuspage' WHERE first_polled_at IS NOT NULL;
