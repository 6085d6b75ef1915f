-- What `vctp standalone` last ran for each scheduled job, so that after a restart a missed
-- run is caught up once rather than once per missed tick.
CREATE TABLE cron_status (
    job         TEXT    NOT NULL PRIMARY KEY, -- 'snapshot', 'daily', 'monthly', 'cleanup'
    last_tick   INTEGER NOT NULL,             -- the scheduled time the last run stood for
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    success     INTEGER NOT NULL,
    error       TEXT    NOT NULL
) WITHOUT ROWID;
