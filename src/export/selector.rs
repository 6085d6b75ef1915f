//! PromQL series selectors for MetricsExport: the preset filter built from a spec's jobs and
//! namespaces, parsing a user's selector (with VictoriaMetrics' `or` groups inside braces),
//! AND-ing a filter into it for Prometheus sources (which have no `extra_filters[]`), and the
//! form the bundle's metadata records, which must not reveal what obfuscation hides.

use super::obfuscate::Obfuscator;
use super::redact;
use std::fmt;

/// Longer selectors are refused: a spec field, not a place for data.
const MAX_LEN: usize = 16 * 1024;
/// How much of a refused selector its error repeats.
const SHOWN_LEN: usize = 200;
const REDACTED: &str = "<redacted>";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to parse series selector `{selector}`: {problem}")]
    Parse { selector: String, problem: String },
}

impl Error {
    /// A stable short name for metrics labels and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Parse { .. } => "InvalidSelector",
        }
    }

    fn parse(selector: &str, problem: String) -> Error {
        Error::Parse {
            selector: redact::cut(selector.to_owned(), SHOWN_LEN),
            problem,
        }
    }
}

/// RE2 (Go regexp) escaping of a literal for `=~`: `\ . + * ? ( ) | [ ] { } ^ $` get a backslash.
pub fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A PromQL double-quoted string literal: `"` and `\` escaped, newline, carriage return and tab
/// as `\n`, `\r`, `\t`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The preset filter of a MetricsExport, `{job=~"a|b",namespace=~"x"}`: each value matched
/// literally, jobs and namespaces AND-ed; None when both are empty.
pub fn preset_filter(jobs: &[String], namespaces: &[String]) -> Option<String> {
    let matchers: Vec<Matcher> = [("job", jobs), ("namespace", namespaces)]
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(label, values)| Matcher {
            label: label.to_owned(),
            op: Op::Re,
            value: values
                .iter()
                .map(|value| regex_escape(value))
                .collect::<Vec<_>>()
                .join("|"),
        })
        .collect();
    let groups = vec![matchers];
    (!groups[0].is_empty()).then(|| Selector { name: None, groups }.to_string())
}

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

impl Op {
    /// Longest first, so `=~` is not read as `=`.
    const ALL: [Op; 4] = [Op::Re, Op::Ne, Op::Nre, Op::Eq];

    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::Nre => "!~",
        }
    }

    /// Whether the value is a regular expression.
    pub fn is_regex(self) -> bool {
        matches!(self, Op::Re | Op::Nre)
    }
}

/// One `label op "value"`, the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: Op,
    pub value: String,
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.label,
            self.op.as_str(),
            quote(&self.value)
        )
    }
}

/// A parsed series selector `metric_name{label op "value", …}`: the groups are alternatives
/// (VictoriaMetrics' `{a="1" or b="2"}`), the matchers of a group are AND-ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: Option<String>,
    pub groups: Vec<Vec<Matcher>>,
}

/// Canonical form: `name{label="value",…}`, groups joined by ` or `.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            f.write_str(name)?;
            if self.groups.is_empty() {
                return Ok(());
            }
        }
        f.write_str("{")?;
        for (i, group) in self.groups.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            for (j, matcher) in group.iter().enumerate() {
                if j > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{matcher}")?;
            }
        }
        f.write_str("}")
    }
}

/// Parses `metric_name{label op "value", …}`: the name or the braces may be missing, not both;
/// values in double, single or back quotes with PromQL (Go) escapes; at most 16 KiB.
pub fn parse(text: &str) -> Result<Selector, Error> {
    if text.len() > MAX_LEN {
        let problem = format!(
            "it is {} bytes long, at most {MAX_LEN} are allowed",
            text.len()
        );
        return Err(Error::parse(text, problem));
    }
    Parser { text, pos: 0 }
        .selector()
        .map_err(|(at, problem)| Error::parse(text, format!("at byte {at}: {problem}")))
}

/// `selector` with the matchers of `filter` (a selector without a metric name) AND-ed into each
/// of its groups; for Prometheus sources, which have no `extra_filters[]`.
pub fn and(selector: &str, filter: &str) -> Result<String, Error> {
    let mut combined = parse(selector)?;
    let filter_groups = match parse(filter)? {
        Selector { name: None, groups } => groups,
        Selector { name: Some(_), .. } => {
            let problem = "a filter must not name a metric".to_owned();
            return Err(Error::parse(filter, problem));
        }
    };
    combined.groups = if combined.groups.is_empty() {
        filter_groups
    } else {
        // (a or b) and (c or d) = a,c or a,d or b,c or b,d
        combined
            .groups
            .iter()
            .flat_map(|group| {
                filter_groups
                    .iter()
                    .map(move |extra| group.iter().chain(extra).cloned().collect())
            })
            .collect()
    };
    Ok(combined.to_string())
}

/// The selector as the bundle's metadata records it. When the obfuscator is active, matcher
/// values of obfuscated labels become their pseudonyms, values of dropped labels and every
/// regular expression (`=~`, `!~`, which may spell out what is hidden) become `<redacted>`; the
/// metric name is kept. Without obfuscation the selector is only made canonical. Text that does
/// not parse becomes `<redacted>` entirely.
pub fn for_metadata(selector: &str, obfuscator: &mut Obfuscator) -> String {
    let Ok(mut parsed) = parse(selector) else {
        return REDACTED.to_owned();
    };
    if obfuscator.settings().is_active() {
        for matcher in parsed.groups.iter_mut().flatten() {
            if matcher.op.is_regex() || obfuscator.settings().drops(&matcher.label) {
                matcher.value = REDACTED.to_owned();
            } else if let Some(pseudonym) = obfuscator.rewrite(&matcher.label, &matcher.value) {
                matcher.value = pseudonym;
            }
        }
    }
    parsed.to_string()
}

/// Where parsing failed (byte offset) and why.
type Problem = (usize, String);

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn selector(&mut self) -> Result<Selector, Problem> {
        self.skip_whitespace();
        let name = self.identifier(|c| c == ':').map(str::to_owned);
        self.skip_whitespace();
        let groups = if self.eat("{") {
            self.groups()?
        } else {
            Vec::new()
        };
        self.skip_whitespace();
        if let Some(c) = self.peek() {
            return self.fail(format!("unexpected `{c}` after the selector"));
        }
        if name.is_none() && groups.is_empty() {
            return Err((
                0,
                "a metric name or at least one matcher is needed".to_owned(),
            ));
        }
        Ok(Selector { name, groups })
    }

    /// The matchers after `{` up to and including `}`.
    fn groups(&mut self) -> Result<Vec<Vec<Matcher>>, Problem> {
        let mut groups = Vec::new();
        let mut group = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek().is_none() {
                return self.fail("missing `}`".to_owned());
            }
            if self.eat("}") {
                if group.is_empty() && !groups.is_empty() {
                    return self.fail("expected a matcher after `or`".to_owned());
                }
                if !group.is_empty() {
                    groups.push(group);
                }
                return Ok(groups);
            }
            group.push(self.matcher()?);
            self.skip_whitespace();
            if self.eat_keyword("or") {
                groups.push(std::mem::take(&mut group));
            } else if !self.eat(",") && self.peek().is_some_and(|c| c != '}') {
                return self.fail("expected `,`, `or` or `}` after a matcher".to_owned());
            }
        }
    }

    fn matcher(&mut self) -> Result<Matcher, Problem> {
        let Some(label) = self.identifier(|_| false).map(str::to_owned) else {
            return self.fail("expected a label name".to_owned());
        };
        self.skip_whitespace();
        let Some(op) = Op::ALL.into_iter().find(|op| self.eat(op.as_str())) else {
            return self.fail(format!("expected one of = != =~ !~ after label `{label}`"));
        };
        self.skip_whitespace();
        let value = self.string()?;
        Ok(Matcher { label, op, value })
    }

    /// A quoted value, unescaped.
    fn string(&mut self) -> Result<String, Problem> {
        let quote = match self.peek() {
            Some(c @ ('"' | '\'' | '`')) => c,
            _ => return self.fail("expected a quoted value".to_owned()),
        };
        let start = self.pos;
        self.pos += 1;
        if quote == '`' {
            let rest = &self.text[self.pos..];
            let Some(len) = rest.find('`') else {
                return Err((start, "unterminated `…` string".to_owned()));
            };
            self.pos += len + 1;
            return Ok(rest[..len].to_owned());
        }
        let mut bytes = Vec::new();
        loop {
            match self.next_char() {
                None => return Err((start, format!("unterminated {quote}…{quote} string"))),
                Some('\n') => return self.fail("newline inside a quoted value".to_owned()),
                Some('\\') => self.escape(&mut bytes)?,
                Some(c) if c == quote => break,
                Some(c) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        String::from_utf8(bytes).map_err(|_| (start, "escapes give invalid UTF-8".to_owned()))
    }

    /// The escape after a backslash, as Go's strconv.Unquote reads it.
    fn escape(&mut self, bytes: &mut Vec<u8>) -> Result<(), Problem> {
        let at = self.pos - 1;
        let code = match self.next_char() {
            Some('a') => 7,
            Some('b') => 8,
            Some('f') => 12,
            Some('n') => 10,
            Some('r') => 13,
            Some('t') => 9,
            Some('v') => 11,
            Some(c @ ('\\' | '"' | '\'')) => u32::from(c),
            Some('u') => self.digits(4, 16)?,
            Some('U') => self.digits(8, 16)?,
            Some('x') => return self.byte(bytes, 2, 16),
            Some('0'..='7') => {
                self.pos -= 1;
                return self.byte(bytes, 3, 8);
            }
            Some(c) => return Err((at, format!("unknown escape `\\{c}`"))),
            None => return Err((at, "unterminated escape".to_owned())),
        };
        let Some(c) = char::from_u32(code) else {
            return Err((at, format!("escape `\\u{code:x}` is no Unicode character")));
        };
        bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    /// A `\x` or octal escape: one raw byte.
    fn byte(&mut self, bytes: &mut Vec<u8>, count: usize, radix: u32) -> Result<(), Problem> {
        let at = self.pos;
        let byte = u8::try_from(self.digits(count, radix)?)
            .map_err(|_| (at, "octal escape above \\377".to_owned()))?;
        bytes.push(byte);
        Ok(())
    }

    fn digits(&mut self, count: usize, radix: u32) -> Result<u32, Problem> {
        let at = self.pos;
        let mut value = 0;
        for _ in 0..count {
            let Some(digit) = self.next_char().and_then(|c| c.to_digit(radix)) else {
                return Err((
                    at,
                    format!("expected {count} base-{radix} digits in an escape"),
                ));
            };
            value = value * radix + digit;
        }
        Ok(value)
    }

    /// A metric or label name: `[a-zA-Z_]` then also digits, plus what `extra` allows.
    fn identifier(&mut self, extra: impl Fn(char) -> bool) -> Option<&str> {
        let rest = &self.text[self.pos..];
        let len = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphabetic() || c == '_' || extra(c) || (i > 0 && c.is_ascii_digit()))
            })
            .map_or(rest.len(), |(i, _)| i);
        self.pos += len;
        (len > 0).then(|| &rest[..len])
    }

    /// `keyword` as a whole word, any case.
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let rest = &self.text[self.pos..];
        let whole = rest
            .get(..keyword.len())
            .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
            && !rest[keyword.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if whole {
            self.pos += keyword.len();
        }
        whole
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.text[self.pos..].starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn fail<T>(&self, problem: String) -> Result<T, Problem> {
        Err((self.pos, problem))
    }
}

#[cfg(test)]
mod tests {
    use super::super::obfuscate::{Key, Settings, lookup};
    use super::*;
    use proptest::prelude::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    fn canonical(text: &str) -> String {
        parse(text).unwrap().to_string()
    }

    fn problem(text: &str) -> String {
        let error = parse(text).unwrap_err();
        assert_eq!(error.reason(), "InvalidSelector");
        error.to_string()
    }

    fn obfuscator(settings: Settings) -> Obfuscator {
        let key = Key::from_text("0123456789abcdef0123456789abcdef").unwrap();
        Obfuscator::new(Some(key), settings).unwrap()
    }

    #[test]
    fn regex_metacharacters_are_escaped_and_then_quoted() {
        assert_eq!(
            regex_escape(r"\.+*?()|[]{}^$a-b"),
            r"\\\.\+\*\?\(\)\|\[\]\{\}\^\$a-b"
        );
        assert_eq!(
            preset_filter(&strings(&["a.b|c"]), &[]).unwrap(),
            r#"{job=~"a\\.b\\|c"}"#
        );
    }

    #[test]
    fn the_preset_filter_ands_jobs_and_namespaces_and_is_none_when_empty() {
        assert_eq!(preset_filter(&[], &[]), None);
        assert_eq!(
            preset_filter(&strings(&["node", "vm"]), &strings(&["prod"])).unwrap(),
            r#"{job=~"node|vm",namespace=~"prod"}"#
        );
        assert_eq!(
            preset_filter(&[], &strings(&["kube-system"])).unwrap(),
            r#"{namespace=~"kube-system"}"#
        );
    }

    #[test]
    fn quoting_escapes_quotes_backslashes_and_newlines() {
        assert_eq!(quote("a\"b\\c\nd\te"), r#""a\"b\\c\nd\te""#);
        let selector = format!("{{x={}}}", quote("a\"b\\c\nd"));
        assert_eq!(parse(&selector).unwrap().groups[0][0].value, "a\"b\\c\nd");
    }

    #[test]
    fn varied_selectors_parse_to_one_canonical_form() {
        let cases = [
            ("up", "up"),
            ("  up  ", "up"),
            ("up{}", "up"),
            ("node:cpu:rate5m", "node:cpu:rate5m"),
            (r#"{job="node"}"#, r#"{job="node"}"#),
            (
                r#"up { job = "node" , instance!='a:1', path=~`/x\d+`, code !~ "5..", }"#,
                r#"up{job="node",instance!="a:1",path=~"/x\\d+",code!~"5.."}"#,
            ),
            (
                r#"{a="1" or b="2",c="3" OR d="4"}"#,
                r#"{a="1" or b="2",c="3" or d="4"}"#,
            ),
            (r#"{or="x"}"#, r#"{or="x"}"#),
            (
                r#"{a="\x41\101\u00e9\U0001F600\'\"\\"}"#,
                "{a=\"AAé😀'\\\"\\\\\"}",
            ),
            (r#"{a='it"s'}"#, r#"{a="it\"s"}"#),
        ];
        for (text, expected) in cases {
            assert_eq!(canonical(text), expected, "{text}");
        }
        let parsed = parse(r#"up{a=~"x" or b!="y"}"#).unwrap();
        assert_eq!(parsed.name.as_deref(), Some("up"));
        assert_eq!(parsed.groups.len(), 2);
        assert_eq!(parsed.groups[1][0].op, Op::Ne);
    }

    #[test]
    fn errors_name_the_position_and_the_problem() {
        let cases = [
            (
                "",
                "at byte 0: a metric name or at least one matcher is needed",
            ),
            ("{}", "a metric name or at least one matcher is needed"),
            (
                r#"up{job "x"}"#,
                "at byte 7: expected one of = != =~ !~ after label `job`",
            ),
            (r#"up{job="x}"#, "at byte 7: unterminated \"…\" string"),
            ("up{job=`x}", "unterminated `…` string"),
            (r#"up{job="x""#, "missing `}`"),
            (
                r#"up{job="x" instance="y"}"#,
                "expected `,`, `or` or `}` after a matcher",
            ),
            (r#"up{job="x" or }"#, "expected a matcher after `or`"),
            (r#"up{job="x",,}"#, "at byte 11: expected a label name"),
            (r#"up{job=x}"#, "expected a quoted value"),
            (r#"up{job="\q"}"#, "unknown escape `\\q`"),
            (r#"up{job="\777"}"#, "octal escape above \\377"),
            (r#"up{job="\xff"}"#, "escapes give invalid UTF-8"),
            (r#"up{job="\uD800"}"#, "is no Unicode character"),
            ("up{job=\"a\nb\"}", "newline inside a quoted value"),
            (r#"up{job="x"} extra"#, "unexpected `e` after the selector"),
            ("1up", "unexpected `1` after the selector"),
        ];
        for (text, expected) in cases {
            let message = problem(text);
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn a_huge_selector_is_refused_and_not_repeated_whole() {
        let text = format!("up{{job=\"{}\"}}", "x".repeat(MAX_LEN));
        let message = problem(&text);
        assert!(message.contains("at most 16384 are allowed"), "{message}");
        assert!(message.len() < 400);
    }

    #[test]
    fn a_filter_is_anded_into_every_group() {
        let filter = r#"{job=~"node"}"#;
        assert_eq!(and("up", filter).unwrap(), r#"up{job=~"node"}"#);
        assert_eq!(
            and(r#"up{a="1" or b="2"}"#, filter).unwrap(),
            r#"up{a="1",job=~"node" or b="2",job=~"node"}"#
        );
        assert_eq!(
            and(r#"{a="1"}"#, r#"{x="1" or y="2"}"#).unwrap(),
            r#"{a="1",x="1" or a="1",y="2"}"#
        );
    }

    #[test]
    fn a_filter_naming_a_metric_is_refused() {
        let message = and("up", r#"down{a="1"}"#).unwrap_err().to_string();
        assert!(
            message.contains("a filter must not name a metric"),
            "{message}"
        );
        assert!(and("up{", "{a=\"1\"}").is_err());
    }

    #[test]
    fn metadata_without_obfuscation_keeps_every_value() {
        let mut obfuscator = Obfuscator::new(None, Settings::default()).unwrap();
        let text = r#"up{job="node", instance=~"10\\..*"}"#;
        assert_eq!(
            for_metadata(text, &mut obfuscator),
            r#"up{job="node",instance=~"10\\..*"}"#
        );
        assert_eq!(for_metadata("up{job=", &mut obfuscator), "<redacted>");
    }

    #[test]
    fn metadata_with_obfuscation_shows_pseudonyms_and_hides_regexes_and_drops() {
        let mut obfuscator = obfuscator(Settings {
            ips: true,
            jobs: true,
            drop_labels: strings(&["pod"]),
            ..Settings::default()
        });
        let text =
            r#"node_up{job="node",instance!="10.0.0.1:9100",pod="web-0",zone=~"eu.*",env="prod"}"#;
        let key = Key::from_text("0123456789abcdef0123456789abcdef").unwrap();
        let expected = format!(
            r#"node_up{{job="{}",instance!="{}",pod="<redacted>",zone=~"<redacted>",env="prod"}}"#,
            lookup(&key, "job", "node"),
            lookup(&key, "instance", "10.0.0.1:9100"),
        );
        assert_eq!(for_metadata(text, &mut obfuscator), expected);
        assert_eq!(for_metadata("{", &mut obfuscator), "<redacted>");
    }

    proptest! {
        #[test]
        fn any_value_survives_display_and_parse(
            name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,10}",
            label in "[a-zA-Z_][a-zA-Z0-9_]{0,10}",
            value in "\\PC*",
            op in 0usize..4,
        ) {
            let selector = Selector {
                name: Some(name),
                groups: vec![vec![Matcher { label, op: Op::ALL[op], value }]],
            };
            prop_assert_eq!(parse(&selector.to_string()).unwrap(), selector);
        }
    }
}
