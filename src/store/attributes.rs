//! VMs' custom attributes as a change history (`vm_attributes`, migration 0009): written by
//! a capture beside its snapshot, read back for a period as an [`AttributeHistory`].

use super::{Error, QueryContext, Result, Store, Tx, with_pool, with_tx};
use std::collections::{BTreeMap, HashMap};

/// A VM's custom attributes, name → value.
pub type Attributes = BTreeMap<String, String>;

static NO_ATTRIBUTES: Attributes = BTreeMap::new();

/// Entries written by one multi-row INSERT (4 parameters each, far below either
/// database's parameter limit).
const INSERT_BATCH: usize = 250;

/// One stored entry: the attributes a VM has had since `valid_from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeEntry {
    pub valid_from: i64,
    pub attributes: Attributes,
}

/// The attribute entries of every VM that matter for a period: see [`Store::vm_attributes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeHistory {
    /// vCenter → VM id → entries, oldest first.
    vms: HashMap<String, HashMap<String, Vec<AttributeEntry>>>,
}

impl AttributeHistory {
    /// The attributes of VM `vm_id` of `vcenter` as of `t`: those of its latest entry with
    /// `valid_from < t`, empty when it has none. For a day, `t` is the day's end (its
    /// attributes are the last ones seen that day).
    pub fn as_of(&self, vcenter: &str, vm_id: &str, t: i64) -> &Attributes {
        let entries = self.entries(vcenter, vm_id);
        let before = entries.partition_point(|entry| entry.valid_from < t);
        before
            .checked_sub(1)
            .map_or(&NO_ATTRIBUTES, |latest| &entries[latest].attributes)
    }

    /// The entries of one VM, oldest first.
    pub fn entries(&self, vcenter: &str, vm_id: &str) -> &[AttributeEntry] {
        self.vms
            .get(vcenter)
            .and_then(|vms| vms.get(vm_id))
            .map_or(&[], Vec::as_slice)
    }
}

impl Store {
    /// For every VM, the attribute entries that matter for days in `[from, to)`: those with
    /// `valid_from` in `[from, to)` and the latest one before `from`.
    pub async fn vm_attributes(&self, from: i64, to: i64) -> Result<AttributeHistory> {
        const SQL: &str = "SELECT vcenter, vm_id, valid_from, attributes FROM vm_attributes a \
            WHERE valid_from < $2 AND (valid_from >= $1 OR valid_from = \
              (SELECT MAX(valid_from) FROM vm_attributes b \
               WHERE b.vcenter = a.vcenter AND b.vm_id = a.vm_id AND b.valid_from < $1)) \
            ORDER BY vcenter, vm_id, valid_from";
        let rows: Vec<(String, String, i64, String)> = with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await
                .op("read VM attributes")?
        });
        let mut history = AttributeHistory::default();
        for (vcenter, vm_id, valid_from, json) in rows {
            let attributes = decode(&vcenter, &vm_id, valid_from, &json)?;
            history
                .vms
                .entry(vcenter)
                .or_default()
                .entry(vm_id)
                .or_default()
                .push(AttributeEntry {
                    valid_from,
                    attributes,
                });
        }
        Ok(history)
    }
}

/// The attribute entries a snapshot writer adds: compared with each VM's latest stored
/// entry, read once per vCenter and snapshot time.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// The vCenter and snapshot time `latest` is for.
    loaded: Option<(String, i64)>,
    /// VM id → canonical JSON of its latest entry at or before that time.
    latest: HashMap<String, String>,
    /// `(vcenter, vm_id, valid_from, canonical JSON)` not yet written.
    rows: Vec<(String, String, i64, String)>,
}

impl Pending {
    /// Queues an entry for `vm_id` when `attributes` differ from its latest stored ones.
    /// A VM without attributes and without entries costs one hash lookup.
    pub(super) async fn note(
        &mut self,
        tx: &mut Tx,
        vcenter: &str,
        vm_id: &str,
        snapshot_time: i64,
        attributes: &Attributes,
    ) -> Result<()> {
        let loaded = self
            .loaded
            .as_ref()
            .is_some_and(|(v, t)| v == vcenter && *t == snapshot_time);
        if !loaded {
            self.flush(tx).await?;
            self.latest = latest_entries(tx, vcenter, snapshot_time).await?;
            self.loaded = Some((vcenter.to_string(), snapshot_time));
        }
        let stored = self.latest.get(vm_id);
        if attributes.is_empty() && stored.is_none_or(|json| json == "{}") {
            return Ok(());
        }
        let json = serde_json::to_string(attributes).map_err(|e| Error::Attributes {
            vcenter: vcenter.to_string(),
            vm_id: vm_id.to_string(),
            valid_from: snapshot_time,
            message: e.to_string(),
        })?;
        if stored == Some(&json) {
            return Ok(());
        }
        self.latest.insert(vm_id.to_string(), json.clone());
        self.rows
            .push((vcenter.to_string(), vm_id.to_string(), snapshot_time, json));
        if self.rows.len() == INSERT_BATCH {
            self.flush(tx).await?;
        }
        Ok(())
    }

    /// Writes the queued entries; one at the same key (a snapshot taken again) is replaced.
    pub(super) async fn flush(&mut self, tx: &mut Tx) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(
            "INSERT INTO vm_attributes (vcenter, vm_id, valid_from, attributes) VALUES ",
        );
        for i in 0..self.rows.len() {
            let n = i * 4;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
        }
        sql.push_str(
            " ON CONFLICT (vcenter, vm_id, valid_from) DO UPDATE SET attributes = excluded.attributes",
        );
        with_tx!(tx, |conn| {
            // Only placeholders are formatted into it; the values are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for (vcenter, vm_id, valid_from, json) in &self.rows {
                query = query.bind(vcenter).bind(vm_id).bind(valid_from).bind(json);
            }
            query.execute(&mut *conn).await.op("write VM attributes")?;
        });
        self.rows.clear();
        Ok(())
    }
}

/// The canonical JSON of each VM's latest entry of `vcenter` at or before `at`.
async fn latest_entries(tx: &mut Tx, vcenter: &str, at: i64) -> Result<HashMap<String, String>> {
    const SQL: &str = "SELECT vm_id, attributes FROM vm_attributes a WHERE vcenter = $1 \
        AND valid_from = (SELECT MAX(valid_from) FROM vm_attributes b \
          WHERE b.vcenter = a.vcenter AND b.vm_id = a.vm_id AND b.valid_from <= $2)";
    let rows: Vec<(String, String)> = with_tx!(tx, |conn| {
        sqlx::query_as(SQL)
            .bind(vcenter)
            .bind(at)
            .fetch_all(&mut *conn)
            .await
            .op("read the latest VM attributes")?
    });
    Ok(rows.into_iter().collect())
}

/// Deletes the entries a newer entry from before `cutoff` supersedes: no day from `cutoff`
/// on can need them. Run by retention with the daily summaries' delete.
pub(super) async fn delete_superseded_before(tx: &mut Tx, cutoff: i64) -> Result<u64> {
    const SQL: &str = "DELETE FROM vm_attributes WHERE EXISTS (SELECT 1 FROM vm_attributes newer \
        WHERE newer.vcenter = vm_attributes.vcenter AND newer.vm_id = vm_attributes.vm_id \
        AND newer.valid_from > vm_attributes.valid_from AND newer.valid_from < $1)";
    Ok(with_tx!(tx, |conn| {
        sqlx::query(SQL)
            .bind(cutoff)
            .execute(&mut *conn)
            .await
            .op("delete superseded VM attributes")?
            .rows_affected()
    }))
}

fn decode(vcenter: &str, vm_id: &str, valid_from: i64, json: &str) -> Result<Attributes> {
    serde_json::from_str(json).map_err(|e| Error::Attributes {
        vcenter: vcenter.to_string(),
        vm_id: vm_id.to_string(),
        valid_from,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn attributes_as_of_a_time_are_those_of_the_latest_entry_before_it() {
        let mut history = AttributeHistory::default();
        history.vms.entry("vc".into()).or_default().insert(
            "vm-1".into(),
            vec![
                AttributeEntry {
                    valid_from: 100,
                    attributes: attributes(&[("Tenant", "acme")]),
                },
                AttributeEntry {
                    valid_from: 200,
                    attributes: attributes(&[]),
                },
                AttributeEntry {
                    valid_from: 300,
                    attributes: attributes(&[("Tenant", "beta")]),
                },
            ],
        );
        let tenant = |t| history.as_of("vc", "vm-1", t).get("Tenant").cloned();
        assert_eq!(
            tenant(100),
            None,
            "an entry is not in force at its own time"
        );
        assert_eq!(tenant(101).as_deref(), Some("acme"));
        assert_eq!(tenant(200).as_deref(), Some("acme"));
        assert_eq!(tenant(201), None, "the attributes became empty at 200");
        assert_eq!(tenant(301).as_deref(), Some("beta"));
        assert_eq!(tenant(i64::MAX).as_deref(), Some("beta"));
        assert!(history.as_of("vc", "vm-2", 1_000).is_empty());
        assert!(history.as_of("other", "vm-1", 1_000).is_empty());
        assert_eq!(history.entries("vc", "vm-1").len(), 3);
    }
}
