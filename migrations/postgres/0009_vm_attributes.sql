-- vSphere custom attributes of each VM (`customValue`, named by the vCenter's field
-- definitions), kept as a change history: a capture adds an entry only for a VM whose
-- attributes differ from its latest one (also when they become empty), valid from that
-- snapshot's time. The attributes of a VM on a day are those of its latest entry with
-- valid_from before the end of that day. `attributes` is a JSON object with its keys sorted
-- (canonical, so equal attributes are equal text). Retention drops an entry once a newer one
-- older than the daily summaries' cutoff supersedes it.
CREATE TABLE vm_attributes (
    vcenter    TEXT COLLATE "C" NOT NULL,
    vm_id      TEXT COLLATE "C" NOT NULL,
    valid_from BIGINT NOT NULL,
    attributes TEXT NOT NULL,
    PRIMARY KEY (vcenter, vm_id, valid_from)
);
