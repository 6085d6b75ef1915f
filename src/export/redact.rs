//! Keeping credentials out of every log line, error, status and Event. A server's answer may
//! echo them back (vmauth: `cannot find the provided auth token "Basic …"`, proxies echo
//! anything), so every text from a source passes through [`Secrets::redact`] before it is shown
//! anywhere, and is cut to a size fit for a status field.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

const REDACTED: &str = "<redacted>";
const ELLIPSIS: &str = "…";
/// Authorization schemes whose credentials are redacted even when they are no known secret.
const SCHEMES: [&str; 2] = ["basic", "bearer"];

/// The secrets of one connection: passwords, tokens, header values (and derived forms).
#[derive(Clone, Default)]
pub struct Secrets {
    /// Longest first, so a secret containing another is redacted whole.
    values: Vec<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

impl Secrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the password and `base64(username:password)`, the header form vmauth echoes back.
    pub fn basic(&mut self, username: &str, password: &str) {
        self.add(password);
        self.add(&STANDARD.encode(format!("{username}:{password}")));
    }

    /// Adds a token or header value; surrounding whitespace (a newline from a file) is not part
    /// of it, and however short it is, it is redacted.
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.is_empty() || self.values.iter().any(|known| known == secret) {
            return;
        }
        let at = self
            .values
            .partition_point(|known| known.len() >= secret.len());
        self.values.insert(at, secret.to_owned());
    }

    /// `text` with every secret replaced by `<redacted>`, and anything after `Basic ` or
    /// `Bearer ` (any case) up to whitespace, a quote, a backslash or the end; then cut to at
    /// most `max` bytes on a char boundary, ending in `…` when cut.
    pub fn redact(&self, text: &str, max: usize) -> String {
        let mut out = String::with_capacity(text.len().min(max) + REDACTED.len());
        let mut rest = text;
        // What is written never changes, so the scan can stop once the cut is certain.
        while out.len() <= max {
            let Some(c) = rest.chars().next() else { break };
            if let Some(secret) = self.values.iter().find(|secret| rest.starts_with(*secret)) {
                out.push_str(REDACTED);
                rest = &rest[secret.len()..];
            } else if let Some(len) = scheme_len(rest, out.chars().next_back()) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                let credential = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '\\'))
                    .unwrap_or(rest.len());
                if credential > 0 {
                    out.push_str(REDACTED);
                    rest = &rest[credential..];
                }
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        cut(out, max)
    }
}

/// The length of `Basic ` or `Bearer ` (any case, then spaces) at the start of `text`, when it
/// starts a word.
fn scheme_len(text: &str, before: Option<char>) -> Option<usize> {
    if before.is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    SCHEMES.iter().find_map(|scheme| {
        let word = text.get(..scheme.len())?;
        let after = &text[scheme.len()..];
        let spaces = after.len() - after.trim_start_matches(' ').len();
        (word.eq_ignore_ascii_case(scheme) && spaces > 0).then_some(scheme.len() + spaces)
    })
}

/// `text` cut to at most `max` bytes on a char boundary, ending in `…` when cut.
pub(super) fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    match max.checked_sub(ELLIPSIS.len()) {
        Some(room) => {
            text.truncate(text.floor_char_boundary(room));
            text.push_str(ELLIPSIS);
        }
        // No room for the ellipsis.
        None => text.truncate(text.floor_char_boundary(max)),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic() -> Secrets {
        let mut secrets = Secrets::new();
        secrets.basic("user", "pass");
        secrets
    }

    #[test]
    fn a_vmauth_answer_echoing_the_basic_header_is_redacted() {
        let body = r#"cannot find the provided auth token "Basic dXNlcjpwYXNz""#;
        let expected = r#"cannot find the provided auth token "Basic <redacted>""#;
        assert_eq!(basic().redact(body, 1000), expected);
        assert_eq!(Secrets::new().redact(body, 1000), expected);
    }

    #[test]
    fn the_encoded_credentials_are_redacted_without_the_scheme_word() {
        assert_eq!(
            basic().redact("token=dXNlcjpwYXNz;", 100),
            "token=<redacted>;"
        );
    }

    #[test]
    fn a_raw_password_is_redacted_wherever_it_appears() {
        let mut secrets = Secrets::new();
        secrets.basic("admin", "s3cr3t-pw");
        let text = "login admin:s3cr3t-pw failed (s3cr3t-pw)";
        assert_eq!(
            secrets.redact(text, 1000),
            "login admin:<redacted> failed (<redacted>)"
        );
    }

    #[test]
    fn a_secret_containing_another_is_redacted_whole() {
        let mut secrets = Secrets::new();
        secrets.add("abc");
        secrets.add("abcdef");
        assert_eq!(
            secrets.redact("x abcdef abc", 100),
            "x <redacted> <redacted>"
        );
    }

    #[test]
    fn short_secrets_are_redacted_and_empty_ones_ignored() {
        let mut secrets = Secrets::new();
        secrets.add("ab");
        secrets.add("  ");
        secrets.add("tok\n");
        assert_eq!(secrets.redact("ab cd tok", 100), "<redacted> cd <redacted>");
        assert_eq!(format!("{secrets:?}"), "Secrets(2 values)");
    }

    #[test]
    fn bearer_tokens_are_redacted_in_any_case_up_to_a_quote_or_space() {
        let text = "authorization: BEARER  eyJhbGc.x-y_z 'bearer abc' Bearer";
        assert_eq!(
            Secrets::new().redact(text, 1000),
            "authorization: BEARER  <redacted> 'bearer <redacted>' Bearer"
        );
    }

    #[test]
    fn words_ending_in_a_scheme_name_are_not_schemes() {
        let text = "nonbasic value";
        assert_eq!(Secrets::new().redact(text, 100), text);
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let text = "x".repeat(500);
        let out = Secrets::new().redact(&text, 100);
        assert_eq!(out.len(), 100);
        assert!(out.ends_with('…'));
        assert_eq!(Secrets::new().redact("short", 100), "short");
    }

    #[test]
    fn a_secret_across_the_cut_leaves_no_prefix() {
        let mut secrets = Secrets::new();
        secrets.add("0123456789");
        let out = secrets.redact("abc 0123456789 tail", 10);
        assert!(!out.contains("012"), "{out}");
        assert!(out.len() <= 10);
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries_at_every_size() {
        let text = "Größe 日本語 Bearer tök€n 🎉 ende";
        let mut secrets = Secrets::new();
        secrets.add("語");
        for max in 0..text.len() + 20 {
            let out = secrets.redact(text, max);
            assert!(out.len() <= max, "{max}: {out}");
            assert!(!out.contains("tök€n") && !out.contains('語'));
        }
    }

    proptest! {
        #[test]
        fn no_secret_survives(before in ".{0,40}", after in ".{0,40}", secret in "[0-9]{4,16}") {
            let mut secrets = Secrets::new();
            secrets.add(&secret);
            let out = secrets.redact(&format!("{before}{secret}{after}"), 10_000);
            prop_assert!(!out.contains(&secret), "{out}");
        }
    }
}
