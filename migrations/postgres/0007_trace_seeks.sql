-- The VM trace seeks the primary keys instead of keeping per-VM indexes. Each new snapshot
-- (vm_hourly) or day (vm_daily_summary) adds one entry per VM next to that VM's earlier
-- entries in such an index, so every leaf page is dirtied and rewritten on each write: about
-- 1 s of a 1.5 s daily aggregation at 30k VMs, growing with the history kept. A trace instead
-- seeks (vcenter, snapshot_time, vm_id) once per registered snapshot of the vCenter and
-- (period_start, vcenter, vm_id) once per stored day (the days are in vcenter_totals): a few
-- hundred B-tree seeks per answer, paid on reading rather than on every write.
DROP INDEX vm_hourly_by_vm;
DROP INDEX vm_daily_summary_by_vm;
DROP INDEX vm_daily_summary_by_name;

-- The names each VM had in the daily summaries, for finding a VM by exact name: one row per
-- distinct (name, VM), not per day, so a day's write updates this small table in place.
-- last_period is the newest day with that name; retention drops names whose days it removed.
-- Written with each day's summaries, in the same transaction, by both engines.
CREATE TABLE vm_names (
    name        TEXT COLLATE "C" NOT NULL,
    vcenter     TEXT COLLATE "C" NOT NULL,
    vm_id       TEXT COLLATE "C" NOT NULL,
    last_period BIGINT NOT NULL,
    PRIMARY KEY (name, vcenter, vm_id)
);

INSERT INTO vm_names (name, vcenter, vm_id, last_period)
SELECT name, vcenter, vm_id, MAX(period_start) FROM vm_daily_summary GROUP BY name, vcenter, vm_id;
