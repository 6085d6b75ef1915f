//! Keyed, stable pseudonyms for the labels of exported series, so a MetricsExport bundle can
//! leave the site without host names, addresses, job names or other chosen label values. The
//! same value always gets the same pseudonym under the same key (across series, windows and
//! exports), so grouping and joins keep working; without the key nothing maps back.
//!
//! Scheme `vctp-obf-v1` (the bundle's metadata names it; any change needs a new version):
//! pseudonym = lowercase hex of HMAC-SHA256(key, `"vctp-obf-v1\0" + class + "\0" + value`),
//! truncated:
//!
//! | class          | value                                  | pseudonym             |
//! |----------------|----------------------------------------|-----------------------|
//! | `ip`           | a host that is an IPv4 or IPv6 address | `ip-<16 hex>.invalid` |
//! | `host`         | any other host name                    | `host-<16 hex>.invalid` |
//! | `job`          | a `job` label value                    | `job-<12 hex>`        |
//! | `label:<name>` | a value of the custom label `<name>`   | `<name>-<12 hex>`     |
//!
//! Addresses are hashed in their canonical text (IPv6 compressed as in RFC 5952, IPv4 octets
//! without leading zeros), so different spellings of one address agree; host names are hashed
//! as written. The key fingerprint is the first 8 hex of HMAC-SHA256(key, `"fingerprint"`).
//! `__name__`, sample values and timestamps are never changed, an empty value stays empty (it
//! means "no such label"), and a value already in its rule's pseudonym form is left alone, so
//! obfuscating twice changes nothing. Host pseudonyms end in `.invalid` (RFC 2606): they never
//! resolve.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

type HmacSha256 = Hmac<Sha256>;

const SCHEME: &str = "vctp-obf-v1";
/// The fewest key bytes accepted: 128 bits.
const MIN_KEY_BYTES: usize = 16;
/// Hex digits of host and address pseudonyms (64 bits: no collisions among a site's hosts).
const HOST_HEX: usize = 16;
/// Hex digits of job and custom-label pseudonyms.
const NAME_HEX: usize = 12;
/// Rewrites remembered before the cache starts over; bounds memory on high-cardinality labels.
const CACHE_LIMIT: usize = 1_000_000;
/// The metric name label, never obfuscated nor dropped.
const NAME_LABEL: &str = "__name__";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the obfuscation key is too short: {length} bytes, at least {MIN_KEY_BYTES} are needed; \
         create one with `openssl rand -hex 32`"
    )]
    KeyTooShort { length: usize },
    #[error(
        "an obfuscation key is required whenever anything is obfuscated; create one with \
         `openssl rand -hex 32` and keep it: the same key gives the same pseudonyms in every export"
    )]
    KeyRequired,
}

impl Error {
    /// A stable short name for metrics labels and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::KeyTooShort { .. } => "ObfuscationKeyTooShort",
            Error::KeyRequired => "ObfuscationKeyMissing",
        }
    }
}

/// The obfuscation key: secret bytes; Debug never shows them.
#[derive(Clone)]
pub struct Key(HmacSha256);

impl Key {
    /// From file or environment text: surrounding whitespace (a trailing newline) is trimmed and
    /// the remaining bytes are the key; at least 16 of them.
    pub fn from_text(text: &str) -> Result<Key, Error> {
        let bytes = text.trim().as_bytes();
        let too_short = Error::KeyTooShort {
            length: bytes.len(),
        };
        if bytes.len() < MIN_KEY_BYTES {
            return Err(too_short);
        }
        // HMAC takes keys of any length, so this error cannot happen.
        HmacSha256::new_from_slice(bytes)
            .map(Key)
            .map_err(|_| too_short)
    }

    /// The first 8 hex of HMAC-SHA256(key, "fingerprint"): tells keys apart without revealing them.
    pub fn fingerprint(&self) -> String {
        self.hex(&[b"fingerprint"], 8)
    }

    fn pseudonym(&self, class: &str, value: &str, digits: usize) -> String {
        let parts: [&[u8]; 5] = [
            SCHEME.as_bytes(),
            b"\0",
            class.as_bytes(),
            b"\0",
            value.as_bytes(),
        ];
        self.hex(&parts, digits)
    }

    fn hex(&self, parts: &[&[u8]], digits: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize()
            .into_bytes()
            .iter()
            .flat_map(|byte| [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]])
            .take(digits)
            .map(char::from)
            .collect()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// What is obfuscated (mirrors the MetricsExport spec's `obfuscation` block).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// The `instance` label's host: an address becomes `ip-…`, another host `host-…`; scheme,
    /// port and path are kept (addresses inside the path and query are replaced too).
    pub ips: bool,
    /// The `job` label.
    pub jobs: bool,
    /// Custom labels whose values become `<name>-<12 hex>`; `instance` and `job` listed here get
    /// their own rules above, so a value has one pseudonym whatever switched its label on.
    pub labels: Vec<String>,
    /// Labels removed entirely; wins over every other rule (never `__name__`).
    pub drop_labels: Vec<String>,
    /// IPv4 dotted quads, bracketed IPv6 and whole-value IPv6 inside any other label value
    /// (not `__name__`) become `ip-<16 hex>.invalid`; the rest of the text is kept.
    pub ips_in_any_label: bool,
}

impl Settings {
    /// Whether anything is obfuscated or dropped.
    pub fn is_active(&self) -> bool {
        self.needs_key() || !self.drop_labels.is_empty()
    }

    /// Whether anything is pseudonymised (dropping alone needs no key).
    pub fn needs_key(&self) -> bool {
        self.ips || self.jobs || !self.labels.is_empty() || self.ips_in_any_label
    }

    /// Whether the label `name` is removed from every series.
    pub fn drops(&self, name: &str) -> bool {
        name != NAME_LABEL && self.drop_labels.iter().any(|label| label == name)
    }

    fn rule(&self, name: &str) -> Option<Rule> {
        if name == NAME_LABEL {
            return None;
        }
        let chosen = match name {
            "instance" => self.ips,
            "job" => self.jobs,
            _ => false,
        } || self.labels.iter().any(|label| label == name);
        if chosen {
            Some(Rule::of(name))
        } else if self.ips_in_any_label {
            Some(Rule::IpsInText)
        } else {
            None
        }
    }
}

/// How one label's values are rewritten.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Instance,
    Job,
    Label,
    IpsInText,
}

impl Rule {
    /// The rule of a label chosen for obfuscation.
    fn of(name: &str) -> Rule {
        match name {
            "instance" => Rule::Instance,
            "job" => Rule::Job,
            _ => Rule::Label,
        }
    }

    /// The new value, None when unchanged.
    fn apply(self, key: &Key, name: &str, value: &str) -> Option<String> {
        if value.is_empty() {
            return None;
        }
        match self {
            Rule::Instance => instance(key, value),
            Rule::Job => named(key, "job", "job", value),
            Rule::Label => named(key, name, &format!("label:{name}"), value),
            Rule::IpsInText => ips_in_text(key, value),
        }
    }
}

/// Rewrites series labels under [`Settings`], remembering recent pseudonyms because each series
/// comes back once per export window.
pub struct Obfuscator {
    key: Option<Key>,
    settings: Settings,
    /// label name → value → rewritten value (None: unchanged).
    cache: HashMap<String, HashMap<String, Option<String>>>,
    cached: usize,
}

impl Obfuscator {
    /// Fails with [`Error::KeyRequired`] when the settings pseudonymise anything and there is no key.
    pub fn new(key: Option<Key>, settings: Settings) -> Result<Obfuscator, Error> {
        if settings.needs_key() && key.is_none() {
            return Err(Error::KeyRequired);
        }
        Ok(Obfuscator {
            key,
            settings,
            cache: HashMap::new(),
            cached: 0,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The key's fingerprint, for the bundle's metadata.
    pub fn fingerprint(&self) -> Option<String> {
        self.key.as_ref().map(Key::fingerprint)
    }

    /// Rewrites one series' labels in place (name, value pairs, already unescaped): drops, then
    /// pseudonymises; `__name__` is untouched and the remaining labels keep their order.
    pub fn apply(&mut self, labels: &mut Vec<(String, String)>) {
        labels.retain(|(name, _)| !self.settings.drops(name));
        for (name, value) in labels.iter_mut() {
            if let Some(new) = self.rewrite(name, value) {
                *value = new;
            }
        }
    }

    /// What `value` of label `name` becomes under these settings; None when unchanged (dropping
    /// is not considered: see [`Settings::drops`]).
    pub fn rewrite(&mut self, name: &str, value: &str) -> Option<String> {
        let rule = self.settings.rule(name)?;
        // `new` guarantees a key whenever a label has a rule.
        let key = self.key.as_ref()?;
        if let Some(known) = self.cache.get(name).and_then(|values| values.get(value)) {
            return known.clone();
        }
        let result = rule.apply(key, name, value);
        if self.cached >= CACHE_LIMIT {
            self.cache.clear();
            self.cached = 0;
        }
        self.cache
            .entry(name.to_owned())
            .or_default()
            .insert(value.to_owned(), result.clone());
        self.cached += 1;
        result
    }
}

/// For `vctp obfuscation lookup`: the pseudonym `value` of `label` gets when that label is
/// obfuscated: `instance` by the instance rule (address or host, scheme, port and path kept),
/// `job` by the job rule, any other label by the custom-label rule `<label>-<12 hex>`.
pub fn lookup(key: &Key, label: &str, value: &str) -> String {
    Rule::of(label)
        .apply(key, label, value)
        .unwrap_or_else(|| value.to_owned())
}

/// `<prefix>-<12 hex>` of `value` in `class`.
fn named(key: &Key, prefix: &str, class: &str, value: &str) -> Option<String> {
    let done = value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| is_hex(hex, NAME_HEX));
    (!done).then(|| format!("{prefix}-{}", key.pseudonym(class, value, NAME_HEX)))
}

/// An `instance` value: `[scheme://]host[:port][/path?query]`, the host pseudonymised and
/// addresses in the path and query too.
fn instance(key: &Key, value: &str) -> Option<String> {
    let (scheme, rest) = match value.find("://") {
        Some(at) if is_scheme(&value[..at]) => value.split_at(at + 3),
        _ => ("", value),
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let (host, port) = split_host_port(authority);
    let (new_host, new_tail) = (host_pseudonym(key, host), ips_in_text(key, tail));
    if new_host.is_none() && new_tail.is_none() {
        return None;
    }
    let authority = new_host.map_or_else(|| authority.to_owned(), |host| host + port);
    Some(format!(
        "{scheme}{authority}{}",
        new_tail.as_deref().unwrap_or(tail)
    ))
}

fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The host (without IPv6 brackets) and the `:port` (possibly empty) of an authority.
fn split_host_port(authority: &str) -> (&str, &str) {
    if let Some(inner) = authority.strip_prefix('[') {
        return match inner.split_once(']') {
            Some((host, after)) if after.is_empty() || is_port(after) => (host, after),
            _ => (authority, ""),
        };
    }
    if authority.parse::<Ipv6Addr>().is_ok() {
        return (authority, "");
    }
    match authority.rfind(':') {
        Some(at) if is_port(&authority[at..]) => authority.split_at(at),
        _ => (authority, ""),
    }
}

fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// `ip-…` or `host-…` for a host; None for an empty host or one that is a pseudonym already.
fn host_pseudonym(key: &Key, host: &str) -> Option<String> {
    let done = host
        .strip_suffix(".invalid")
        .and_then(|rest| rest.strip_prefix("ip-").or(rest.strip_prefix("host-")))
        .is_some_and(|hex| is_hex(hex, HOST_HEX));
    if host.is_empty() || done {
        return None;
    }
    Some(
        match parse_ipv4(host)
            .map(IpAddr::V4)
            .or_else(|| host.parse().ok())
        {
            Some(ip) => ip_pseudonym(key, ip),
            None => format!("host-{}.invalid", key.pseudonym("host", host, HOST_HEX)),
        },
    )
}

fn ip_pseudonym(key: &Key, ip: IpAddr) -> String {
    format!(
        "ip-{}.invalid",
        key.pseudonym("ip", &ip.to_string(), HOST_HEX)
    )
}

fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A dotted quad, each octet 0-255 in one to three digits.
fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// `value` with its dotted quads and bracketed IPv6 addresses pseudonymised, or a whole-value
/// IPv6 address; None when it holds none.
fn ips_in_text(key: &Key, value: &str) -> Option<String> {
    if let Ok(ip) = value.parse::<Ipv6Addr>() {
        return Some(ip_pseudonym(key, IpAddr::V6(ip)));
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while at < value.len() {
        let (found, next) = ip_at(value.as_bytes(), at);
        if let Some((start, end, ip)) = found {
            // Matches start and end at ASCII bytes, so these slices are on char boundaries.
            out.push_str(&value[copied..start]);
            out.push_str(&ip_pseudonym(key, ip));
            copied = end;
        }
        at = next;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&value[copied..]);
    Some(out)
}

/// The address whose text begins at `at` (its byte range), and where to look next.
fn ip_at(bytes: &[u8], at: usize) -> (Option<(usize, usize, IpAddr)>, usize) {
    let is_quad_byte = |b: u8| b.is_ascii_digit() || b == b'.';
    if bytes[at] == b'[' {
        // The longest IPv6 text is 45 bytes.
        let window = &bytes[at + 1..bytes.len().min(at + 48)];
        let Some(len) = window.iter().position(|&b| b == b']') else {
            return (None, at + 1);
        };
        let ip = std::str::from_utf8(&window[..len])
            .ok()
            .and_then(|inner| inner.parse::<Ipv6Addr>().ok());
        let end = at + len + 2;
        return match ip {
            Some(ip) => (Some((at, end, IpAddr::V6(ip))), end),
            None => (None, at + 1),
        };
    }
    if !is_quad_byte(bytes[at]) {
        return (None, at + 1);
    }
    // A whole run of digits and dots, so `1.2.3.4.5` and `10.0.0.1000` are no address; one dot
    // at either end may be punctuation (`at 10.0.0.1.`).
    let run_end = bytes[at..]
        .iter()
        .position(|&b| !is_quad_byte(b))
        .map_or(bytes.len(), |len| at + len);
    let start = at + usize::from(bytes[at] == b'.');
    let end = run_end - usize::from(run_end > start && bytes[run_end - 1] == b'.');
    let ip = std::str::from_utf8(&bytes[start..end])
        .ok()
        .and_then(parse_ipv4);
    (ip.map(|ip| (start, end, IpAddr::V4(ip))), run_end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn key() -> Key {
        Key::from_text(KEY).unwrap()
    }

    fn obfuscator(settings: Settings) -> Obfuscator {
        Obfuscator::new(Some(key()), settings).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn in_text(value: &str) -> String {
        let settings = Settings {
            ips_in_any_label: true,
            ..Settings::default()
        };
        obfuscator(settings)
            .rewrite("target", value)
            .unwrap_or_else(|| value.to_owned())
    }

    #[test]
    fn pseudonyms_match_the_documented_scheme() {
        // Expected values computed independently with Python's hmac module.
        let key = key();
        assert_eq!(key.fingerprint(), "1fb06d85");
        let fingerprint = obfuscator(Settings::default()).fingerprint();
        assert_eq!(fingerprint.as_deref(), Some("1fb06d85"));
        assert_eq!(
            lookup(&key, "instance", "10.0.0.1"),
            "ip-b017c606ed35a048.invalid"
        );
        assert_eq!(
            lookup(&key, "instance", "node-1.example.com"),
            "host-dff0a46e9fc1d2a3.invalid"
        );
        assert_eq!(lookup(&key, "job", "node"), "job-a26d773a7449");
        assert_eq!(lookup(&key, "pod", "web-0"), "pod-bd117a428365");
    }

    #[test]
    fn the_same_key_gives_the_same_pseudonym_and_another_key_shares_none() {
        let other = Key::from_text("another key of at least 16 bytes").unwrap();
        for (label, value) in [
            ("instance", "10.0.0.1:9100"),
            ("job", "node"),
            ("pod", "web-0"),
        ] {
            assert_eq!(lookup(&key(), label, value), lookup(&key(), label, value));
            assert_ne!(lookup(&key(), label, value), lookup(&other, label, value));
        }
        assert_ne!(key().fingerprint(), other.fingerprint());
    }

    #[test]
    fn every_instance_form_keeps_its_scheme_port_and_path() {
        let key = key();
        let ip = "ip-b017c606ed35a048.invalid";
        let v6 = "ip-bc804a7fbc7fedc9.invalid";
        let cases = [
            ("10.0.0.1:9100", format!("{ip}:9100")),
            ("10.0.0.1", ip.to_owned()),
            ("[2001:db8::1]:9100", format!("{v6}:9100")),
            ("2001:db8::1", v6.to_owned()),
            ("2001:0db8:0::1", v6.to_owned()),
            (
                "http://10.0.0.1:9100/metrics",
                format!("http://{ip}:9100/metrics"),
            ),
            (
                "10.0.0.1:9100/probe?target=10.0.0.1",
                format!("{ip}:9100/probe?target={ip}"),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(lookup(&key, "instance", value), expected, "{value}");
        }
        let host = "host-dff0a46e9fc1d2a3.invalid";
        assert_eq!(
            lookup(&key, "instance", "node-1.example.com:9100"),
            format!("{host}:9100")
        );
        let https = lookup(&key, "instance", "https://host.example.com/probe?x=1");
        assert!(https.starts_with("https://host-") && https.ends_with(".invalid/probe?x=1"));
        assert!(lookup(&key, "instance", "localhost").starts_with("host-"));
        // Not IPv6, not a port: the whole text is the host.
        let odd = lookup(&key, "instance", "node:metrics");
        assert!(odd.starts_with("host-") && !odd.contains(':'), "{odd}");
        assert_eq!(lookup(&key, "instance", ""), "");
    }

    #[test]
    fn pseudonyms_are_left_alone_when_obfuscated_again() {
        let key = key();
        for (label, value) in [("instance", "[::1]:9100"), ("instance", "db"), ("job", "x")] {
            let once = lookup(&key, label, value);
            assert_eq!(lookup(&key, label, &once), once);
        }
        let once = in_text("from 10.0.0.1 and [::1]");
        assert_eq!(in_text(&once), once);
    }

    #[test]
    fn a_dropped_label_is_removed_whatever_else_applies_and_order_is_kept() {
        let mut obfuscator = obfuscator(Settings {
            ips: true,
            jobs: true,
            labels: vec!["pod".into()],
            drop_labels: vec!["pod".into(), "__name__".into()],
            ..Settings::default()
        });
        let mut series = labels(&[
            ("__name__", "up"),
            ("pod", "web-0"),
            ("job", "node"),
            ("zone", "a"),
            ("instance", "10.0.0.1:9100"),
        ]);
        obfuscator.apply(&mut series);
        let expected = labels(&[
            ("__name__", "up"),
            ("job", "job-a26d773a7449"),
            ("zone", "a"),
            ("instance", "ip-b017c606ed35a048.invalid:9100"),
        ]);
        assert_eq!(series, expected);
    }

    #[test]
    fn the_metric_name_is_never_rewritten() {
        let mut obfuscator = obfuscator(Settings {
            labels: vec!["__name__".into()],
            ips_in_any_label: true,
            ..Settings::default()
        });
        assert_eq!(obfuscator.rewrite("__name__", "ip_10.0.0.1"), None);
    }

    #[test]
    fn listing_instance_or_job_as_custom_labels_uses_their_own_rules() {
        let mut obfuscator = obfuscator(Settings {
            labels: vec!["instance".into(), "job".into()],
            ..Settings::default()
        });
        let key = key();
        // Twice: the second answer comes from the cache.
        for (label, value) in [
            ("instance", "10.0.0.1:9100"),
            ("job", "node"),
            ("job", "node"),
        ] {
            assert_eq!(
                obfuscator.rewrite(label, value),
                Some(lookup(&key, label, value))
            );
        }
        assert_eq!(obfuscator.rewrite("zone", "a"), None);
    }

    #[test]
    fn ips_in_any_label_replace_only_real_addresses_and_keep_the_text() {
        let ip = "ip-b017c606ed35a048.invalid";
        let v6 = "ip-bc804a7fbc7fedc9.invalid";
        assert_eq!(in_text("from 10.0.0.1 to x"), format!("from {ip} to x"));
        assert_eq!(in_text("10.0.0.1:9100"), format!("{ip}:9100"));
        assert_eq!(in_text("at 10.0.0.1."), format!("at {ip}."));
        assert_eq!(in_text("010.000.0.01"), ip);
        assert_eq!(in_text("[2001:db8::1]:80"), format!("{v6}:80"));
        assert_eq!(in_text("2001:db8::1"), v6);
        for unchanged in [
            "1.2.3.4.5",
            "10.0.0.1000",
            "256.1.1.1",
            "v1.2.3",
            "1..2.3.4",
            "node-1.example.com",
            "[not-v6]",
            "a 2001:db8::1 b",
            "日本 1.2.3 [",
            "",
        ] {
            assert_eq!(in_text(unchanged), unchanged);
        }
    }

    #[test]
    fn a_short_key_is_refused_with_its_length_and_whitespace_is_not_key() {
        let error = Key::from_text("  short key\n").unwrap_err();
        assert!(matches!(error, Error::KeyTooShort { length: 9 }));
        assert!(error.to_string().contains("openssl rand -hex 32"));
        assert_eq!(error.reason(), "ObfuscationKeyTooShort");
        let trimmed = Key::from_text(&format!("\n {KEY}\n")).unwrap();
        assert_eq!(trimmed.fingerprint(), key().fingerprint());
    }

    #[test]
    fn a_key_is_required_to_pseudonymise_but_not_to_drop() {
        let settings = Settings {
            jobs: true,
            ..Settings::default()
        };
        let error = Obfuscator::new(None, settings).err().unwrap();
        assert!(matches!(error, Error::KeyRequired));
        assert!(error.to_string().contains("openssl rand -hex 32"));
        let drops = Settings {
            drop_labels: vec!["pod".into()],
            ..Settings::default()
        };
        assert!(drops.is_active() && !drops.needs_key());
        let mut obfuscator = Obfuscator::new(None, drops).unwrap();
        assert_eq!(obfuscator.fingerprint(), None);
        let mut series = labels(&[("pod", "web-0"), ("job", "node")]);
        obfuscator.apply(&mut series);
        assert_eq!(series, labels(&[("job", "node")]));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", key());
        assert_eq!(shown, "Key(<redacted>)");
    }

    proptest! {
        #[test]
        fn no_pseudonym_contains_the_original_value(
            host in "[a-z][a-z0-9.-]{5,30}",
            a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, d in 0u8..=255,
            port in 1u16..,
            value in "[g-z0-9_]{6,40}",
        ) {
            let key = key();
            let address = format!("{a}.{b}.{c}.{d}");
            let out = lookup(&key, "instance", &format!("{address}:{port}"));
            prop_assert!(!out.contains(&address), "{out}");
            let out = in_text(&format!("via {address}, {port}"));
            prop_assert!(!out.contains(&address), "{out}");
            let out = lookup(&key, "instance", &format!("http://{host}:{port}/metrics"));
            prop_assert!(!out.contains(&host), "{out}");
            let out = lookup(&key, "job", &value);
            prop_assert!(!out.contains(&value), "{out}");
            let out = lookup(&key, "pod", &value);
            prop_assert!(!out.contains(&value), "{out}");
        }
    }
}
