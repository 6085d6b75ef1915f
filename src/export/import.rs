//! What the importer does to each line of a bundle (pure): move its timestamps
//! (`--shift-to-now`, `--shift-ms`), leave out samples older than the target keeps, and add
//! the line to the per-series sums that the verification compares with what the target
//! answers afterwards.
//!
//! A series' sums are its sample count and a wrapping sum of a 64-bit mix of each (timestamp,
//! value bits): order-independent, so the target may answer in any order, and exact — one
//! changed, missing or doubled sample changes them.

use super::line::{self, Labels, series_hash};
use std::collections::HashMap;

/// What happens to each sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transform {
    /// Added to every timestamp (ms).
    pub shift_ms: i64,
    /// Samples before this time (ms, after the shift) are left out.
    pub cutoff_ms: Option<i64>,
}

impl Transform {
    fn is_identity(&self) -> bool {
        self.shift_ms == 0 && self.cutoff_ms.is_none()
    }
}

/// One series' samples, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub samples: u64,
    pub mix: u64,
}

impl Sums {
    fn add(&mut self, timestamp: i64, value_bits: u64) {
        self.samples += 1;
        self.mix = self.mix.wrapping_add(mix(timestamp as u64, value_bits));
    }
}

/// splitmix64 of the timestamp, mixed again with the value bits.
fn mix(timestamp: u64, value_bits: u64) -> u64 {
    let mut z = timestamp
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= value_bits.rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sums per series, with each series' labels for messages.
#[derive(Debug, Default)]
pub struct Ledger {
    pub series: HashMap<u64, (String, Sums)>,
}

impl Ledger {
    pub fn samples(&self) -> u64 {
        self.series.values().map(|(_, s)| s.samples).sum()
    }

    /// Adds the samples of one export line (as stored: after any transform), identified by
    /// its labels with `extra_labels` applied (they replace labels of the same name, as
    /// VictoriaMetrics' `extra_label` does).
    pub fn add_line(
        &mut self,
        text: &[u8],
        extra_labels: &[(String, String)],
    ) -> Result<u64, String> {
        let sample = Sample::parse(text)?;
        let mut labels = sample.labels;
        for (name, value) in extra_labels {
            match labels.iter_mut().find(|(n, _)| n == name) {
                Some(pair) => pair.1.clone_from(value),
                None => labels.push((name.clone(), value.clone())),
            }
        }
        let entry = self
            .series
            .entry(series_hash(&labels))
            .or_insert_with(|| (describe(&labels), Sums::default()));
        for (timestamp, value) in sample.timestamps.iter().zip(&sample.values) {
            entry.1.add(*timestamp, value.to_bits());
        }
        Ok(sample.timestamps.len() as u64)
    }
}

/// Differences between what was sent and what the target holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Series sent that the target does not have.
    pub missing_series: Vec<String>,
    /// Series whose samples differ: (labels, samples sent, samples found).
    pub different: Vec<(String, u64, u64)>,
    /// Series the target has under the same names that were not sent (unrelated data).
    pub unrelated_series: u64,
    pub matching_series: u64,
}

impl Comparison {
    pub fn is_exact(&self) -> bool {
        self.missing_series.is_empty() && self.different.is_empty()
    }
}

/// Compares what was sent with what was found; `exact` compares each series' samples, else
/// only their numbers.
pub fn compare(sent: &Ledger, found: &Ledger, exact: bool) -> Comparison {
    let mut comparison = Comparison::default();
    for (hash, (labels, sums)) in &sent.series {
        match found.series.get(hash) {
            None => comparison.missing_series.push(labels.clone()),
            Some((_, got)) if got.samples != sums.samples || (exact && got.mix != sums.mix) => {
                comparison
                    .different
                    .push((labels.clone(), sums.samples, got.samples));
            }
            Some(_) => comparison.matching_series += 1,
        }
    }
    comparison.unrelated_series = found
        .series
        .keys()
        .filter(|hash| !sent.series.contains_key(hash))
        .count() as u64;
    comparison.missing_series.sort();
    comparison.different.sort();
    comparison
}

/// A line's labels and samples, parsed.
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

impl Sample {
    pub fn parse(text: &[u8]) -> Result<Sample, String> {
        let fields = line::Fields::scan(text)?;
        let Labels(labels) =
            serde_json::from_slice(fields.metric).map_err(|e| format!("invalid metric: {e}"))?;
        let timestamps = tokens(fields.timestamps)
            .map(|t| {
                t.parse::<i64>()
                    .map_err(|_| format!("invalid timestamp {t:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let values = tokens(fields.values)
            .map(|v| value(v).ok_or_else(|| format!("invalid value {v:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        if timestamps.len() != values.len() {
            return Err(format!(
                "{} values but {} timestamps",
                values.len(),
                timestamps.len()
            ));
        }
        Ok(Sample {
            labels,
            timestamps,
            values,
        })
    }
}

/// The elements of a number array, as text.
fn tokens(array: &[u8]) -> impl Iterator<Item = &str> {
    let inner = std::str::from_utf8(&array[1..array.len() - 1]).unwrap_or_default();
    inner.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// A value as VictoriaMetrics writes it: a JSON number or a bare `+Inf`, `-Inf`, `NaN`.
fn value(token: &str) -> Option<f64> {
    let token = token.trim_matches('"');
    match token {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        number => number.parse().ok(),
    }
}

/// Labels as a selector-like text for messages: `{__name__="up",job="node"}`.
pub fn describe(labels: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = labels.iter().collect();
    sorted.sort();
    let inner: Vec<String> = sorted
        .iter()
        .map(|(n, v)| format!("{n}={}", serde_json::to_string(v).unwrap_or_default()))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Applies a [`Transform`] line by line, reusing its buffer.
#[derive(Debug, Default)]
pub struct Transformer {
    transform: Transform,
    /// The kept timestamps of the line being written.
    timestamps: Vec<u8>,
}

impl Transformer {
    pub fn new(transform: Transform) -> Transformer {
        Transformer {
            transform,
            timestamps: Vec::new(),
        }
    }

    /// One line after the transform appended to `out` (newline included; nothing when every
    /// sample was cut off); returns the samples kept and dropped. Without a shift or cutoff
    /// the line is copied as it is.
    pub fn line(&mut self, text: &[u8], out: &mut Vec<u8>) -> Result<(u64, u64), String> {
        let fields = line::Fields::scan(text)?;
        let timestamps = line::inner(fields.timestamps);
        if self.transform.is_identity() {
            out.extend_from_slice(text);
            out.push(b'\n');
            return Ok((line::count_numbers(timestamps), 0));
        }
        let values = line::inner(fields.values);
        if memchr::memchr(b'"', values).is_some() {
            return Err("string values cannot be moved".into());
        }
        let start = out.len();
        out.extend_from_slice(b"{\"metric\":");
        out.extend_from_slice(fields.metric);
        out.extend_from_slice(b",\"values\":[");
        self.timestamps.clear();
        let (mut kept, mut dropped) = (0u64, 0u64);
        let mut values = split(values);
        let mut buffer = itoa::Buffer::new();
        for timestamp in split(timestamps) {
            let value = values
                .next()
                .ok_or_else(|| "more timestamps than values".to_string())?;
            let moved = std::str::from_utf8(timestamp)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    format!("invalid timestamp {:?}", String::from_utf8_lossy(timestamp))
                })?
                .saturating_add(self.transform.shift_ms);
            if self
                .transform
                .cutoff_ms
                .is_some_and(|cutoff| moved < cutoff)
            {
                dropped += 1;
                continue;
            }
            if kept > 0 {
                out.push(b',');
                self.timestamps.push(b',');
            }
            out.extend_from_slice(value);
            self.timestamps
                .extend_from_slice(buffer.format(moved).as_bytes());
            kept += 1;
        }
        if values.next().is_some() {
            return Err("more values than timestamps".into());
        }
        if kept == 0 {
            out.truncate(start);
            return Ok((0, dropped));
        }
        out.extend_from_slice(b"],\"timestamps\":[");
        out.extend_from_slice(&self.timestamps);
        out.extend_from_slice(b"]}\n");
        Ok((kept, dropped))
    }
}

/// The comma-separated elements of an array's contents (numbers: no strings inside).
fn split(inner: &[u8]) -> impl Iterator<Item = &[u8]> {
    let empty = inner.iter().all(u8::is_ascii_whitespace);
    inner.split(|b| *b == b',').filter(move |_| !empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transform_line(
        text: &[u8],
        transform: Transform,
        out: &mut Vec<u8>,
    ) -> Result<(u64, u64), String> {
        Transformer::new(transform).line(text, out)
    }

    const LINE: &[u8] = br#"{"metric":{"__name__":"up","job":"node"},"values":[1,1.5,+Inf],"timestamps":[1000,2000,3000]}"#;

    #[test]
    fn without_a_transform_the_line_is_sent_as_it_is() {
        let mut out = Vec::new();
        assert_eq!(
            transform_line(LINE, Transform::default(), &mut out),
            Ok((3, 0))
        );
        assert_eq!(out, [LINE, b"\n"].concat());
    }

    #[test]
    fn a_shift_moves_every_timestamp_and_a_cutoff_drops_older_samples() {
        let mut out = Vec::new();
        let transform = Transform {
            shift_ms: 10_000,
            cutoff_ms: Some(12_000),
        };
        assert_eq!(transform_line(LINE, transform, &mut out), Ok((2, 1)));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"metric\":{\"__name__\":\"up\",\"job\":\"node\"},\"values\":[1.5,+Inf],\"timestamps\":[12000,13000]}\n"
        );
        let mut out = Vec::new();
        let all_old = Transform {
            shift_ms: 0,
            cutoff_ms: Some(10_000),
        };
        assert_eq!(transform_line(LINE, all_old, &mut out), Ok((0, 3)));
        assert!(out.is_empty());
    }

    #[test]
    fn the_ledger_sees_any_changed_missing_or_doubled_sample() {
        let mut sent = Ledger::default();
        sent.add_line(LINE, &[]).unwrap();
        let same_other_order = br#"{"metric":{"job":"node","__name__":"up"},"values":[+Inf,1,1.5],"timestamps":[3000,1000,2000]}"#;
        let mut found = Ledger::default();
        found.add_line(same_other_order, &[]).unwrap();
        assert!(compare(&sent, &found, true).is_exact());

        let changed = br#"{"metric":{"__name__":"up","job":"node"},"values":[1,1.25,+Inf],"timestamps":[1000,2000,3000]}"#;
        let mut found = Ledger::default();
        found.add_line(changed, &[]).unwrap();
        let comparison = compare(&sent, &found, true);
        assert_eq!(comparison.different.len(), 1);
        assert!(
            compare(&sent, &found, false).is_exact(),
            "counts alone agree"
        );

        let mut doubled = Ledger::default();
        doubled.add_line(LINE, &[]).unwrap();
        doubled.add_line(LINE, &[]).unwrap();
        assert_eq!(
            compare(&sent, &doubled, false).different,
            vec![("{__name__=\"up\",job=\"node\"}".to_string(), 3, 6)]
        );

        let comparison = compare(&sent, &Ledger::default(), true);
        assert_eq!(
            comparison.missing_series,
            vec!["{__name__=\"up\",job=\"node\"}".to_string()]
        );
    }

    #[test]
    fn extra_labels_are_part_of_a_series_identity() {
        let mut sent = Ledger::default();
        sent.add_line(LINE, &[("import".into(), "case-1".into())])
            .unwrap();
        let stored = br#"{"metric":{"__name__":"up","job":"node","import":"case-1"},"values":[1,1.5,+Inf],"timestamps":[1000,2000,3000]}"#;
        let mut found = Ledger::default();
        found.add_line(stored, &[]).unwrap();
        assert!(compare(&sent, &found, true).is_exact());
        assert_eq!(sent.samples(), 3);
    }
}
