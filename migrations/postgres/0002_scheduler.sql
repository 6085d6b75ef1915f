-- What `vctp standalone` last ran for each scheduled job, so that after a restart a missed
-- run is caught up once rather than once per missed tick.
CREATE TABLE cron_status (
    job         TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- 'snapshot', 'daily', 'monthly', 'cleanup'
    last_tick   BIGINT  NOT NULL,                      -- the scheduled time the last run stood for
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT  NOT NULL,
    success     BOOLEAN NOT NULL,
    error       TEXT COLLATE "C" NOT NULL
);
