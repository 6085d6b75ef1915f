//! `/vm/trace`: vm id or exact name → the matching VMs (a list when several) → one VM's
//! hourly rows or daily summaries → charts, lifecycle and placement stints.

use super::chart::{self, number};
use super::{Chart, Error, Layout, Session, html, link, optional, time_text};
use crate::inventory::Tier;
use crate::store::Store;
use crate::store::trace::{TracePoint, TraceView, VmTrace};
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    vm: Option<String>,
    vcenter: Option<String>,
    view: Option<String>,
}

struct Match {
    vcenter: String,
    vm_id: String,
    name: String,
    href: String,
}

#[derive(Template)]
#[template(path = "trace_search.html", config = "src/api/ui/askama.toml")]
struct Search {
    layout: Layout,
    vm: String,
    vcenter: String,
    daily: bool,
    matches: Vec<Match>,
}

/// A run of consecutive points in one resource pool.
struct Stint {
    from: String,
    to: String,
    pool: String,
    tier: String,
    points: usize,
}

#[derive(Template)]
#[template(path = "trace.html", config = "src/api/ui/askama.toml")]
struct Trace {
    layout: Layout,
    view: &'static str,
    other_url: String,
    other_label: &'static str,
    vcenter: String,
    vm_id: String,
    name: String,
    lifecycle: Vec<(&'static str, String)>,
    points: usize,
    charts: Vec<Chart>,
    stints: Vec<Stint>,
}

/// The view named by the `view` parameter (hourly when absent), or a 400 naming it.
pub fn parse_view(view: Option<&str>) -> Result<TraceView, Error> {
    match view.filter(|v| !v.is_empty()) {
        None => Ok(TraceView::Hourly),
        Some(text) => TraceView::parse(text)
            .ok_or_else(|| Error::bad("view", format!("{text:?} is not one of hourly, daily"))),
    }
}

pub async fn page(
    session: Session,
    State(store): State<Store>,
    query: Result<Query<TraceQuery>, QueryRejection>,
) -> Result<Html<String>, Error> {
    let Query(query) = query?;
    let view = parse_view(query.view.as_deref())?;
    let vcenter = optional(query.vcenter);
    let Some(vm) = optional(query.vm) else {
        return search(&session, None, vcenter, view, Vec::new());
    };
    let mut matches = store.vm_matches(&vm, vcenter.as_deref()).await?;
    if matches.len() > 1 {
        return search(&session, Some(vm), vcenter, view, matches);
    }
    let Some(found) = matches.pop() else {
        return Err(Error::UnknownVm(vm));
    };
    let trace = store.vm_trace(view, &found).await?;
    html("trace", &trace_page(&session, trace))
}

fn trace_link(vm_id: &str, vcenter: &str, view: TraceView) -> String {
    link(
        "/vm/trace",
        &[("vm", vm_id), ("vcenter", vcenter), ("view", view.as_str())],
    )
}

fn search(
    session: &Session,
    vm: Option<String>,
    vcenter: Option<String>,
    view: TraceView,
    matches: Vec<crate::store::trace::VmRef>,
) -> Result<Html<String>, Error> {
    let matches = matches
        .into_iter()
        .map(|m| Match {
            href: trace_link(&m.vm_id, &m.vcenter, view),
            vcenter: m.vcenter,
            vm_id: m.vm_id,
            name: m.name,
        })
        .collect();
    html(
        "trace search",
        &Search {
            layout: Layout::new("VM trace", session),
            vm: vm.unwrap_or_default(),
            vcenter: vcenter.unwrap_or_default(),
            daily: view == TraceView::Daily,
            matches,
        },
    )
}

fn trace_page(session: &Session, trace: VmTrace) -> Trace {
    let (other, other_label) = match trace.view {
        TraceView::Hourly => (TraceView::Daily, "Daily view"),
        TraceView::Daily => (TraceView::Hourly, "Hourly view"),
    };
    let life = trace.lifecycle;
    let (first, last) = match trace.view {
        TraceView::Hourly => ("First snapshot", "Last snapshot"),
        TraceView::Daily => ("First day", "Last day"),
    };
    let points = &trace.points;
    let series = |value: fn(&TracePoint) -> f64| -> Vec<(i64, f64)> {
        points.iter().map(|p| (p.time, value(p))).collect()
    };
    let mut charts = vec![
        Chart {
            title: "vCPU",
            svg: chart::line_chart("vCPU", &series(|p| p.vcpu_count)),
        },
        Chart {
            title: "RAM GB",
            svg: chart::line_chart("RAM GB", &series(|p| p.ram_gb)),
        },
        Chart {
            title: "Disk GB",
            svg: chart::line_chart("Disk GB", &series(|p| p.disk_gb)),
        },
        Chart {
            title: "Tier (0 none, 1 Tin, 2 Bronze, 3 Silver, 4 Gold)",
            svg: chart::line_chart("Tier", &series(|p| tier_code(&p.tier))),
        },
    ];
    if trace.view == TraceView::Daily {
        charts.push(Chart {
            title: "Presence (share of the day's snapshots)",
            svg: chart::line_chart("Presence", &series(|p| p.presence)),
        });
    }
    Trace {
        layout: Layout::new(format!("VM trace: {}", trace.name), session),
        view: trace.view.as_str(),
        other_url: trace_link(&trace.vm_id, &trace.vcenter, other),
        other_label,
        lifecycle: vec![
            ("Created", time_text(life.creation_time)),
            (
                "Deleted",
                if life.deletion_time == 0 {
                    "not deleted".to_string()
                } else {
                    time_text(life.deletion_time)
                },
            ),
            (first, time_text(life.first_seen)),
            (last, time_text(life.last_seen)),
            ("Points", number(points.len() as f64)),
        ],
        points: points.len(),
        charts,
        stints: stints(points),
        vcenter: trace.vcenter,
        vm_id: trace.vm_id,
        name: trace.name,
    }
}

/// The tier as the number the tier chart draws: 0 for none, 1..4 for Tin..Gold.
fn tier_code(name: &str) -> f64 {
    Tier::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .map_or(0.0, |t| t.code() as f64)
}

/// Consecutive points in the same resource pool and tier, oldest first.
fn stints(points: &[TracePoint]) -> Vec<Stint> {
    let mut stints: Vec<Stint> = Vec::new();
    let mut previous: Option<&TracePoint> = None;
    for p in points {
        match (stints.last_mut(), previous) {
            (Some(stint), Some(prev))
                if prev.resource_pool == p.resource_pool && prev.tier == p.tier =>
            {
                stint.to = time_text(p.time);
                stint.points += 1;
            }
            _ => stints.push(Stint {
                from: time_text(p.time),
                to: time_text(p.time),
                pool: p.resource_pool.clone(),
                tier: if p.tier.is_empty() {
                    "none".to_string()
                } else {
                    p.tier.clone()
                },
                points: 1,
            }),
        }
        previous = Some(p);
    }
    stints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(time: i64, pool: &str, tier: &str) -> TracePoint {
        TracePoint {
            time,
            name: "vm".into(),
            resource_pool: pool.into(),
            tier: tier.into(),
            vcpu_count: 1.0,
            ram_gb: 1.0,
            disk_gb: 1.0,
            presence: 1.0,
            creation_time: 0,
            deletion_time: 0,
        }
    }

    #[test]
    fn stints_split_where_the_pool_or_tier_changes() {
        let points = [
            point(3_600, "Gold", "Gold"),
            point(7_200, "Gold", "Gold"),
            point(10_800, "batch", ""),
            point(14_400, "Gold", "Gold"),
        ];
        let stints = stints(&points);
        let shape: Vec<(&str, &str, usize)> = stints
            .iter()
            .map(|s| (s.pool.as_str(), s.tier.as_str(), s.points))
            .collect();
        assert_eq!(
            shape,
            [
                ("Gold", "Gold", 2),
                ("batch", "none", 1),
                ("Gold", "Gold", 1)
            ]
        );
        assert_eq!(stints[0].to, "1970-01-01 02:00");
    }

    #[test]
    fn tiers_chart_as_their_codes_and_no_tier_as_zero() {
        assert_eq!(tier_code("Gold"), 4.0);
        assert_eq!(tier_code("Tin"), 1.0);
        assert_eq!(tier_code(""), 0.0);
    }

    #[test]
    fn the_view_defaults_to_hourly_and_anything_unknown_is_a_bad_view() {
        assert_eq!(parse_view(None).unwrap(), TraceView::Hourly);
        assert_eq!(parse_view(Some("daily")).unwrap(), TraceView::Daily);
        let error = parse_view(Some("weekly")).unwrap_err();
        assert!(matches!(error, Error::BadParameter { name: "view", .. }));
    }
}
