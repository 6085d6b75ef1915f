//! The VM trace: a VM named by id or exact name → the VMs it matches → each one's history
//! from `vm_hourly` (per snapshot) or `vm_daily_summary` (per day). There is no per-VM
//! index (it made every write rewrite whole B-trees, see migration 0007): a trace seeks the
//! primary keys once per registered snapshot or stored day, and finds names in `vm_names`.

use super::{QueryContext, Result, Store, Tx, with_pool, with_tx};
use crate::inventory::Tier;
use crate::store::grain::Grain;
use serde::{Deserialize, Serialize};

/// Which table a trace reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceView {
    /// One point per snapshot, from the hourly rows.
    Hourly,
    /// One point per day, from the daily summaries (averages over the day's snapshots).
    Daily,
}

impl TraceView {
    pub fn parse(text: &str) -> Option<TraceView> {
        match text {
            "hourly" => Some(TraceView::Hourly),
            "daily" => Some(TraceView::Daily),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TraceView::Hourly => "hourly",
            TraceView::Daily => "daily",
        }
    }
}

/// One VM a trace query matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VmRef {
    pub vcenter: String,
    pub vm_id: String,
    /// One of the names the VM was seen with.
    pub name: String,
}

/// The VM at one snapshot (hourly) or over one day (daily: averages, presence < 1 when the VM
/// missed some of the day's snapshots).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TracePoint {
    /// snapshot_time (hourly) or the day's period_start (daily), Unix seconds.
    pub time: i64,
    pub name: String,
    pub resource_pool: String,
    /// `Tin`, `Bronze`, `Silver`, `Gold`, or empty for no tier; daily: the tier of most of
    /// the day's samples.
    pub tier: String,
    pub vcpu_count: f64,
    pub ram_gb: f64,
    pub disk_gb: f64,
    /// Share of the vCenter's snapshots the VM was in: 1 for hourly points.
    pub presence: f64,
    pub creation_time: i64,
    pub deletion_time: i64,
}

/// When the VM existed, as vCenter reported it and as the snapshots saw it (0 = unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Lifecycle {
    pub creation_time: i64,
    pub deletion_time: i64,
    pub first_seen: i64,
    pub last_seen: i64,
}

impl Lifecycle {
    /// Creation is the earliest known creation time, deletion the latest known one, and the
    /// sightings are the first and last point.
    pub fn of(points: &[TracePoint]) -> Lifecycle {
        let known = |t: i64| (t > 0).then_some(t);
        Lifecycle {
            creation_time: points
                .iter()
                .filter_map(|p| known(p.creation_time))
                .min()
                .unwrap_or(0),
            deletion_time: points
                .iter()
                .filter_map(|p| known(p.deletion_time))
                .max()
                .unwrap_or(0),
            first_seen: points.first().map_or(0, |p| p.time),
            last_seen: points.last().map_or(0, |p| p.time),
        }
    }
}

/// One VM's history in one view.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VmTrace {
    pub vcenter: String,
    pub vm_id: String,
    /// The name of the newest point.
    pub name: String,
    pub view: TraceView,
    pub lifecycle: Lifecycle,
    /// Oldest first.
    pub points: Vec<TracePoint>,
}

type HourlyPoint = (i64, String, String, i64, f64, f64, f64, i64, i64);
type DailyPoint = (
    i64,
    String,
    String,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    i64,
    i64,
);

// Ids: one primary-key seek per registered snapshot and per stored day. Names: the
// names table, and each vCenter's newest snapshot (a VM created today has no summary
// yet); vm_hourly has no name index.
const VM_MATCHES: &str = "SELECT vcenter, vm_id, MAX(name) FROM ( \
        SELECT h.vcenter, h.vm_id, h.name FROM snapshot_registry r CROSS JOIN vm_hourly h \
            WHERE h.vcenter = r.vcenter AND h.snapshot_time = r.snapshot_time AND h.vm_id = $1 \
            AND ($2 IS NULL OR r.vcenter = $2) \
        UNION ALL SELECT h.vcenter, h.vm_id, h.name FROM vm_hourly h JOIN vcenter_latest_totals l \
            ON h.vcenter = l.vcenter AND h.snapshot_time = l.period_start WHERE h.name = $1 \
        UNION ALL SELECT s.vcenter, s.vm_id, s.name FROM vcenter_totals t CROSS JOIN vm_daily_summary s \
            WHERE s.period_start = t.period_start AND s.vcenter = t.vcenter AND s.vm_id = $1 \
            AND t.grain = 'daily' AND ($2 IS NULL OR t.vcenter = $2) \
        UNION ALL SELECT vcenter, vm_id, name FROM vm_names WHERE name = $1 \
        ) m WHERE ($2 IS NULL OR vcenter = $2) GROUP BY vcenter, vm_id ORDER BY vcenter, vm_id";
// One primary-key seek per registered snapshot of the vCenter. CROSS JOIN keeps the
// snapshots the outer loop on SQLite (PostgreSQL treats it as a plain join): without
// statistics SQLite would walk every hourly row of the vCenter instead.
const HOURLY_POINTS: &str = "SELECT h.snapshot_time, h.name, h.resource_pool, h.tier, CAST(h.vcpu_count AS DOUBLE PRECISION), h.ram_gb, \
        h.provisioned_disk_gb, h.creation_time, h.deletion_time \
        FROM snapshot_registry r CROSS JOIN vm_hourly h \
        WHERE h.vcenter = r.vcenter AND h.snapshot_time = r.snapshot_time AND h.vm_id = $2 \
            AND r.vcenter = $1 ORDER BY r.snapshot_time";
// One primary-key seek per day the vCenter has daily totals for (every day written
// has them; days retention removed just find nothing).
const DAILY_POINTS: &str = "SELECT s.period_start, s.name, s.resource_pool, s.pool_tin_pct, s.pool_bronze_pct, s.pool_silver_pct, s.pool_gold_pct, \
        s.avg_vcpu_count, s.avg_ram_gb, s.avg_provisioned_disk, s.avg_is_present, s.creation_time, s.deletion_time \
        FROM vcenter_totals t CROSS JOIN vm_daily_summary s \
        WHERE s.period_start = t.period_start AND s.vcenter = t.vcenter AND s.vm_id = $2 \
            AND t.grain = 'daily' AND t.vcenter = $1 ORDER BY t.period_start";

impl Store {
    /// The VMs whose vm_id or exact name is `vm` (in hourly rows or daily summaries),
    /// optionally of one vCenter, ordered by vcenter then vm_id.
    pub async fn vm_matches(&self, vm: &str, vcenter: Option<&str>) -> Result<Vec<VmRef>> {
        let rows: Vec<(String, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(VM_MATCHES)
                .bind(vm)
                .bind(vcenter)
                .fetch_all(pool)
                .await
                .op("find VMs by id or name")?
        });
        Ok(rows
            .into_iter()
            .map(|(vcenter, vm_id, name)| VmRef {
                vcenter,
                vm_id,
                name,
            })
            .collect())
    }

    /// The history of one VM in `view`, oldest first.
    pub async fn vm_trace(&self, view: TraceView, vm: &VmRef) -> Result<VmTrace> {
        let points = match view {
            TraceView::Hourly => self.hourly_points(vm).await?,
            TraceView::Daily => self.daily_points(vm).await?,
        };
        Ok(VmTrace {
            vcenter: vm.vcenter.clone(),
            vm_id: vm.vm_id.clone(),
            name: points
                .last()
                .map_or_else(|| vm.name.clone(), |p| p.name.clone()),
            view,
            lifecycle: Lifecycle::of(&points),
            points,
        })
    }

    async fn hourly_points(&self, vm: &VmRef) -> Result<Vec<TracePoint>> {
        let rows: Vec<HourlyPoint> = with_pool!(self, |pool| {
            sqlx::query_as(HOURLY_POINTS)
                .bind(&vm.vcenter)
                .bind(&vm.vm_id)
                .fetch_all(pool)
                .await
                .op("read a VM's hourly rows")?
        });
        Ok(rows
            .into_iter()
            .map(
                |(time, name, resource_pool, tier, vcpu, ram, disk, created, deleted)| TracePoint {
                    time,
                    name,
                    resource_pool,
                    tier: Tier::from_code(tier).map_or("", Tier::name).to_string(),
                    vcpu_count: vcpu,
                    ram_gb: ram,
                    disk_gb: disk,
                    presence: 1.0,
                    creation_time: created,
                    deletion_time: deleted,
                },
            )
            .collect())
    }

    async fn daily_points(&self, vm: &VmRef) -> Result<Vec<TracePoint>> {
        let rows: Vec<DailyPoint> = with_pool!(self, |pool| {
            sqlx::query_as(DAILY_POINTS)
                .bind(&vm.vcenter)
                .bind(&vm.vm_id)
                .fetch_all(pool)
                .await
                .op("read a VM's daily summaries")?
        });
        Ok(rows
            .into_iter()
            .map(|r| TracePoint {
                time: r.0,
                name: r.1,
                resource_pool: r.2,
                tier: dominant_tier([r.3, r.4, r.5, r.6])
                    .map_or("", Tier::name)
                    .to_string(),
                vcpu_count: r.7,
                ram_gb: r.8,
                disk_gb: r.9,
                presence: r.10,
                creation_time: r.11,
                deletion_time: r.12,
            })
            .collect())
    }
}

/// Records the names of one day's daily summaries in `vm_names` (nothing for a month), in
/// the transaction that wrote them. A name a replaced day no longer has stays until
/// retention: it still leads to the right VM, whose trace shows its names.
pub(crate) async fn record_names(tx: &mut Tx, grain: Grain, period_start: i64) -> Result<()> {
    if grain != Grain::Daily {
        return Ok(());
    }
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO vm_names (name, vcenter, vm_id, last_period) \
             SELECT name, vcenter, vm_id, period_start FROM vm_daily_summary WHERE period_start = $1 \
             ON CONFLICT (name, vcenter, vm_id) DO UPDATE SET last_period = excluded.last_period \
             WHERE excluded.last_period > vm_names.last_period",
        )
        .bind(period_start)
        .execute(&mut *conn)
        .await
        .op("record VM names")?;
    });
    Ok(())
}

/// The tier with the largest share (the first on a tie), or none when no sample had a tier.
fn dominant_tier(pct: [f64; 4]) -> Option<Tier> {
    Tier::ALL
        .into_iter()
        .zip(pct)
        .filter(|(_, p)| *p > 0.0)
        .fold(None, |best: Option<(Tier, f64)>, (tier, p)| match best {
            Some((_, q)) if q >= p => best,
            _ => Some((tier, p)),
        })
        .map(|(tier, _)| tier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DatabaseUrl;

    /// The steps SQLite plans for `sql`, one line each.
    async fn sqlite_plan(store: &Store, sql: &str) -> Vec<String> {
        let Store::Sqlite(pool) = store else {
            panic!("a SQLite store")
        };
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind("vc")
                .bind("vm-1")
                .fetch_all(pool)
                .await
                .unwrap();
        rows.into_iter().map(|r| r.3).collect()
    }

    #[tokio::test]
    async fn sqlite_traces_seek_the_primary_keys_per_snapshot_and_day() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("db.sqlite3"));
        let store = Store::connect(&url).await.unwrap();
        let hourly = sqlite_plan(&store, HOURLY_POINTS).await;
        assert_eq!(hourly[0], "SCAN r", "{hourly:?}");
        assert_eq!(
            hourly[1], "SEARCH h USING PRIMARY KEY (vcenter=? AND snapshot_time=? AND vm_id=?)",
            "{hourly:?}"
        );
        let daily = sqlite_plan(&store, DAILY_POINTS).await;
        assert!(
            daily.contains(
                &"SEARCH s USING PRIMARY KEY (period_start=? AND vcenter=? AND vm_id=?)".into()
            ),
            "{daily:?}"
        );
        let matches = sqlite_plan(&store, VM_MATCHES).await;
        assert!(
            !matches
                .iter()
                .any(|step| step.starts_with("SCAN h") || step.starts_with("SCAN s")),
            "{matches:?}"
        );
        assert!(
            matches.contains(&"SEARCH vm_names USING PRIMARY KEY (name=?)".into()),
            "{matches:?}"
        );
    }

    fn point(time: i64, creation_time: i64, deletion_time: i64) -> TracePoint {
        TracePoint {
            time,
            name: "vm".into(),
            resource_pool: "Gold".into(),
            tier: "Gold".into(),
            vcpu_count: 2.0,
            ram_gb: 4.0,
            disk_gb: 10.0,
            presence: 1.0,
            creation_time,
            deletion_time,
        }
    }

    #[test]
    fn lifecycle_takes_the_earliest_known_creation_and_latest_known_deletion() {
        let points = [point(100, 0, 0), point(200, 50, 0), point(300, 40, 350)];
        assert_eq!(
            Lifecycle::of(&points),
            Lifecycle {
                creation_time: 40,
                deletion_time: 350,
                first_seen: 100,
                last_seen: 300,
            }
        );
        assert_eq!(Lifecycle::of(&[]), Lifecycle::default());
    }

    #[test]
    fn the_dominant_tier_is_the_largest_share_and_none_without_samples_in_a_tier() {
        assert_eq!(dominant_tier([0.0, 25.0, 75.0, 0.0]), Some(Tier::Silver));
        assert_eq!(dominant_tier([50.0, 0.0, 0.0, 50.0]), Some(Tier::Tin));
        assert_eq!(dominant_tier([0.0; 4]), None);
    }

    #[test]
    fn views_parse_from_their_names_only() {
        assert_eq!(TraceView::parse("hourly"), Some(TraceView::Hourly));
        assert_eq!(TraceView::parse("daily"), Some(TraceView::Daily));
        assert_eq!(TraceView::parse("Daily"), None);
        assert_eq!(TraceView::Daily.as_str(), "daily");
    }
}
