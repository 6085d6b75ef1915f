-- One row per daily or monthly aggregation attempt, successful or not, whichever process made
-- it (the Kubernetes Job, `vctp standalone`, `vctp aggregate`, the admin API): /metrics and
-- the diagnostics endpoint read them. A failed attempt is recorded after its own transaction
-- rolled back, so the record survives the failure.
CREATE TABLE aggregation_runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    grain            TEXT    NOT NULL, -- 'daily' or 'monthly'
    period_start     INTEGER NOT NULL, -- first second of the UTC day or month
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER NOT NULL,
    -- Measured with a monotonic clock: started_at/finished_at are whole seconds, too coarse
    -- for the duration metric of a sub-second aggregation.
    duration_seconds REAL    NOT NULL,
    success          INTEGER NOT NULL,
    rows_written     INTEGER NOT NULL,
    source           TEXT    NOT NULL, -- 'job', 'standalone', 'cli' or 'api'
    error            TEXT    NOT NULL  -- empty on success
);
CREATE INDEX aggregation_runs_by_period ON aggregation_runs (grain, period_start);

-- Why a failed snapshot run failed, so connect failures can be counted apart: '' (success),
-- 'connect' (network, TLS, timeout before a session), 'login', 'collect' (reading the
-- inventory) or 'store' (writing it).
ALTER TABLE snapshot_runs ADD COLUMN failure_kind TEXT NOT NULL DEFAULT '';
