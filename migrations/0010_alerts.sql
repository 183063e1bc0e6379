-- Alerting destinations (docs/contract.md §7: PagerDuty, Opsgenie): one alert per incident,
-- opened with it and resolved with it. What each delivery does to the alert (`trigger` or
-- `resolve` for PagerDuty; `create`, `note` or `close` for Opsgenie) is decided when it is
-- queued, from what was queued before for the same incident and destination; NULL for other
-- destination types.
ALTER TABLE deliveries ADD COLUMN incident_id TEXT;
ALTER TABLE deliveries ADD COLUMN action TEXT;
CREATE INDEX deliveries_alerts ON deliveries (destination, provider_id, incident_id, id) WHERE action IS NOT NULL;
