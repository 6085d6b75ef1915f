//! Keys are checked, not escaped: a key is `/`-separated segments, each 1–200 characters from
//! `A–Z a–z 0–9 . _ -` and not starting with `.` (which rules out `.`, `..` and hidden files);
//! no leading, trailing or doubled `/`; at most 900 bytes, leaving room for the store's prefix
//! and the sidecar suffix within S3's 1,024-byte limit. Escaping would have to be undone in
//! listings and could map two names to one key; these characters need no encoding in S3, GCS
//! and Azure keys, in URLs or in file names. So `vc1.example.com` is a fine scope, and a
//! timestamp takes the basic ISO 8601 form `20260310T140000Z` (no `:`).

use super::Error;

const MAX_SEGMENT_CHARS: usize = 200;
const MAX_KEY_BYTES: usize = 900;

/// Checks a whole key (see the module documentation).
pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    let invalid = |problem: String| Error::Key {
        key: key.to_string(),
        problem,
    };
    if key.is_empty() {
        return Err(invalid("the key is empty".to_string()));
    }
    if key.starts_with('/') {
        return Err(invalid(
            "the key must be relative to the store (no leading /)".to_string(),
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid(format!(
            "the key is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    for segment in key.split('/') {
        check_segment("each part between slashes", segment).map_err(invalid)?;
    }
    Ok(())
}

/// Checks one segment of a key; the problem names the segment as `what`.
pub(crate) fn check_segment(what: &str, segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err(format!(
            "{what} must not be empty (no leading, trailing or doubled /)"
        ));
    }
    if segment.starts_with('.') {
        return Err(format!(
            "{what} must not start with '.' (this rules out . and ..), got {segment:?}"
        ));
    }
    if segment.chars().count() > MAX_SEGMENT_CHARS {
        return Err(format!(
            "{what} is longer than {MAX_SEGMENT_CHARS} characters"
        ));
    }
    if let Some(bad) = segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{what} {segment:?} contains {bad:?}; only letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_with_dots_colons_or_too_many_characters_are_refused() {
        for key in [
            "exports/ns/name/2026-03-10T14:00:00Z.zip",
            "exports/ns/../x.zip",
        ] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
        assert!(check_key(&format!("exports/ns/{}/1.zip", "x".repeat(201))).is_err());
    }

    #[test]
    fn keys_must_be_relative_and_made_of_safe_segments() {
        for key in [
            "", "/abs/key", "a//b", "a/", "a/../b", "./a", "a/./b", "a/.git/b", "a/b\0", "a/b\tc",
            "a/%2e%2e",
        ] {
            assert!(check_key(key).is_err(), "{key:?} must be refused");
        }
        assert!(
            check_key(&format!("{}x", "abcd/".repeat(180))).is_err(),
            "too long"
        );
        for key in ["a", "reports/daily/2026-03-10/all.xlsx", "x.y.z/1_2-3"] {
            assert!(check_key(key).is_ok(), "{key:?}");
        }
    }

    #[test]
    fn the_error_names_the_offending_part() {
        let e = check_key("reports/../x").unwrap_err().to_string();
        assert!(e.contains("reports/../x") && e.contains("\"..\""), "{e}");
        let e = check_key("/abs").unwrap_err().to_string();
        assert!(e.contains("leading /"), "{e}");
    }
}
