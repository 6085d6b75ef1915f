-- Core tables, one per grain (see README "Data model"). Times are Unix seconds UTC, 0 = unknown.

-- One row per VM per snapshot. Clustered by (vcenter, snapshot_time, vm_id) so that one
-- vCenter's day is one contiguous range: the shape of every aggregation and replace.
CREATE TABLE vm_hourly (
    vcenter             TEXT    NOT NULL,
    vm_id               TEXT    NOT NULL,
    vm_uuid             TEXT    NOT NULL,
    inventory_id        TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    event_key           TEXT    NOT NULL,
    cloud_id            TEXT    NOT NULL,
    creation_time       INTEGER NOT NULL,
    deletion_time       INTEGER NOT NULL,
    snapshot_time       INTEGER NOT NULL,
    resource_pool       TEXT    NOT NULL,
    datacenter          TEXT    NOT NULL,
    cluster             TEXT    NOT NULL,
    folder              TEXT    NOT NULL,
    provisioned_disk_gb REAL    NOT NULL,
    vcpu_count          INTEGER NOT NULL,
    ram_gb              REAL    NOT NULL,
    is_template         INTEGER NOT NULL,
    powered_on          INTEGER NOT NULL,
    srm_placeholder     INTEGER NOT NULL,
    -- 0 = no tier, 1..4 = Tin, Bronze, Silver, Gold: the resource pool resolved through the
    -- tier mapping in force when the row was stored, so both engines read one small integer.
    tier                INTEGER NOT NULL,
    PRIMARY KEY (vcenter, snapshot_time, vm_id)
) WITHOUT ROWID;

-- Every snapshot taken or imported, including snapshots in which no VM was seen: the
-- daily total_samples of a vCenter is the number of its registry rows in the day.
CREATE TABLE snapshot_registry (
    vcenter       TEXT    NOT NULL,
    snapshot_time INTEGER NOT NULL,
    source        TEXT    NOT NULL, -- 'import' or 'collector'
    recorded_at   INTEGER NOT NULL,
    PRIMARY KEY (snapshot_time, vcenter)
) WITHOUT ROWID;

-- One row per collector attempt against one vCenter, successful or not.
CREATE TABLE snapshot_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    vcenter       TEXT    NOT NULL,
    snapshot_time INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    success       INTEGER NOT NULL,
    row_count     INTEGER NOT NULL,
    error         TEXT    NOT NULL
);
CREATE INDEX snapshot_runs_by_vcenter ON snapshot_runs (vcenter, started_at);

-- Daily and monthly summaries share one shape; period_start is the first second of the
-- UTC day or month.
CREATE TABLE vm_daily_summary (
    period_start         INTEGER NOT NULL,
    vcenter              TEXT    NOT NULL,
    vm_id                TEXT    NOT NULL,
    vm_uuid              TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    resource_pool        TEXT    NOT NULL,
    datacenter           TEXT    NOT NULL,
    cluster              TEXT    NOT NULL,
    folder               TEXT    NOT NULL,
    samples_present      INTEGER NOT NULL,
    total_samples        INTEGER NOT NULL,
    avg_is_present       REAL    NOT NULL,
    avg_vcpu_count       REAL    NOT NULL,
    avg_ram_gb           REAL    NOT NULL,
    avg_provisioned_disk REAL    NOT NULL,
    pool_tin_pct         REAL    NOT NULL,
    pool_bronze_pct      REAL    NOT NULL,
    pool_silver_pct      REAL    NOT NULL,
    pool_gold_pct        REAL    NOT NULL,
    tin                  REAL    NOT NULL,
    bronze               REAL    NOT NULL,
    silver               REAL    NOT NULL,
    gold                 REAL    NOT NULL,
    creation_time        INTEGER NOT NULL,
    deletion_time        INTEGER NOT NULL,
    snapshot_time        INTEGER NOT NULL,
    PRIMARY KEY (period_start, vcenter, vm_id)
) WITHOUT ROWID;

CREATE TABLE vm_monthly_summary (
    period_start         INTEGER NOT NULL,
    vcenter              TEXT    NOT NULL,
    vm_id                TEXT    NOT NULL,
    vm_uuid              TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    resource_pool        TEXT    NOT NULL,
    datacenter           TEXT    NOT NULL,
    cluster              TEXT    NOT NULL,
    folder               TEXT    NOT NULL,
    samples_present      INTEGER NOT NULL,
    total_samples        INTEGER NOT NULL,
    avg_is_present       REAL    NOT NULL,
    avg_vcpu_count       REAL    NOT NULL,
    avg_ram_gb           REAL    NOT NULL,
    avg_provisioned_disk REAL    NOT NULL,
    pool_tin_pct         REAL    NOT NULL,
    pool_bronze_pct      REAL    NOT NULL,
    pool_silver_pct      REAL    NOT NULL,
    pool_gold_pct        REAL    NOT NULL,
    tin                  REAL    NOT NULL,
    bronze               REAL    NOT NULL,
    silver               REAL    NOT NULL,
    gold                 REAL    NOT NULL,
    creation_time        INTEGER NOT NULL,
    deletion_time        INTEGER NOT NULL,
    snapshot_time        INTEGER NOT NULL,
    PRIMARY KEY (period_start, vcenter, vm_id)
) WITHOUT ROWID;

-- Compact per-vCenter totals so totals pages never scan VM rows. grain 'snapshot': one row per
-- snapshot (raw counts); 'daily'/'monthly': sums of that period's summaries (prorated).
CREATE TABLE vcenter_totals (
    grain         TEXT    NOT NULL,
    vcenter       TEXT    NOT NULL,
    period_start  INTEGER NOT NULL,
    total_samples INTEGER NOT NULL,
    vm_count      REAL    NOT NULL,
    vcpu_count    REAL    NOT NULL,
    ram_gb        REAL    NOT NULL,
    disk_gb       REAL    NOT NULL,
    tin           REAL    NOT NULL,
    bronze        REAL    NOT NULL,
    silver        REAL    NOT NULL,
    gold          REAL    NOT NULL,
    PRIMARY KEY (grain, vcenter, period_start)
) WITHOUT ROWID;

-- The newest snapshot totals of each vCenter; the primary key above makes this one index
-- probe per vCenter, so it is a view rather than a second copy to keep in step.
CREATE VIEW vcenter_latest_totals AS
SELECT t.* FROM vcenter_totals t
WHERE t.grain = 'snapshot'
  AND t.period_start = (SELECT MAX(l.period_start) FROM vcenter_totals l
                        WHERE l.grain = 'snapshot' AND l.vcenter = t.vcenter);
