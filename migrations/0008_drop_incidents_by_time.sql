-- The index on incidents (created_at) served one thing: `tracker incidents --limit N` across
-- every provider without sorting. It cost every write: incidents arrive in no time order (a
-- first contact or a backfill brings years of them), so each new incident dirtied a random leaf
-- of it, and a first contact with a 50-incident page rewrote some 50 index pages into the WAL.
-- Measured on a 166 KiB page (tests/benchmarks/bench_run.py's cold run): recording it took
-- 2.2-3.1 ms with the index and 1.5 ms without; `tracker incidents --limit 20` over 100,000
-- incidents takes 0.13 s without it instead of 0.014 s, once, when a person asks.
DROP INDEX IF EXISTS incidents_by_time;
