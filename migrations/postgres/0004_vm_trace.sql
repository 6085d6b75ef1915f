-- The VM trace (`/vm/trace`, `/api/vm/trace`): one VM's rows in time order without scanning
-- whole snapshots, and VMs found by exact name. Each index is one more B-tree insert per row
-- for every capture write (vm_hourly) or daily aggregation (vm_daily_summary). A name index on
-- vm_hourly made capture writes ~50% slower, so names are looked up in the daily summaries
-- and in each vCenter's newest snapshot (a primary-key range) instead.
CREATE INDEX vm_hourly_by_vm ON vm_hourly (vcenter, vm_id, snapshot_time);
CREATE INDEX vm_daily_summary_by_vm ON vm_daily_summary (vcenter, vm_id, period_start);
CREATE INDEX vm_daily_summary_by_name ON vm_daily_summary (name);
