-- The host each vCenter key was last captured from, for display. The operator keys a
-- VCenterTarget's data by NAMESPACE/NAME (two namespaces may name a target alike), so the
-- key alone no longer says which vCenter it is. Written with each captured snapshot; keys
-- stored before this table (or imported from CSV) have no row until their next capture.
CREATE TABLE vcenter_hosts (
    vcenter     TEXT    NOT NULL PRIMARY KEY,
    host        TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL
) WITHOUT ROWID;
