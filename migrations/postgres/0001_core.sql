-- Core tables, one per grain (see README "Data model"). Times are Unix seconds UTC, 0 = unknown.

-- One row per VM per snapshot. Clustered by (vcenter, snapshot_time, vm_id) so that one
-- vCenter's day is one contiguous range: the shape of every aggregation and replace.
CREATE TABLE vm_hourly (
    vcenter             TEXT COLLATE "C" NOT NULL,
    vm_id               TEXT COLLATE "C" NOT NULL,
    vm_uuid             TEXT COLLATE "C" NOT NULL,
    inventory_id        TEXT COLLATE "C" NOT NULL,
    name                TEXT COLLATE "C" NOT NULL,
    event_key           TEXT COLLATE "C" NOT NULL,
    cloud_id            TEXT COLLATE "C" NOT NULL,
    creation_time       BIGINT NOT NULL,
    deletion_time       BIGINT NOT NULL,
    snapshot_time       BIGINT NOT NULL,
    resource_pool       TEXT COLLATE "C" NOT NULL,
    datacenter          TEXT COLLATE "C" NOT NULL,
    cluster             TEXT COLLATE "C" NOT NULL,
    folder              TEXT COLLATE "C" NOT NULL,
    provisioned_disk_gb DOUBLE PRECISION NOT NULL,
    vcpu_count          BIGINT NOT NULL,
    ram_gb              DOUBLE PRECISION NOT NULL,
    is_template         BOOLEAN NOT NULL,
    powered_on          BOOLEAN NOT NULL,
    srm_placeholder     BOOLEAN NOT NULL,
    -- 0 = no tier, 1..4 = Tin, Bronze, Silver, Gold: the resource pool resolved through the
    -- tier mapping in force when the row was stored, so both engines read one small integer.
    tier                BIGINT NOT NULL,
    PRIMARY KEY (vcenter, snapshot_time, vm_id)
);

-- Every snapshot taken or imported, including snapshots in which no VM was seen: the
-- daily total_samples of a vCenter is the number of its registry rows in the day.
CREATE TABLE snapshot_registry (
    vcenter       TEXT COLLATE "C" NOT NULL,
    snapshot_time BIGINT NOT NULL,
    source        TEXT COLLATE "C" NOT NULL, -- 'import' or 'collector'
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (snapshot_time, vcenter)
);

-- One row per collector attempt against one vCenter, successful or not.
CREATE TABLE snapshot_runs (
    id            BIGSERIAL PRIMARY KEY,
    vcenter       TEXT COLLATE "C" NOT NULL,
    snapshot_time BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT NOT NULL,
    success       BOOLEAN NOT NULL,
    row_count     BIGINT NOT NULL,
    error         TEXT COLLATE "C" NOT NULL
);
CREATE INDEX snapshot_runs_by_vcenter ON snapshot_runs (vcenter, started_at);

-- Daily and monthly summaries share one shape; period_start is the first second of the
-- UTC day or month.
CREATE TABLE vm_daily_summary (
    period_start         BIGINT NOT NULL,
    vcenter              TEXT COLLATE "C" NOT NULL,
    vm_id                TEXT COLLATE "C" NOT NULL,
    vm_uuid              TEXT COLLATE "C" NOT NULL,
    name                 TEXT COLLATE "C" NOT NULL,
    resource_pool        TEXT COLLATE "C" NOT NULL,
    datacenter           TEXT COLLATE "C" NOT NULL,
    cluster              TEXT COLLATE "C" NOT NULL,
    folder               TEXT COLLATE "C" NOT NULL,
    samples_present      BIGINT NOT NULL,
    total_samples        BIGINT NOT NULL,
    avg_is_present       DOUBLE PRECISION NOT NULL,
    avg_vcpu_count       DOUBLE PRECISION NOT NULL,
    avg_ram_gb           DOUBLE PRECISION NOT NULL,
    avg_provisioned_disk DOUBLE PRECISION NOT NULL,
    pool_tin_pct         DOUBLE PRECISION NOT NULL,
    pool_bronze_pct      DOUBLE PRECISION NOT NULL,
    pool_silver_pct      DOUBLE PRECISION NOT NULL,
    pool_gold_pct        DOUBLE PRECISION NOT NULL,
    tin                  DOUBLE PRECISION NOT NULL,
    bronze               DOUBLE PRECISION NOT NULL,
    silver               DOUBLE PRECISION NOT NULL,
    gold                 DOUBLE PRECISION NOT NULL,
    creation_time        BIGINT NOT NULL,
    deletion_time        BIGINT NOT NULL,
    snapshot_time        BIGINT NOT NULL,
    PRIMARY KEY (period_start, vcenter, vm_id)
);

CREATE TABLE vm_monthly_summary (
    period_start         BIGINT NOT NULL,
    vcenter              TEXT COLLATE "C" NOT NULL,
    vm_id                TEXT COLLATE "C" NOT NULL,
    vm_uuid              TEXT COLLATE "C" NOT NULL,
    name                 TEXT COLLATE "C" NOT NULL,
    resource_pool        TEXT COLLATE "C" NOT NULL,
    datacenter           TEXT COLLATE "C" NOT NULL,
    cluster              TEXT COLLATE "C" NOT NULL,
    folder               TEXT COLLATE "C" NOT NULL,
    samples_present      BIGINT NOT NULL,
    total_samples        BIGINT NOT NULL,
    avg_is_present       DOUBLE PRECISION NOT NULL,
    avg_vcpu_count       DOUBLE PRECISION NOT NULL,
    avg_ram_gb           DOUBLE PRECISION NOT NULL,
    avg_provisioned_disk DOUBLE PRECISION NOT NULL,
    pool_tin_pct         DOUBLE PRECISION NOT NULL,
    pool_bronze_pct      DOUBLE PRECISION NOT NULL,
    pool_silver_pct      DOUBLE PRECISION NOT NULL,
    pool_gold_pct        DOUBLE PRECISION NOT NULL,
    tin                  DOUBLE PRECISION NOT NULL,
    bronze               DOUBLE PRECISION NOT NULL,
    silver               DOUBLE PRECISION NOT NULL,
    gold                 DOUBLE PRECISION NOT NULL,
    creation_time        BIGINT NOT NULL,
    deletion_time        BIGINT NOT NULL,
    snapshot_time        BIGINT NOT NULL,
    PRIMARY KEY (period_start, vcenter, vm_id)
);

-- Compact per-vCenter totals so totals pages never scan VM rows. grain 'snapshot': one row per
-- snapshot (raw counts); 'daily'/'monthly': sums of that period's summaries (prorated).
CREATE TABLE vcenter_totals (
    grain         TEXT COLLATE "C" NOT NULL,
    vcenter       TEXT COLLATE "C" NOT NULL,
    period_start  BIGINT NOT NULL,
    total_samples BIGINT NOT NULL,
    vm_count      DOUBLE PRECISION NOT NULL,
    vcpu_count    DOUBLE PRECISION NOT NULL,
    ram_gb        DOUBLE PRECISION NOT NULL,
    disk_gb       DOUBLE PRECISION NOT NULL,
    tin           DOUBLE PRECISION NOT NULL,
    bronze        DOUBLE PRECISION NOT NULL,
    silver        DOUBLE PRECISION NOT NULL,
    gold          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (grain, vcenter, period_start)
);

-- The newest snapshot totals of each vCenter; the primary key above makes this one index
-- probe per vCenter, so it is a view rather than a second copy to keep in step.
CREATE VIEW vcenter_latest_totals AS
SELECT t.* FROM vcenter_totals t
WHERE t.grain = 'snapshot'
  AND t.period_start = (SELECT MAX(l.period_start) FROM vcenter_totals l
                        WHERE l.grain = 'snapshot' AND l.vcenter = t.vcenter);
