//! Rewriting one value of the settings file in place: how a plaintext secret becomes its
//! `enc:v2:` ciphertext on disk without touching anything else of the file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("failed to rewrite `{key}` in settings file {path}: {source}")]
pub struct Error {
    pub path: PathBuf,
    pub key: String,
    pub source: std::io::Error,
}

impl Error {
    /// A stable short name, for exit codes, metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        "SettingsRewriteFailed"
    }
}

/// Sets `key: <new_value>` in a YAML settings file in place, changing nothing
/// else: comments, key order, indentation, line endings and the rest of the
/// line (a trailing `# comment`) are kept byte for byte. Only the first line
/// under the top-level `settings:` mapping whose text (after indentation)
/// starts with `key:` is changed; the value is written double-quoted. A key
/// `parent.child` is the first `child:` line indented under the first
/// `parent:` line there (block style; a flow mapping `{…}` is not found).
///
/// The file is replaced atomically (a temporary file in the same directory,
/// renamed over it) with its permission bits kept; a symlink is followed and
/// its target replaced. Returns `false`, leaving the file untouched, if there
/// is no such line; `true` if the line is there (also when it already held
/// exactly this value, in which case nothing is written).
pub fn rewrite_setting(path: &Path, key: &str, new_value: &str) -> Result<bool, Error> {
    let fail = |source: std::io::Error| Error {
        path: path.to_path_buf(),
        key: key.to_owned(),
        source,
    };
    let target = std::fs::canonicalize(path).map_err(fail)?;
    let bytes = std::fs::read(&target).map_err(fail)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        fail(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is not UTF-8",
        ))
    })?;
    let Some(updated) = replace_setting_value(&text, key, new_value) else {
        return Ok(false);
    };
    if updated == text {
        return Ok(true);
    }
    write_atomically(&target, updated.as_bytes()).map_err(fail)?;
    Ok(true)
}

fn write_atomically(target: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let permissions = std::fs::metadata(target)?.permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(".vctp-settings.")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    // The temp file is created 0600; give it the original's mode before it
    // takes the original's place.
    tmp.as_file().set_permissions(permissions)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    // Make the rename itself durable; some filesystems cannot sync a
    // directory, and the data is already safe in the file, so this is best effort.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The text with the value of the first `key:` (or `parent.child`) line under
/// `settings:` replaced, or `None` if there is no such line.
fn replace_setting_value(text: &str, key: &str, new_value: &str) -> Option<String> {
    let (parent, key) = match key.split_once('.') {
        Some((parent, child)) => (Some(parent), child),
        None => (None, key),
    };
    let valid =
        |k: &str| !(k.is_empty() || k.contains([':', '.']) || k.contains(char::is_whitespace));
    if !valid(key) || !parent.is_none_or(valid) {
        return None;
    }
    let mut in_settings = false;
    // The indentation of the `parent:` line while inside its block.
    let mut parent_indent: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let content = body.trim_start_matches(' ');
        let indent = body.len() - content.len();
        let blank_or_comment = content.trim().is_empty() || content.starts_with('#');
        if indent == 0 && !blank_or_comment {
            // A top-level key (or document marker) opens or closes `settings:`.
            in_settings = strip_comment(content).trim_end() == "settings:";
            parent_indent = None;
            continue;
        }
        if !in_settings || blank_or_comment {
            continue;
        }
        if let Some(parent) = parent {
            if parent_indent.is_some_and(|p| indent <= p) {
                parent_indent = None;
            }
            if parent_indent.is_none() {
                // Only a `parent:` line with nothing after it opens a block.
                let opens = mapping_value(content, parent)
                    .is_some_and(|rest| strip_comment(rest).trim().is_empty());
                if opens {
                    parent_indent = Some(indent);
                }
                continue;
            }
        }
        let Some(after_key) = mapping_value(content, key) else {
            continue;
        };
        let value_start = start + indent + key.len() + 1;
        let spaces = after_key.len() - after_key.trim_start_matches([' ', '\t']).len();
        let old = &after_key[spaces..];
        let old_len = scalar_len(old);
        let mut out = String::with_capacity(text.len() + new_value.len() + 2);
        out.push_str(&text[..value_start]);
        // Keep the original spacing after the colon (at least one space).
        out.push_str(if spaces == 0 {
            " "
        } else {
            &after_key[..spaces]
        });
        out.push_str(&yaml_double_quoted(new_value));
        out.push_str(&text[value_start + spaces + old_len..]);
        return Some(out);
    }
    None
}

/// What follows `key:` on a line whose content (after indentation) is a mapping entry for
/// `key`: the colon must be followed by a space, a tab or nothing.
fn mapping_value<'a>(content: &'a str, key: &str) -> Option<&'a str> {
    let after_key = content.strip_prefix(key)?.strip_prefix(':')?;
    (after_key.is_empty() || after_key.starts_with([' ', '\t'])).then_some(after_key)
}

/// Length in bytes of the scalar at the start of `s` (the rest of a line
/// after `key: `): a quoted scalar up to its closing quote, a plain one up to
/// ` #` or trailing spaces. An unterminated quote takes the whole line.
fn scalar_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b'"') => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return i + 1,
                    _ => i += 1,
                }
            }
            s.len()
        }
        Some(b'\'') => {
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    // '' is an escaped quote inside a single-quoted scalar.
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return i + 1;
                }
                i += 1;
            }
            s.len()
        }
        _ => strip_comment(s).trim_end_matches([' ', '\t']).len(),
    }
}

/// `s` up to a YAML comment: a `#` at the start or after a space or tab.
/// Quotes are not considered, which is right for keys and plain scalars.
fn strip_comment(s: &str) -> &str {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t')) {
            // `#` is ASCII, so `i` is a char boundary.
            return &s[..i];
        }
    }
    s
}

/// A YAML double-quoted scalar that reads back as exactly `value`.
fn yaml_double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // YAML only allows "printable" characters even inside quotes, and
            // treats U+0085, U+2028 and U+2029 as line breaks; a BOM inside
            // the text confuses some readers. Escape them all.
            c if !yaml_printable(c)
                || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}') =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// YAML 1.1's printable set: tab, LF, CR, and the ranges below.
fn yaml_printable(c: char) -> bool {
    matches!(c as u32, 0x09 | 0x0A | 0x0D | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::PermissionsExt;

    const SETTINGS: &str = "\
# vctp settings
database_url: outside   # not under settings:
settings:
  log_level: info            # trace, debug, info
  # vcenter_password: commented out, never touched
  vcenter_username: admin
  vcenter_password: hunter22   # from the vCenter team
  nested:
    vcenter_password: second
  encryption_key: 'it''s'
other:
  vcenter_password: outside
";

    fn settings_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vctp.yml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn rewrite_setting_changes_only_that_value_and_keeps_comments_and_order() {
        let (_dir, path) = settings_file(SETTINGS);
        assert!(rewrite_setting(&path, "vcenter_password", "enc:v1:QUJD").expect("rewrite"));
        let after = std::fs::read_to_string(&path).expect("read");
        let expected = SETTINGS.replace(
            "  vcenter_password: hunter22   # from",
            "  vcenter_password: \"enc:v1:QUJD\"   # from",
        );
        assert_eq!(after, expected);

        // A quoted value (with an escaped quote inside) is replaced whole.
        assert!(rewrite_setting(&path, "encryption_key", "new").expect("rewrite"));
        let after = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            after,
            expected.replace("encryption_key: 'it''s'", "encryption_key: \"new\"")
        );
    }

    #[test]
    fn rewrite_setting_is_idempotent() {
        let (_dir, path) = settings_file(SETTINGS);
        assert!(rewrite_setting(&path, "vcenter_password", "enc:v1:QUJD").expect("first"));
        let once = std::fs::read(&path).expect("read");
        assert!(rewrite_setting(&path, "vcenter_password", "enc:v1:QUJD").expect("second"));
        assert_eq!(std::fs::read(&path).expect("read"), once);
    }

    #[test]
    fn rewrite_setting_returns_false_and_leaves_the_file_alone_without_the_key() {
        let (_dir, path) = settings_file(SETTINGS);
        // `database_url` exists, but not under settings:.
        for key in ["database_url", "missing_key", "log", "", "a b"] {
            assert!(!rewrite_setting(&path, key, "x").expect("rewrite"), "{key}");
        }
        assert_eq!(std::fs::read_to_string(&path).expect("read"), SETTINGS);
    }

    #[test]
    fn rewrite_setting_keeps_the_file_mode_and_crlf_line_endings() {
        let (dir, path) = settings_file("settings:\r\n  vcenter_password: abc\r\n  x: 1\r\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(rewrite_setting(&path, "vcenter_password", "enc:v1:QUJD").expect("rewrite"));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "settings:\r\n  vcenter_password: \"enc:v1:QUJD\"\r\n  x: 1\r\n"
        );
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["vctp.yml"]);
    }

    #[test]
    fn rewrite_setting_follows_a_symlink_and_keeps_it() {
        let (dir, path) = settings_file("settings:\n  vcenter_password: abc\n");
        let link = dir.path().join("link.yml");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(rewrite_setting(&link, "vcenter_password", "enc:v1:QUJD").expect("rewrite"));
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
        assert!(
            std::fs::read_to_string(&path)
                .expect("read")
                .contains("enc:v1:QUJD")
        );
    }

    #[test]
    fn rewrite_setting_handles_a_key_with_no_value_and_a_last_line_without_newline() {
        let (_dir, path) = settings_file("settings:\n  a: 1\n  vcenter_password:");
        assert!(rewrite_setting(&path, "vcenter_password", "abc").expect("rewrite"));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "settings:\n  a: 1\n  vcenter_password: \"abc\""
        );
    }

    #[test]
    fn rewrite_setting_of_a_missing_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("absent.yml");
        let err = rewrite_setting(&path, "vcenter_password", "x").expect_err("missing file");
        assert_eq!(err.reason(), "SettingsRewriteFailed");
        assert!(err.to_string().contains("absent.yml"), "{err}");
    }

    #[test]
    fn a_dotted_key_rewrites_the_child_of_that_mapping_only() {
        let text = "\
settings:
  token: top                     # not under object_store_options
  object_store_options:
    aws_region: eu-west-1
    # aws_secret_access_key: commented
    aws_secret_access_key: 'sec''ret'   # from the S3 team

    aws_session_token: tok
  other:
    aws_secret_access_key: elsewhere
";
        let (_dir, path) = settings_file(text);
        let key = "object_store_options.aws_secret_access_key";
        assert!(rewrite_setting(&path, key, "enc:v2:QUJD").expect("rewrite"));
        let after = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            after,
            text.replace("'sec''ret'   # from", "\"enc:v2:QUJD\"   # from")
        );
        // After a blank line the block goes on; a sibling mapping is not its child.
        assert!(
            rewrite_setting(&path, "object_store_options.aws_session_token", "x").expect("rewrite")
        );
        assert!(
            std::fs::read_to_string(&path)
                .expect("read")
                .contains("    aws_session_token: \"x\"\n")
        );
        for missing in [
            "object_store_options.token",
            "other.aws_region",
            "object_store_options.",
            "missing.aws_secret_access_key",
            "a.b.c",
        ] {
            let before = std::fs::read_to_string(&path).expect("read");
            assert!(
                !rewrite_setting(&path, missing, "x").expect("rewrite"),
                "{missing}"
            );
            assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
        }
    }

    #[derive(serde::Deserialize)]
    struct Doc {
        settings: std::collections::BTreeMap<String, serde_yaml::Value>,
    }

    fn read_back(path: &Path, key: &str) -> Option<String> {
        let doc: Doc = serde_yaml::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        doc.settings.get(key)?.as_str().map(str::to_owned)
    }

    #[test]
    fn rewritten_values_read_back_exactly_through_a_yaml_parser() {
        for value in [
            "enc:v1:QUJD+/==",
            "a\"b\\c: #d",
            "tab\there\nnewline",
            "ünï€ode",
            "\u{1}",
        ] {
            let (_dir, path) = settings_file("settings:\n  vcenter_password: old # c\n");
            assert!(rewrite_setting(&path, "vcenter_password", value).expect("rewrite"));
            assert_eq!(read_back(&path, "vcenter_password").as_deref(), Some(value));
        }
    }

    proptest! {
        #[test]
        fn rewrite_setting_reads_back_any_value(value in any::<String>()) {
            let (_dir, path) = settings_file("settings:\n  vcenter_password: old\n  other: kept\n");
            prop_assert!(rewrite_setting(&path, "vcenter_password", &value).expect("rewrite"));
            prop_assert_eq!(read_back(&path, "vcenter_password"), Some(value));
            prop_assert_eq!(read_back(&path, "other"), Some("kept".to_owned()));
        }
    }
}
