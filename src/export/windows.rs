//! How an export's time range is cut into requests (pure).
//!
//! A range `[start, end)` becomes consecutive windows `[s, s + w)`. VictoriaMetrics'
//! `/api/v1/export` reads `start` and `end` as inclusive decimal seconds, so a window is sent
//! as `start = s`, `end = s + w − 1 ms`: a sample exactly on a boundary belongs to exactly one
//! window. A window that times out is halved (down to [`MIN_WINDOW_MS`]) and the split kept in
//! the checkpoint, so a resumed run asks for the same windows.
//!
//! `query_range` answers at multiples of the step: a window's points are the `k·step` in
//! `[s, s + w)`, at most [`MAX_POINTS`] per request, so consecutive requests never repeat a
//! point at their edges.

use serde::{Deserialize, Serialize};

/// The smallest window a timed-out window is split into.
pub const MIN_WINDOW_MS: i64 = 30_000;
/// Points per `query_range` request (Prometheus refuses more than 11,000).
pub const MAX_POINTS: i64 = 10_000;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid time range {start_ms}..{end_ms} (ms): the end must be after the start")]
    EmptyRange { start_ms: i64, end_ms: i64 },
    #[error("invalid time range: {start_ms} ms is before 1970")]
    BeforeEpoch { start_ms: i64 },
    #[error("invalid window of {window_ms} ms: it must be at least {MIN_WINDOW_MS} ms")]
    WindowTooSmall { window_ms: i64 },
    #[error("invalid step of {step_ms} ms: it must be at least 1 s")]
    StepTooSmall { step_ms: i64 },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::EmptyRange { .. } | Error::BeforeEpoch { .. } => "InvalidTimeRange",
            Error::WindowTooSmall { .. } => "InvalidWindow",
            Error::StepTooSmall { .. } => "InvalidStep",
        }
    }
}

/// A span of time in Unix milliseconds, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// A checked range: non-empty and not before 1970.
    pub fn new(start_ms: i64, end_ms: i64) -> Result<Window, Error> {
        if start_ms < 0 {
            return Err(Error::BeforeEpoch { start_ms });
        }
        if end_ms <= start_ms {
            return Err(Error::EmptyRange { start_ms, end_ms });
        }
        Ok(Window { start_ms, end_ms })
    }

    pub fn len_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    /// `start` and `end` as `/api/v1/export` takes them: inclusive decimal seconds, the end one
    /// millisecond before the window's end.
    pub fn export_bounds(&self) -> (String, String) {
        (seconds(self.start_ms), seconds(self.end_ms - 1))
    }

    /// The two halves of a window that timed out, or `None` when a half would be shorter
    /// than [`MIN_WINDOW_MS`].
    pub fn halves(&self) -> Option<(Window, Window)> {
        let half = self.len_ms() / 2;
        if half < MIN_WINDOW_MS {
            return None;
        }
        let middle = self.start_ms + half;
        Some((
            Window {
                start_ms: self.start_ms,
                end_ms: middle,
            },
            Window {
                start_ms: middle,
                end_ms: self.end_ms,
            },
        ))
    }

    /// The `query_range` requests of this window at `step_ms`: `(start, end)` in ms, both
    /// points, aligned to the step, at most [`MAX_POINTS`] points each. Empty when no multiple
    /// of the step falls inside the window.
    pub fn point_requests(&self, step_ms: i64) -> Vec<(i64, i64)> {
        let first = ceil_to(self.start_ms, step_ms);
        let last = ceil_to(self.end_ms, step_ms) - step_ms;
        let mut requests = Vec::new();
        let mut from = first;
        while from <= last {
            let to = (from + (MAX_POINTS - 1) * step_ms).min(last);
            requests.push((from, to));
            from = to + step_ms;
        }
        requests
    }
}

/// The default window for a range: 5 min up to 2 h, 1 h up to 2 days, else 6 h — a 7-day
/// export takes 28 requests.
pub fn default_window_ms(range: Window) -> i64 {
    match range.len_ms() {
        len if len <= 2 * HOUR_MS => 5 * MINUTE_MS,
        len if len <= 48 * HOUR_MS => HOUR_MS,
        _ => 6 * HOUR_MS,
    }
}

/// `range` cut into consecutive windows of `window_ms` (the last one shorter).
pub fn plan(range: Window, window_ms: i64) -> Result<Vec<Window>, Error> {
    if window_ms < MIN_WINDOW_MS {
        return Err(Error::WindowTooSmall { window_ms });
    }
    let mut windows = Vec::new();
    let mut start = range.start_ms;
    while start < range.end_ms {
        let end = start.saturating_add(window_ms).min(range.end_ms);
        windows.push(Window {
            start_ms: start,
            end_ms: end,
        });
        start = end;
    }
    Ok(windows)
}

/// Checks a `query_range` step.
pub fn check_step(step_ms: i64) -> Result<(), Error> {
    if step_ms < 1_000 {
        return Err(Error::StepTooSmall { step_ms });
    }
    Ok(())
}

/// Milliseconds as decimal seconds with as many decimals as needed (`1700000000`,
/// `1700000299.999`).
pub fn seconds(ms: i64) -> String {
    let (whole, fraction) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:03}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// The smallest multiple of `step` that is ≥ `t` (both ≥ 0, step > 0).
fn ceil_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step + if t.rem_euclid(step) == 0 { 0 } else { step }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_996_800_000; // 2026-11-30T00:00:00Z

    #[test]
    fn the_default_window_grows_with_the_range() {
        let range = |hours: i64| Window::new(T, T + hours * HOUR_MS).unwrap();
        assert_eq!(default_window_ms(range(2)), 5 * MINUTE_MS);
        assert_eq!(default_window_ms(range(3)), HOUR_MS);
        assert_eq!(default_window_ms(range(48)), HOUR_MS);
        assert_eq!(default_window_ms(range(49)), 6 * HOUR_MS);
        let week = range(7 * 24);
        assert_eq!(plan(week, default_window_ms(week)).unwrap().len(), 28);
    }

    #[test]
    fn windows_cover_the_range_without_gaps_or_overlaps() {
        let range = Window::new(T + 7, T + 7 + 61 * MINUTE_MS + 5).unwrap();
        let windows = plan(range, 5 * MINUTE_MS).unwrap();
        assert_eq!(windows.len(), 13);
        assert_eq!(windows[0].start_ms, range.start_ms);
        assert_eq!(windows.last().unwrap().end_ms, range.end_ms);
        for pair in windows.windows(2) {
            assert_eq!(pair[0].end_ms, pair[1].start_ms);
        }
    }

    #[test]
    fn a_boundary_sample_is_asked_for_by_exactly_one_window() {
        let windows = plan(Window::new(T, T + 10 * MINUTE_MS).unwrap(), 5 * MINUTE_MS).unwrap();
        let boundary = T + 5 * MINUTE_MS;
        let inclusive = |w: &Window| {
            let (start, end) = w.export_bounds();
            let ms = |s: &str| (s.parse::<f64>().unwrap() * 1000.0).round() as i64;
            ms(&start) <= boundary && boundary <= ms(&end)
        };
        assert_eq!(windows.iter().filter(|w| inclusive(w)).count(), 1);
        assert_eq!(
            windows[0].export_bounds(),
            ("1795996800".into(), "1795997099.999".into())
        );
    }

    #[test]
    fn decimal_seconds_are_exact() {
        assert_eq!(seconds(1_700_000_000_000), "1700000000");
        assert_eq!(seconds(1_700_000_000_500), "1700000000.5");
        assert_eq!(seconds(1_700_000_000_010), "1700000000.01");
        assert_eq!(seconds(0), "0");
    }

    #[test]
    fn a_window_halves_down_to_thirty_seconds() {
        let window = Window::new(T, T + 90_000).unwrap();
        let (a, b) = window.halves().unwrap();
        assert_eq!((a.len_ms(), b.len_ms()), (45_000, 45_000));
        assert_eq!(a.end_ms, b.start_ms);
        assert_eq!(a.halves(), None);
        let odd = Window::new(T, T + 60_001).unwrap();
        let (a, b) = odd.halves().unwrap();
        assert_eq!(a.len_ms() + b.len_ms(), 60_001);
    }

    #[test]
    fn query_range_requests_are_aligned_capped_and_never_repeat_a_point() {
        let step = 15_000;
        // 3 days at 15 s = 17,280 points: two requests.
        let window = Window::new(T + 1, T + 72 * HOUR_MS + 1).unwrap();
        let requests = window.point_requests(step);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].0, T + step);
        assert_eq!((requests[0].1 - requests[0].0) / step + 1, MAX_POINTS);
        assert_eq!(requests[1].0, requests[0].1 + step);
        assert_eq!(requests[1].1, T + 72 * HOUR_MS);
        let points: i64 = requests.iter().map(|(a, b)| (b - a) / step + 1).sum();
        assert_eq!(points, 17_280);
        // Consecutive windows share no point either.
        let windows = plan(Window::new(T, T + HOUR_MS).unwrap(), 5 * MINUTE_MS).unwrap();
        let all: Vec<i64> = windows
            .iter()
            .flat_map(|w| w.point_requests(step))
            .flat_map(|(a, b)| (a..=b).step_by(step as usize))
            .collect();
        assert_eq!(all.len(), 240);
        assert!(all.windows(2).all(|p| p[1] - p[0] == step));
        assert!(
            Window::new(T + 1, T + 2)
                .unwrap()
                .point_requests(step)
                .is_empty()
        );
    }

    #[test]
    fn bad_ranges_windows_and_steps_are_refused_by_name() {
        assert_eq!(Window::new(T, T).unwrap_err().reason(), "InvalidTimeRange");
        assert!(Window::new(-1, 5).is_err());
        let range = Window::new(T, T + HOUR_MS).unwrap();
        assert!(
            plan(range, 29_999)
                .unwrap_err()
                .to_string()
                .contains("30000")
        );
        assert_eq!(check_step(999).unwrap_err().reason(), "InvalidStep");
    }
}
