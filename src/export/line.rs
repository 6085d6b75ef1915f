//! The export line format, one series per line (VictoriaMetrics' `/api/v1/export` and
//! `/api/v1/import`): `{"metric":{…},"values":[…],"timestamps":[…]}`. Pure and streaming.
//!
//! A line is rewritten without touching its samples: the `metric` object is parsed, its labels
//! obfuscated or dropped, and the `values` and `timestamps` arrays are copied byte for byte —
//! so every value round-trips exactly, bare `+Inf`/`-Inf` included (VictoriaMetrics writes them
//! though they are not JSON). Samples are counted from the timestamps array.
//!
//! `query_range` answers (`{"status":"success","data":{"result":[…]}}`) are turned into the
//! same lines series by series, as they are read: `NaN` points are skipped and counted, as
//! `/api/v1/import` would refuse the whole line.

use super::obfuscate::Obfuscator;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;

/// The longest line accepted: VictoriaMetrics is asked for at most [`MAX_ROWS_PER_LINE`]
/// samples a line, so real lines stay far below it.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;
/// `max_rows_per_line` sent with every export request: bounds a line's size, and so memory.
pub const MAX_ROWS_PER_LINE: u32 = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("line {line}: {problem}")]
    Malformed { line: u64, problem: String },
    #[error("line {line} is longer than {MAX_LINE_BYTES} bytes")]
    TooLong { line: u64 },
    #[error("the query_range answer is not valid: {0}")]
    QueryRangeAnswer(String),
    #[error("the source refused the query: {error_type}: {error}")]
    QueryRefused { error_type: String, error: String },
    #[error("failed to read the answer: {0}")]
    Read(#[from] std::io::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Malformed { .. } | Error::TooLong { .. } | Error::QueryRangeAnswer(_) => {
                "MalformedAnswer"
            }
            Error::QueryRefused { .. } => "QueryRefused",
            Error::Read(_) => "ReadFailed",
        }
    }
}

/// What one window's lines held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub lines: u64,
    pub samples: u64,
    /// `NaN` points of a `query_range` answer, left out.
    pub skipped: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// Samples per metric name.
    pub per_metric: BTreeMap<String, u64>,
    /// The distinct series (hash of the written labels → metric name).
    pub series: HashMap<u64, String>,
}

impl Tally {
    /// Adds the tally of another part of the same window.
    pub fn merge(&mut self, other: Tally) {
        self.lines += other.lines;
        self.samples += other.samples;
        self.skipped += other.skipped;
        self.first_ms = min_some(self.first_ms, other.first_ms);
        self.last_ms = match (self.last_ms, other.last_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (metric, samples) in other.per_metric {
            *self.per_metric.entry(metric).or_default() += samples;
        }
        for (series, metric) in other.series {
            self.series.entry(series).or_insert(metric);
        }
    }

    fn add(&mut self, line: Line) {
        self.lines += 1;
        self.samples += line.samples;
        if line.samples > 0 {
            self.first_ms = Some(
                self.first_ms
                    .map_or(line.first_ms, |t| t.min(line.first_ms)),
            );
            self.last_ms = Some(self.last_ms.map_or(line.last_ms, |t| t.max(line.last_ms)));
        }
        *self.per_metric.entry(line.metric.clone()).or_default() += line.samples;
        self.series.entry(line.series).or_insert(line.metric);
    }
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One rewritten line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    series: u64,
    metric: String,
    samples: u64,
    first_ms: i64,
    last_ms: i64,
}

/// Rewrites export lines as they stream in, in chunks cut anywhere.
pub struct Rewriter<'a> {
    obfuscator: &'a mut Obfuscator,
    /// The start of a line whose end is in a later chunk.
    carry: Vec<u8>,
    tally: Tally,
}

impl<'a> Rewriter<'a> {
    pub fn new(obfuscator: &'a mut Obfuscator) -> Rewriter<'a> {
        Rewriter {
            obfuscator,
            carry: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// Rewrites the complete lines of `chunk` (with what earlier chunks left) into `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&rest[..end]);
                    self.line(&line, out)?;
                    rest = &rest[end + 1..];
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    return self.check_carry();
                }
            }
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.line(&rest[..end], out)?;
            rest = &rest[end + 1..];
        }
        self.carry.extend_from_slice(rest);
        self.check_carry()
    }

    /// Rewrites a last line without a newline, and returns the tally.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Tally, Error> {
        let line = std::mem::take(&mut self.carry);
        self.line(&line, out)?;
        Ok(self.tally)
    }

    fn check_carry(&self) -> Result<(), Error> {
        if self.carry.len() > MAX_LINE_BYTES {
            return Err(Error::TooLong {
                line: self.tally.lines + 1,
            });
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let number = self.tally.lines + 1;
        let rewritten =
            rewrite(line, self.obfuscator, out).map_err(|problem| Error::Malformed {
                line: number,
                problem,
            })?;
        self.tally.add(rewritten);
        Ok(())
    }
}

/// Rewrites one line (without its newline) into `out`, newline included.
fn rewrite(line: &[u8], obfuscator: &mut Obfuscator, out: &mut Vec<u8>) -> Result<Line, String> {
    let fields = Fields::scan(line)?;
    let Labels(mut labels) =
        serde_json::from_slice(fields.metric).map_err(|e| format!("invalid metric: {e}"))?;
    obfuscator.apply(&mut labels);
    let timestamps = inner(fields.timestamps);
    let samples = count_numbers(timestamps);
    let values = count_values(inner(fields.values))?;
    if values != samples {
        return Err(format!("{values} values but {samples} timestamps"));
    }
    let (first_ms, last_ms) = if samples == 0 {
        (0, 0)
    } else {
        (first_number(timestamps)?, last_number(timestamps)?)
    };
    let metric = labels
        .iter()
        .find(|(name, _)| name == "__name__")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    out.extend_from_slice(b"{\"metric\":{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(out, name);
        out.push(b':');
        json_string(out, value);
    }
    out.extend_from_slice(b"},\"values\":");
    out.extend_from_slice(fields.values);
    out.extend_from_slice(b",\"timestamps\":");
    out.extend_from_slice(fields.timestamps);
    out.extend_from_slice(b"}\n");
    Ok(Line {
        series: series_hash(&labels),
        metric,
        samples,
        first_ms,
        last_ms,
    })
}

/// A stable 64-bit identity of a series: the first 8 bytes of SHA-256 over its labels sorted
/// by name (stable across processes, so a resumed run recognises series it has seen).
pub fn series_hash(labels: &[(String, String)]) -> u64 {
    let mut sorted: Vec<&(String, String)> = labels.iter().collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    for (name, value) in sorted {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The three fields of a line as raw byte spans (arrays with their brackets).
pub(crate) struct Fields<'a> {
    pub(crate) metric: &'a [u8],
    pub(crate) values: &'a [u8],
    pub(crate) timestamps: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(crate) fn scan(line: &'a [u8]) -> Result<Fields<'a>, String> {
        let mut pos = skip_ws(line, 0);
        if line.get(pos) != Some(&b'{') {
            return Err("a line must be a JSON object".into());
        }
        pos += 1;
        let (mut metric, mut values, mut timestamps) = (None, None, None);
        loop {
            pos = skip_ws(line, pos);
            if line.get(pos) == Some(&b'}') {
                break;
            }
            let (key, after) = string_span(line, pos)?;
            pos = skip_ws(line, after);
            if line.get(pos) != Some(&b':') {
                return Err(format!("expected `:` at byte {pos}"));
            }
            pos = skip_ws(line, pos + 1);
            let end = match key {
                b"\"metric\"" => {
                    let end = object_end(line, pos)?;
                    metric = Some(&line[pos..end]);
                    end
                }
                b"\"values\"" | b"\"timestamps\"" => {
                    let end = array_end(line, pos)?;
                    if key == b"\"values\"" {
                        values = Some(&line[pos..end]);
                    } else {
                        timestamps = Some(&line[pos..end]);
                    }
                    end
                }
                other => {
                    return Err(format!(
                        "unexpected field {}",
                        String::from_utf8_lossy(other)
                    ));
                }
            };
            pos = skip_ws(line, end);
            match line.get(pos) {
                Some(b',') => pos += 1,
                Some(b'}') => break,
                _ => return Err(format!("expected `,` or `}}` at byte {pos}")),
            }
        }
        if !line[pos + 1..].iter().all(u8::is_ascii_whitespace) {
            return Err("text after the object".into());
        }
        match (metric, values, timestamps) {
            (Some(metric), Some(values), Some(timestamps)) => Ok(Fields {
                metric,
                values,
                timestamps,
            }),
            _ => Err("a line needs metric, values and timestamps".into()),
        }
    }
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    pos
}

/// The span of the JSON string starting at `pos` (quotes included) and the position after it.
fn string_span(bytes: &[u8], pos: usize) -> Result<(&[u8], usize), String> {
    let end = string_end(bytes, pos)?;
    Ok((&bytes[pos..end], end))
}

/// The position after the JSON string that starts at `pos`.
fn string_end(bytes: &[u8], pos: usize) -> Result<usize, String> {
    if bytes.get(pos) != Some(&b'"') {
        return Err(format!("expected a string at byte {pos}"));
    }
    let mut i = pos + 1;
    // `get`: an escape as the line's last byte steps past its end.
    while let Some(found) = memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) {
        i += found;
        if bytes[i] == b'\\' {
            i += 2;
        } else {
            return Ok(i + 1);
        }
    }
    Err("an unterminated string".into())
}

/// The position after the object starting at `pos` (label values are strings: no nesting).
fn object_end(bytes: &[u8], pos: usize) -> Result<usize, String> {
    closing(bytes, pos, b'{', b'}')
}

/// The position after the array starting at `pos` (numbers, bare `+Inf`/`NaN` or strings).
fn array_end(bytes: &[u8], pos: usize) -> Result<usize, String> {
    closing(bytes, pos, b'[', b']')
}

fn closing(bytes: &[u8], pos: usize, open: u8, close: u8) -> Result<usize, String> {
    if bytes.get(pos) != Some(&open) {
        return Err(format!("expected `{}` at byte {pos}", open as char));
    }
    let mut i = pos + 1;
    while let Some(found) = memchr::memchr3(close, b'"', open, &bytes[i..]) {
        i += found;
        match bytes[i] {
            b'"' => i = string_end(bytes, i)?,
            c if c == close => return Ok(i + 1),
            _ => return Err(format!("unexpected nesting at byte {i}")),
        }
    }
    Err(format!("`{}` without `{}`", open as char, close as char))
}

/// An array's contents without its brackets.
pub(crate) fn inner(array: &[u8]) -> &[u8] {
    &array[1..array.len() - 1]
}

/// Elements of an array of numbers (no strings inside).
pub(crate) fn count_numbers(inner: &[u8]) -> u64 {
    if inner.iter().all(u8::is_ascii_whitespace) {
        0
    } else {
        memchr::memchr_iter(b',', inner).count() as u64 + 1
    }
}

/// Elements of the values array, which may hold strings (with commas inside).
fn count_values(inner: &[u8]) -> Result<u64, String> {
    if memchr::memchr(b'"', inner).is_none() {
        return Ok(count_numbers(inner));
    }
    let (mut count, mut i) = (1, 0);
    while i < inner.len() {
        match inner[i] {
            b'"' => i = string_end(inner, i)?,
            b',' => {
                count += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(count)
}

fn number(text: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| format!("invalid timestamp {:?}", String::from_utf8_lossy(text)))
}

fn first_number(inner: &[u8]) -> Result<i64, String> {
    number(&inner[..memchr::memchr(b',', inner).unwrap_or(inner.len())])
}

fn last_number(inner: &[u8]) -> Result<i64, String> {
    number(&inner[memchr::memrchr(b',', inner).map_or(0, |i| i + 1)..])
}

/// Appends `text` as a JSON string.
fn json_string(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing a String into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Label pairs in the order the line has them.
pub struct Labels(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of label names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut labels = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    labels.push(pair);
                }
                Ok(Labels(labels))
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
}

/// Reads a `query_range` answer from `reader` series by series, writing each as an export
/// line (rewritten as [`Rewriter`] does) into `out`; `flush` is called after each series so
/// the caller can pass the bytes on. Memory holds one series (at most
/// [`super::windows::MAX_POINTS`] points) at a time.
pub fn query_range<R: Read>(
    reader: R,
    obfuscator: &mut Obfuscator,
    out: &mut Vec<u8>,
    mut flush: impl FnMut(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<Tally, Error> {
    let mut state = QueryState {
        obfuscator,
        out,
        flush: &mut flush,
        tally: Tally::default(),
        line: Vec::new(),
        failure: None,
    };
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let answer = AnswerSeed { state: &mut state }.deserialize(&mut deserializer);
    if let Some(failure) = state.failure.take() {
        return Err(failure);
    }
    let answer = answer.map_err(|e| {
        if e.is_io() {
            Error::Read(std::io::Error::other(e.to_string()))
        } else {
            Error::QueryRangeAnswer(e.to_string())
        }
    })?;
    if answer.status != "success" {
        return Err(Error::QueryRefused {
            error_type: answer.error_type.unwrap_or_else(|| "unknown".into()),
            error: answer.error.unwrap_or_else(|| answer.status.clone()),
        });
    }
    Ok(state.tally)
}

struct QueryState<'a, 'o, F> {
    obfuscator: &'o mut Obfuscator,
    out: &'a mut Vec<u8>,
    flush: &'a mut F,
    tally: Tally,
    /// The export line of the series being converted.
    line: Vec<u8>,
    /// An error of ours inside the deserializer, reported as such.
    failure: Option<Error>,
}

impl<F: FnMut(&mut Vec<u8>) -> Result<(), Error>> QueryState<'_, '_, F> {
    fn series(&mut self, metric: Labels, points: Vec<(f64, String)>) -> Result<(), Error> {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"metric\":");
        let metric_json = serde_json::to_vec(&metric.0.iter().cloned().collect::<BTreeMap<_, _>>())
            .map_err(|e| Error::QueryRangeAnswer(e.to_string()))?;
        line.extend_from_slice(&metric_json);
        let mut values = Vec::with_capacity(points.len() * 8);
        let mut timestamps = Vec::with_capacity(points.len() * 14);
        let mut kept = 0u64;
        for (t, value) in &points {
            let Some(token) = value_token(value) else {
                self.tally.skipped += 1;
                continue;
            };
            if kept > 0 {
                values.push(b',');
                timestamps.push(b',');
            }
            values.extend_from_slice(token.as_bytes());
            timestamps.extend_from_slice(((t * 1000.0).round() as i64).to_string().as_bytes());
            kept += 1;
        }
        if kept == 0 {
            return Ok(());
        }
        line.extend_from_slice(b",\"values\":[");
        line.extend_from_slice(&values);
        line.extend_from_slice(b"],\"timestamps\":[");
        line.extend_from_slice(&timestamps);
        line.extend_from_slice(b"]}");
        let rewritten =
            rewrite(line, self.obfuscator, self.out).map_err(|problem| Error::Malformed {
                line: self.tally.lines + 1,
                problem,
            })?;
        self.tally.add(rewritten);
        (self.flush)(self.out)
    }
}

/// A `query_range` value as an export value token; `None` for `NaN` (skipped).
fn value_token(value: &str) -> Option<&str> {
    match value {
        "NaN" => None,
        "+Inf" | "Inf" => Some("+Inf"),
        "-Inf" => Some("-Inf"),
        // A number as the server wrote it: its exact digits. Anything else is not a value.
        v if v.parse::<f64>().is_ok_and(f64::is_finite) => Some(v),
        _ => None,
    }
}

#[derive(Default)]
struct Answer {
    status: String,
    error_type: Option<String>,
    error: Option<String>,
}

struct AnswerSeed<'s, 'a, 'o, F> {
    state: &'s mut QueryState<'a, 'o, F>,
}

impl<'de, F: FnMut(&mut Vec<u8>) -> Result<(), Error>> DeserializeSeed<'de>
    for AnswerSeed<'_, '_, '_, F>
{
    type Value = Answer;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Answer, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(&mut Vec<u8>) -> Result<(), Error>> Visitor<'de> for AnswerSeed<'_, '_, '_, F> {
    type Value = Answer;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a query_range answer object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Answer, A::Error> {
        let mut answer = Answer::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => answer.status = map.next_value()?,
                "errorType" => answer.error_type = map.next_value()?,
                "error" => answer.error = map.next_value()?,
                "data" => map.next_value_seed(DataSeed {
                    state: &mut *self.state,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(answer)
    }
}

struct DataSeed<'s, 'a, 'o, F> {
    state: &'s mut QueryState<'a, 'o, F>,
}

impl<'de, F: FnMut(&mut Vec<u8>) -> Result<(), Error>> DeserializeSeed<'de>
    for DataSeed<'_, '_, '_, F>
{
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(&mut Vec<u8>) -> Result<(), Error>> Visitor<'de> for DataSeed<'_, '_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the data of a query_range answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resultType" => {
                    let kind: String = map.next_value()?;
                    if kind != "matrix" {
                        return Err(de::Error::custom(format!(
                            "resultType {kind:?}, expected matrix"
                        )));
                    }
                }
                "result" => map.next_value_seed(ResultSeed {
                    state: &mut *self.state,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ResultSeed<'s, 'a, 'o, F> {
    state: &'s mut QueryState<'a, 'o, F>,
}

impl<'de, F: FnMut(&mut Vec<u8>) -> Result<(), Error>> DeserializeSeed<'de>
    for ResultSeed<'_, '_, '_, F>
{
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(&mut Vec<u8>) -> Result<(), Error>> Visitor<'de> for ResultSeed<'_, '_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of series")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        #[derive(Deserialize)]
        struct Series {
            metric: Labels,
            #[serde(default)]
            values: Vec<(f64, String)>,
        }
        while let Some(series) = seq.next_element::<Series>()? {
            if let Err(e) = self.state.series(series.metric, series.values) {
                let message = e.to_string();
                self.state.failure = Some(e);
                return Err(de::Error::custom(message));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::obfuscate::{Key, Settings};

    fn plain() -> Obfuscator {
        Obfuscator::new(None, Settings::default()).unwrap()
    }

    fn keyed() -> Obfuscator {
        let settings = Settings {
            ips: true,
            jobs: true,
            ..Settings::default()
        };
        Obfuscator::new(
            Some(Key::from_text("0123456789abcdef0123").unwrap()),
            settings,
        )
        .unwrap()
    }

    const LINES: &str = concat!(
        r#"{"metric":{"__name__":"up","job":"node","instance":"10.0.0.1:9100"},"values":[1,1.5,+Inf],"timestamps":[1700000000000,1700000015000,1700000030000]}"#,
        "\n",
        r#"{"metric":{"__name__":"temp","instance":"host-a:9100"},"values":[0.25,-Inf],"timestamps":[1700000000000,1700000015000]}"#,
        "\n",
    );

    fn rewrite_all(input: &[u8], obfuscator: &mut Obfuscator, chunk: usize) -> (String, Tally) {
        let mut rewriter = Rewriter::new(obfuscator);
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            rewriter.feed(piece, &mut out).unwrap();
        }
        let tally = rewriter.finish(&mut out).unwrap();
        (String::from_utf8(out).unwrap(), tally)
    }

    #[test]
    fn lines_without_obfuscation_come_out_byte_for_byte() {
        for chunk in [1, 7, 64, 4096] {
            let (out, tally) = rewrite_all(LINES.as_bytes(), &mut plain(), chunk);
            assert_eq!(out, LINES, "chunk {chunk}");
            assert_eq!(tally.lines, 2);
            assert_eq!(tally.samples, 5);
            assert_eq!(tally.first_ms, Some(1_700_000_000_000));
            assert_eq!(tally.last_ms, Some(1_700_000_030_000));
            assert_eq!(tally.series.len(), 2);
            assert_eq!(tally.per_metric["up"], 3);
        }
    }

    #[test]
    fn obfuscation_changes_labels_but_never_samples_or_the_metric_name() {
        let (out, tally) = rewrite_all(LINES.as_bytes(), &mut keyed(), 13);
        assert!(!out.contains("10.0.0.1") && !out.contains("host-a") && !out.contains("\"node\""));
        assert!(out.contains(
            r#""values":[1,1.5,+Inf],"timestamps":[1700000000000,1700000015000,1700000030000]"#
        ));
        assert!(out.contains(r#""__name__":"up""#));
        assert!(out.contains(":9100\""), "{out}");
        assert_eq!(tally.samples, 5);
    }

    #[test]
    fn a_last_line_without_newline_and_blank_lines_are_handled() {
        let input = format!(
            "\n{}\n\n{}",
            LINES.lines().next().unwrap(),
            LINES.lines().nth(1).unwrap()
        );
        let (out, tally) = rewrite_all(input.as_bytes(), &mut plain(), 5);
        assert_eq!(out, LINES);
        assert_eq!(tally.lines, 2);
    }

    #[test]
    fn escaped_label_values_survive() {
        let line = r#"{"metric":{"__name__":"m","path":"a\"b\\c\u00e9,}{"},"values":["1",2],"timestamps":[1,2]}"#;
        let (out, tally) = rewrite_all(format!("{line}\n").as_bytes(), &mut plain(), 3);
        assert_eq!(tally.samples, 2);
        let back: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(back["metric"]["path"], "a\"b\\cé,}{");
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        for (bad, problem) in [
            ("[1,2]", "JSON object"),
            (
                r#"{"metric":{},"values":[1,2],"timestamps":[1]}"#,
                "2 values but 1 timestamps",
            ),
            (
                r#"{"metric":{},"values":[1]}"#,
                "needs metric, values and timestamps",
            ),
            (
                r#"{"metric":{},"values":[1],"timestamps":[1],"x":1}"#,
                "unexpected field",
            ),
            (
                r#"{"metric":{"a":1},"values":[1],"timestamps":[1]}"#,
                "invalid metric",
            ),
            (
                r#"{"metric":{},"values":[1],"timestamps":[x]}"#,
                "invalid timestamp",
            ),
            (
                r#"{"metric":{},"values":[1],"timestamps":[1]} x"#,
                "text after",
            ),
            (r#"{"metric":{"a":"x\"#, "unterminated string"),
        ] {
            let mut obfuscator = plain();
            let mut rewriter = Rewriter::new(&mut obfuscator);
            let mut out = Vec::new();
            let input = format!("{}\n{bad}\n", LINES.lines().next().unwrap());
            let err = rewriter.feed(input.as_bytes(), &mut out).unwrap_err();
            assert!(err.to_string().starts_with("line 2: "), "{err}");
            assert!(err.to_string().contains(problem), "{bad}: {err}");
        }
    }

    #[test]
    fn series_identity_ignores_label_order() {
        let a = vec![("a".to_string(), "1".to_string()), ("b".into(), "2".into())];
        let b = vec![("b".to_string(), "2".to_string()), ("a".into(), "1".into())];
        assert_eq!(series_hash(&a), series_hash(&b));
        assert_ne!(series_hash(&a), series_hash(&a[..1]));
    }

    #[test]
    fn a_query_range_answer_becomes_export_lines_without_nan() {
        let answer = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","job":"node"},"values":[[1700000000,"1"],[1700000015,"NaN"],[1700000030,"+Inf"],[1700000045.5,"0.25"]]},
            {"metric":{"__name__":"gone"},"values":[[1700000000,"NaN"]]}
        ]},"stats":{"seriesFetched":"2"}}"#;
        let mut out = Vec::new();
        let mut flushed = 0;
        let tally = query_range(answer.as_bytes(), &mut plain(), &mut out, |_| {
            flushed += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"metric\":{\"__name__\":\"up\",\"job\":\"node\"},\"values\":[1,+Inf,0.25],\"timestamps\":[1700000000000,1700000030000,1700000045500]}\n"
        );
        assert_eq!(
            (tally.samples, tally.skipped, tally.lines, flushed),
            (3, 2, 1, 1)
        );
    }

    #[test]
    fn a_refused_query_says_why() {
        let answer = r#"{"status":"error","errorType":"bad_data","error":"cannot parse query"}"#;
        let err =
            query_range(answer.as_bytes(), &mut plain(), &mut Vec::new(), |_| Ok(())).unwrap_err();
        assert_eq!(err.reason(), "QueryRefused");
        assert!(err.to_string().contains("cannot parse query"), "{err}");
        let err = query_range(&b"{\"status\":"[..], &mut plain(), &mut Vec::new(), |_| {
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.reason(), "MalformedAnswer");
    }
}
