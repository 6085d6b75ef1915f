-- Every report object written to object storage. A row is added only after the object and
-- its .sha256 sidecar were written, so a listed report can always be downloaded.
CREATE TABLE report_registry (
    object_key   TEXT    NOT NULL PRIMARY KEY, -- relative to the report store's URL
    kind         TEXT    NOT NULL,             -- 'hourly', 'daily' or 'monthly'
    period       TEXT    NOT NULL,             -- '2026-03-10T14', '2026-03-10' or '2026-03'
    period_start INTEGER NOT NULL,
    scope        TEXT    NOT NULL,             -- a vCenter name or 'all'
    format       TEXT    NOT NULL,             -- 'xlsx' or 'csv'
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX report_registry_by_period ON report_registry (kind, period_start);
