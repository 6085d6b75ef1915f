-- Every report object written to object storage. A row is added only after the object and
-- its .sha256 sidecar were written, so a listed report can always be downloaded.
CREATE TABLE report_registry (
    object_key   TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- relative to the report store's URL
    kind         TEXT COLLATE "C" NOT NULL,             -- 'hourly', 'daily' or 'monthly'
    period       TEXT COLLATE "C" NOT NULL,             -- '2026-03-10T14', '2026-03-10' or '2026-03'
    period_start BIGINT NOT NULL,
    scope        TEXT COLLATE "C" NOT NULL,             -- a vCenter name or 'all'
    format       TEXT COLLATE "C" NOT NULL,             -- 'xlsx' or 'csv'
    size         BIGINT NOT NULL,
    sha256       TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX report_registry_by_period ON report_registry (kind, period_start);
