//! Charts as inline SVG: `(time, value)` points → min/max-preserving downsampling → scaled
//! polyline with axes, min/max value labels and date ticks. No script, no external asset.

use std::fmt::Write;

/// Most points one polyline draws: a 45-day hourly series (1080) fits, and a longer one is
/// downsampled so the page stays small.
pub const MAX_POINTS: usize = 1_200;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 200.0;
/// Room for the value labels on the left and the date labels below.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;
const TICKS: i64 = 5;

/// The drawing area of a chart in SVG units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// Where the data's extremes are, so points map onto a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub t_min: i64,
    pub t_max: i64,
    pub v_min: f64,
    pub v_max: f64,
}

impl Scale {
    /// The extremes of `points`; `None` when there are none.
    pub fn of(points: &[(i64, f64)]) -> Option<Scale> {
        let first = points.first()?;
        Some(points.iter().fold(
            Scale {
                t_min: first.0,
                t_max: first.0,
                v_min: first.1,
                v_max: first.1,
            },
            |s, &(t, v)| Scale {
                t_min: s.t_min.min(t),
                t_max: s.t_max.max(t),
                v_min: s.v_min.min(v),
                v_max: s.v_max.max(v),
            },
        ))
    }

    /// The SVG coordinates of `(t, v)`: time left to right, values bottom to top; a single
    /// time or a flat series sits in the middle of its axis.
    pub fn place(&self, frame: &Frame, t: i64, v: f64) -> (f64, f64) {
        let x = if self.t_max > self.t_min {
            (t - self.t_min) as f64 / (self.t_max - self.t_min) as f64
        } else {
            0.5
        };
        let y = if self.v_max > self.v_min {
            (v - self.v_min) / (self.v_max - self.v_min)
        } else {
            0.5
        };
        (
            frame.left + x * frame.width,
            frame.top + (1.0 - y) * frame.height,
        )
    }
}

/// At most `max` points of `points` (sorted by time): each of `max / 2` equal runs keeps its
/// lowest and highest point, in time order, so spikes and dips survive.
pub fn downsample(points: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let buckets = max / 2;
    let mut kept = Vec::with_capacity(max);
    for b in 0..buckets {
        let run = &points[b * points.len() / buckets..(b + 1) * points.len() / buckets];
        let Some(first) = run.first() else { continue };
        let (mut low, mut high) = (first, first);
        for p in run {
            if p.1 < low.1 {
                low = p;
            }
            if p.1 > high.1 {
                high = p;
            }
        }
        if low.0 == high.0 {
            kept.push(*low);
        } else if low.0 < high.0 {
            kept.extend([*low, *high]);
        } else {
            kept.extend([*high, *low]);
        }
    }
    kept
}

/// Text made safe for SVG/HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number for a label: whole numbers without decimals, others to two places.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A UTC time as a date, or date and hour when `with_hour`.
pub fn date_label(t: i64, with_hour: bool) -> String {
    let Some(time) = chrono::DateTime::from_timestamp(t, 0) else {
        return t.to_string();
    };
    if with_hour {
        time.format("%m-%d %H:%M").to_string()
    } else {
        time.format("%Y-%m-%d").to_string()
    }
}

/// A line chart of `points` (sorted by time) titled `title`, or a note when there are none.
pub fn line_chart(title: &str, points: &[(i64, f64)]) -> String {
    let frame = Frame {
        left: LEFT,
        top: TOP,
        width: WIDTH - LEFT - RIGHT,
        height: HEIGHT - TOP - BOTTOM,
    };
    let title = escape(title);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>"#
    );
    let Some(scale) = Scale::of(points) else {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no data</text></svg>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return svg;
    };
    let (bottom, right) = (frame.top + frame.height, frame.left + frame.width);
    let _ = write!(
        svg,
        r#"<path class="axis" d="M{l} {t}V{bottom}H{right}"/><text class="label" x="{x}" y="{ty}" text-anchor="end">{max}</text><text class="label" x="{x}" y="{by}" text-anchor="end">{min}</text>"#,
        l = frame.left,
        t = frame.top,
        x = frame.left - 6.0,
        ty = frame.top + 4.0,
        by = bottom,
        max = escape(&number(scale.v_max)),
        min = escape(&number(scale.v_min)),
    );
    let with_hour = scale.t_max - scale.t_min < 3 * 86_400;
    let ticks = if scale.t_max > scale.t_min { TICKS } else { 1 };
    for i in 0..ticks {
        let t = if ticks > 1 {
            scale.t_min + (scale.t_max - scale.t_min) * i / (ticks - 1)
        } else {
            scale.t_min
        };
        let (x, _) = scale.place(&frame, t, scale.v_min);
        let anchor = match i {
            0 if ticks > 1 => "start",
            i if i == ticks - 1 && ticks > 1 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r#"<path class="tick" d="M{x:.1} {bottom}v4"/><text class="label" x="{x:.1}" y="{y}" text-anchor="{anchor}">{label}</text>"#,
            y = bottom + 16.0,
            label = escape(&date_label(t, with_hour)),
        );
    }
    svg.push_str(r#"<polyline class="line" fill="none" points=""#);
    push_points(&mut svg, &scale, &frame, points);
    svg.push_str(r#""/></svg>"#);
    svg
}

/// A small axis-less trend line of `points`, or an empty string when there are none.
pub fn sparkline(label: &str, points: &[(i64, f64)]) -> String {
    let Some(scale) = Scale::of(points) else {
        return String::new();
    };
    let frame = Frame {
        left: 1.0,
        top: 2.0,
        width: 158.0,
        height: 26.0,
    };
    let label = escape(label);
    let mut svg = format!(
        r#"<svg class="spark" viewBox="0 0 160 30" width="160" height="30" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title><polyline class="line" fill="none" points=""#
    );
    push_points(&mut svg, &scale, &frame, &downsample(points, 320));
    svg.push_str(r#""/></svg>"#);
    svg
}

fn push_points(svg: &mut String, scale: &Scale, frame: &Frame, points: &[(i64, f64)]) {
    for (i, &(t, v)) in downsample(points, MAX_POINTS).iter().enumerate() {
        let (x, y) = scale.place(frame, t, v);
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(svg, "{sep}{x:.1},{y:.1}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Frame = Frame {
        left: 10.0,
        top: 20.0,
        width: 100.0,
        height: 50.0,
    };

    #[test]
    fn points_scale_from_the_data_extremes_onto_the_frame_with_values_upwards() {
        let scale = Scale::of(&[(100, 5.0), (300, 15.0), (200, 10.0)]).unwrap();
        assert_eq!(scale.place(&FRAME, 100, 5.0), (10.0, 70.0));
        assert_eq!(scale.place(&FRAME, 300, 15.0), (110.0, 20.0));
        assert_eq!(scale.place(&FRAME, 200, 10.0), (60.0, 45.0));
    }

    #[test]
    fn a_single_point_or_a_flat_series_sits_in_the_middle() {
        let scale = Scale::of(&[(100, 7.0)]).unwrap();
        assert_eq!(scale.place(&FRAME, 100, 7.0), (60.0, 45.0));
        assert!(Scale::of(&[]).is_none());
    }

    #[test]
    fn downsampling_keeps_at_most_max_points_in_time_order_with_every_extreme() {
        let mut points: Vec<(i64, f64)> = (0..10_000).map(|i| (i, (i % 7) as f64)).collect();
        points[4_321].1 = 1_000.0;
        points[8_765].1 = -50.0;
        let kept = downsample(&points, MAX_POINTS);
        assert!(kept.len() <= MAX_POINTS && kept.len() > MAX_POINTS / 2);
        assert!(kept.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(kept.contains(&(4_321, 1_000.0)));
        assert!(kept.contains(&(8_765, -50.0)));
        assert_eq!(downsample(&points[..100], MAX_POINTS), points[..100]);
    }

    #[test]
    fn a_chart_draws_one_polyline_point_per_kept_point_with_min_max_and_date_labels() {
        let day = 1_773_100_800; // 2026-03-10
        let points: Vec<(i64, f64)> = (0..20).map(|d| (day + d * 86_400, d as f64)).collect();
        let svg = line_chart("VMs", &points);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let polyline = svg.split("points=\"").nth(1).unwrap();
        let coords = polyline.split('"').next().unwrap();
        assert_eq!(coords.split(' ').count(), 20);
        assert!(svg.contains(">19</text>") && svg.contains(">0</text>"));
        assert!(svg.contains(">2026-03-10</text>") && svg.contains(">2026-03-29</text>"));
        assert!(line_chart("VMs", &[]).contains("no data"));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = line_chart("<script>alert('x')</script> & co", &[(0, 1.0)]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(!sparkline("\"><script>", &[(0, 1.0)]).contains("\"><script>"));
    }
}
