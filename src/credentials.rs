//! Credential encryption, following vCTP's "Credential Encryption Lifecycle".
//!
//! A password setting holds either plaintext or ciphertext. Ciphertext is
//! `enc:v1:` followed by standard base64 of `nonce (12 bytes) || AES-256-GCM
//! ciphertext and tag (16 bytes)`. On start a plaintext password is encrypted
//! and the settings file rewritten with the ciphertext ([`resolve`] then
//! [`rewrite_setting`]), so the plaintext lives on disk only until the first
//! run; a prefixed value that does not decrypt is an error, never a password.
//!
//! The key comes from `settings.encryption_key` ([`Key::from_setting`]) or,
//! when that is unset, from the host's identity ([`Key::from_host`]:
//! `/etc/machine-id`, else `/var/lib/dbus/machine-id`, else the hostname).
//! Both go through the same derivation (SHA-256 of a domain-separation prefix
//! and the text), so:
//! - a settings file moved to another host no longer decrypts with the host
//!   key. Either set `encryption_key` to the old host's machine id (the
//!   content of its `/etc/machine-id`), which gives the old key, or write the
//!   passwords again in plaintext and let vctp encrypt them for the new host;
//! - containers and pods often share or regenerate a machine id, so set
//!   `encryption_key` (from a Secret) there.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Marks a setting value as ciphertext.
pub const PREFIX: &str = "enc:v1:";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Separates this key derivation from any other use of SHA-256 over the same
/// text (a user may reuse a passphrase, and the machine id is not secret to
/// other software on the host).
const KEY_DOMAIN: &[u8] = b"vctp credential key v1\0";

/// Where the host identity is read from, in order; the hostname comes last.
const MACHINE_ID_FILES: &[&str] = &["/etc/machine-id", "/var/lib/dbus/machine-id"];
const HOSTNAME_FILES: &[&str] = &["/proc/sys/kernel/hostname", "/etc/hostname"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("password has 2 characters or fewer; refusing to use or encrypt it")]
    TooShort,
    #[error("value does not start with `enc:v1:`, so it is not an encrypted credential")]
    NotEncrypted,
    #[error("encrypted credential is not valid base64 after `enc:v1:`")]
    Malformed,
    #[error(
        "encrypted credential is too short: {len} bytes after base64 decoding, at least 28 needed (12-byte nonce and 16-byte tag)"
    )]
    Truncated { len: usize },
    #[error(
        "encrypted credential does not decrypt with this key (wrong or changed `encryption_key`, a settings file from another host, or a damaged value)"
    )]
    Decrypt,
    #[error("decrypted credential is not valid UTF-8")]
    NotUtf8,
    #[error("could not get random bytes from the operating system for the nonce")]
    Randomness,
    #[error("encryption failed")]
    Encrypt,
    #[error(
        "no host identity to derive the credential key from (tried /etc/machine-id, /var/lib/dbus/machine-id and the hostname); set `encryption_key` in the settings"
    )]
    NoHostIdentity,
    #[error("failed to rewrite `{key}` in settings file {path}: {source}")]
    Rewrite {
        path: PathBuf,
        key: String,
        source: std::io::Error,
    },
}

impl Error {
    /// A stable short name, for exit codes, metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::TooShort => "CredentialTooShort",
            Error::NotEncrypted => "CredentialNotEncrypted",
            Error::Malformed => "MalformedCredential",
            Error::Truncated { .. } => "TruncatedCredential",
            Error::Decrypt => "CredentialDecryptFailed",
            Error::NotUtf8 => "CredentialNotUtf8",
            Error::Randomness => "RandomnessUnavailable",
            Error::Encrypt => "CredentialEncryptFailed",
            Error::NoHostIdentity => "NoHostIdentity",
            Error::Rewrite { .. } => "SettingsRewriteFailed",
        }
    }
}

/// A 256-bit credential key. Its `Debug` output never shows key material.
///
/// It is not zeroed on drop: the AES key schedule inside the cipher would
/// stay in memory anyway, so clearing only our copy would promise more than
/// it gives.
pub struct Key([u8; 32]);

impl Key {
    /// The key for `settings.encryption_key`: any text, hashed to 32 bytes.
    /// Callers treat an empty or missing setting as unset and use
    /// [`Key::from_host`] instead.
    pub fn from_setting(text: &str) -> Key {
        Key::derive(text.as_bytes())
    }

    /// The key derived from this host's identity: `/etc/machine-id`, else
    /// `/var/lib/dbus/machine-id`, else the hostname.
    pub fn from_host() -> Result<Key, Error> {
        let machine_ids: Vec<&Path> = MACHINE_ID_FILES.iter().map(Path::new).collect();
        let hostnames: Vec<&Path> = HOSTNAME_FILES.iter().map(Path::new).collect();
        Key::from_identity_files(&machine_ids, &hostnames)
    }

    /// The first non-empty (trimmed) file among `machine_ids`, then
    /// `hostnames`; separate from [`Key::from_host`] so tests can use their
    /// own files.
    fn from_identity_files(machine_ids: &[&Path], hostnames: &[&Path]) -> Result<Key, Error> {
        machine_ids
            .iter()
            .chain(hostnames)
            .find_map(|path| {
                let text = std::fs::read_to_string(path).ok()?;
                let id = text.trim();
                (!id.is_empty()).then(|| Key::derive(id.as_bytes()))
            })
            .ok_or(Error::NoHostIdentity)
    }

    fn derive(text: &[u8]) -> Key {
        let digest = Sha256::new()
            .chain_update(KEY_DOMAIN)
            .chain_update(text)
            .finalize();
        Key(digest.into())
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

fn too_short(password: &str) -> bool {
    password.chars().count() <= 2
}

/// Encrypts a password into `enc:v1:…` with a fresh random nonce.
pub fn encrypt(key: &Key, plaintext: &str) -> Result<String, Error> {
    if too_short(plaintext) {
        return Err(Error::TooShort);
    }
    let mut nonce = [0u8; NONCE_LEN];
    // A random 96-bit nonce per encryption: we encrypt a handful of settings,
    // far below the ~2^32 messages where random GCM nonces start to collide.
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|_| Error::Randomness)?;
    let sealed = key
        .cipher()
        .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
        .map_err(|_| Error::Encrypt)?;
    let mut payload = Vec::with_capacity(NONCE_LEN + sealed.len());
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", BASE64.encode(payload)))
}

/// Decrypts an `enc:v1:…` value. Every malformed input is a typed error.
pub fn decrypt(key: &Key, value: &str) -> Result<String, Error> {
    let encoded = value.strip_prefix(PREFIX).ok_or(Error::NotEncrypted)?;
    // YAML editing can leave stray spaces or a line break around the value;
    // they are never part of base64.
    let payload = BASE64
        .decode(encoded.trim())
        .map_err(|_| Error::Malformed)?;
    if payload.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::Truncated { len: payload.len() });
    }
    let (nonce, sealed) = payload.split_at(NONCE_LEN);
    // Cannot fail: the length was checked above.
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Malformed)?;
    let plain = key
        .cipher()
        .decrypt(&Nonce::from(nonce), sealed)
        .map_err(|_| Error::Decrypt)?;
    String::from_utf8(plain).map_err(|_| Error::NotUtf8)
}

/// What a password setting turned out to hold.
#[derive(Clone, PartialEq, Eq)]
pub enum Resolved {
    /// It was ciphertext; this is the password.
    Decrypted(String),
    /// It was plaintext: the caller should rewrite the setting with this ciphertext.
    Plaintext { password: String, encrypted: String },
}

impl Resolved {
    /// The password, whichever form the setting held.
    pub fn password(&self) -> &str {
        match self {
            Resolved::Decrypted(password) | Resolved::Plaintext { password, .. } => password,
        }
    }
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolved::Decrypted(_) => f.write_str("Decrypted(<redacted>)"),
            Resolved::Plaintext { encrypted, .. } => f
                .debug_struct("Plaintext")
                .field("password", &"<redacted>")
                .field("encrypted", encrypted)
                .finish(),
        }
    }
}

/// The lifecycle of one password setting: `enc:v1:` values are decrypted (a
/// failure is an error: a prefixed value is never used as a password);
/// plaintext of 2 characters or fewer is refused; other plaintext is the
/// password and comes back encrypted for the caller to write back.
pub fn resolve(key: &Key, value: &str) -> Result<Resolved, Error> {
    if value.starts_with(PREFIX) {
        return decrypt(key, value).map(Resolved::Decrypted);
    }
    if too_short(value) {
        return Err(Error::TooShort);
    }
    let encrypted = encrypt(key, value)?;
    Ok(Resolved::Plaintext {
        password: value.to_owned(),
        encrypted,
    })
}

/// The key for `enc:v1:` values: `settings.encryption_key`, else the host's identity.
pub fn key_from_settings(settings: &crate::config::Settings) -> Result<Key, Error> {
    match &settings.encryption_key {
        Some(text) => Ok(Key::from_setting(text)),
        None => Key::from_host(),
    }
}

/// `settings.vcenter_password`, decrypted. A plaintext password is encrypted and written
/// back into the settings file it came from, so it stays on disk only until the first start.
pub fn password_from_settings(
    settings: &crate::config::Settings,
    settings_path: Option<&Path>,
) -> anyhow::Result<String> {
    use anyhow::Context as _;
    const KEY: &str = "vcenter_password";
    let key = key_from_settings(settings)?;
    let resolved =
        resolve(&key, &settings.vcenter_password).with_context(|| format!("settings.{KEY}"))?;
    if let (Resolved::Plaintext { encrypted, .. }, Some(path)) = (&resolved, settings_path) {
        if rewrite_setting(path, KEY, encrypted)? {
            tracing::info!(file = %path.display(), "encrypted settings.{KEY} in place");
        } else {
            tracing::warn!(file = %path.display(), "settings.{KEY} is plaintext and could not be found in the file to encrypt it");
        }
    }
    Ok(resolved.password().to_owned())
}

/// Sets `key: <new_value>` in a YAML settings file in place, changing nothing
/// else: comments, key order, indentation, line endings and the rest of the
/// line (a trailing `# comment`) are kept byte for byte. Only the first line
/// under the top-level `settings:` mapping whose text (after indentation)
/// starts with `key:` is changed; the value is written double-quoted.
///
/// The file is replaced atomically (a temporary file in the same directory,
/// renamed over it) with its permission bits kept; a symlink is followed and
/// its target replaced. Returns `false`, leaving the file untouched, if there
/// is no such line; `true` if the line is there (also when it already held
/// exactly this value, in which case nothing is written).
pub fn rewrite_setting(path: &Path, key: &str, new_value: &str) -> Result<bool, Error> {
    let fail = |source: std::io::Error| Error::Rewrite {
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

/// The text with the value of the first `key:` line under `settings:`
/// replaced, or `None` if there is no such line.
fn replace_setting_value(text: &str, key: &str, new_value: &str) -> Option<String> {
    if key.is_empty() || key.contains(':') || key.contains(char::is_whitespace) {
        return None;
    }
    let mut in_settings = false;
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
            continue;
        }
        if !in_settings || blank_or_comment {
            continue;
        }
        let Some(after_key) = content.strip_prefix(key).and_then(|r| r.strip_prefix(':')) else {
            continue;
        };
        // `key:` must be followed by a space, a tab or nothing to be a mapping key.
        if !(after_key.is_empty() || after_key.starts_with([' ', '\t'])) {
            continue;
        }
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

    fn key() -> Key {
        Key::from_setting("correct horse battery staple")
    }

    #[test]
    fn a_password_encrypts_and_decrypts_back_to_itself() {
        let key = key();
        for password in ["hunter22", "pässwörd with spaces", "x\"y\\z: #w", "abc"] {
            let value = encrypt(&key, password).expect("encrypt");
            assert!(value.starts_with(PREFIX), "{value}");
            assert_eq!(decrypt(&key, &value).expect("decrypt"), password);
        }
    }

    #[test]
    fn each_encryption_uses_a_fresh_nonce() {
        let key = key();
        let a = encrypt(&key, "same password").expect("encrypt");
        let b = encrypt(&key, "same password").expect("encrypt");
        assert_ne!(a, b);
        let nonce =
            |v: &str| BASE64.decode(&v[PREFIX.len()..]).expect("base64")[..NONCE_LEN].to_vec();
        assert_ne!(nonce(&a), nonce(&b));
    }

    #[test]
    fn a_different_key_cannot_decrypt() {
        let value = encrypt(&key(), "secret-password").expect("encrypt");
        let other = Key::from_setting("another key");
        let err = decrypt(&other, &value).expect_err("wrong key must fail");
        assert!(matches!(err, Error::Decrypt), "{err:?}");
        assert_eq!(err.reason(), "CredentialDecryptFailed");
    }

    #[test]
    fn the_same_setting_text_always_gives_the_same_key() {
        let value = encrypt(&Key::from_setting("k1"), "secret-password").expect("encrypt");
        assert_eq!(
            decrypt(&Key::from_setting("k1"), &value).expect("decrypt"),
            "secret-password"
        );
    }

    #[test]
    fn any_changed_byte_of_the_ciphertext_is_rejected() {
        let key = key();
        let value = encrypt(&key, "secret-password").expect("encrypt");
        let payload = BASE64.decode(&value[PREFIX.len()..]).expect("base64");
        // Nonce, ciphertext and tag bytes alike.
        for i in 0..payload.len() {
            let mut tampered = payload.clone();
            tampered[i] ^= 0x01;
            let value = format!("{PREFIX}{}", BASE64.encode(&tampered));
            assert!(
                matches!(decrypt(&key, &value), Err(Error::Decrypt)),
                "byte {i}"
            );
        }
        // A shortened payload (tag cut) fails too.
        let cut = format!("{PREFIX}{}", BASE64.encode(&payload[..payload.len() - 1]));
        assert!(decrypt(&key, &cut).is_err());
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let key = key();
        let under = format!("{PREFIX}{}", BASE64.encode([0u8; NONCE_LEN + TAG_LEN - 1]));
        let exact = format!("{PREFIX}{}", BASE64.encode([0u8; NONCE_LEN + TAG_LEN]));
        let cases = [
            ("", "CredentialNotEncrypted"),
            ("plaintext", "CredentialNotEncrypted"),
            ("enc:v1:", "TruncatedCredential"),
            ("enc:v1:!!!", "MalformedCredential"),
            ("enc:v1:AAAA", "TruncatedCredential"),
            (under.as_str(), "TruncatedCredential"),
            (exact.as_str(), "CredentialDecryptFailed"),
        ];
        for (value, reason) in cases {
            let err = decrypt(&key, value).expect_err(value);
            assert_eq!(err.reason(), reason, "{value}: {err}");
        }
        assert!(matches!(
            decrypt(&key, "enc:v1:AAAA"),
            Err(Error::Truncated { len: 3 })
        ));
    }

    #[test]
    fn passwords_of_two_characters_or_fewer_are_rejected() {
        let key = key();
        // Characters, not bytes: "éé" is 4 bytes but 2 characters.
        for short in ["", "a", "ab", "éé"] {
            assert!(
                matches!(encrypt(&key, short), Err(Error::TooShort)),
                "{short:?}"
            );
            assert!(
                matches!(resolve(&key, short), Err(Error::TooShort)),
                "{short:?}"
            );
        }
        assert!(encrypt(&key, "abc").is_ok());
        assert_eq!(Error::TooShort.reason(), "CredentialTooShort");
    }

    #[test]
    fn resolve_encrypts_plaintext_and_decrypts_ciphertext() {
        let key = key();
        let Resolved::Plaintext {
            password,
            encrypted,
        } = resolve(&key, "vc-password").expect("plaintext")
        else {
            panic!("plaintext must come back as Plaintext");
        };
        assert_eq!(password, "vc-password");
        assert_eq!(
            resolve(&key, &encrypted).expect("ciphertext"),
            Resolved::Decrypted("vc-password".to_owned())
        );
    }

    #[test]
    fn resolve_never_uses_a_prefixed_value_that_does_not_decrypt_as_a_password() {
        let value = encrypt(&key(), "vc-password").expect("encrypt");
        let other = Key::from_setting("other");
        assert!(matches!(resolve(&other, &value), Err(Error::Decrypt)));
        assert!(matches!(
            resolve(&key(), "enc:v1:not base64!"),
            Err(Error::Malformed)
        ));
    }

    #[test]
    fn debug_output_never_shows_key_material_or_passwords() {
        let key = Key::from_setting("k");
        let shown = format!("{key:?}");
        assert_eq!(shown, "Key(<redacted>)");
        let resolved = resolve(&key, "vc-password").expect("resolve");
        assert!(!format!("{resolved:?}").contains("vc-password"));
        let decrypted = Resolved::Decrypted("vc-password".to_owned());
        assert!(!format!("{decrypted:?}").contains("vc-password"));
    }

    #[test]
    fn error_messages_never_contain_the_secret() {
        let key = key();
        let secret = "Sup3r-Secret";
        let value = encrypt(&key, secret).expect("encrypt");
        let errors = [
            decrypt(&Key::from_setting("other"), &value).expect_err("wrong key"),
            decrypt(&key, &format!("{PREFIX}{secret}!")).expect_err("malformed"),
            decrypt(&key, secret).expect_err("not encrypted"),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.contains(secret), "{text}");
            assert!(!text.contains(&value[PREFIX.len()..]), "{text}");
            assert!(
                text.starts_with(char::is_lowercase),
                "messages start lowercase: {text}"
            );
        }
    }

    #[test]
    fn the_host_key_comes_from_the_machine_id_then_dbus_then_the_hostname() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let missing = dir.path().join("missing");
        let empty = file("empty", "\n");
        let machine = file("machine-id", "0123456789abcdef\n");
        let dbus = file("dbus", "fedcba9876543210\n");
        let host = file("hostname", "vctp-host\n");
        let sealed = |k: &Key| encrypt(k, "probe-password").expect("encrypt");
        let opens = |k: &Key, v: &str| decrypt(k, v).is_ok();

        let k = Key::from_identity_files(&[&machine, &dbus], &[&host]).expect("machine id");
        // The same derivation as encryption_key: the old host's machine id
        // as encryption_key reads values written with the host key.
        assert!(opens(&Key::from_setting("0123456789abcdef"), &sealed(&k)));

        let k = Key::from_identity_files(&[&missing, &empty, &dbus], &[&host]).expect("dbus");
        assert!(opens(&Key::from_setting("fedcba9876543210"), &sealed(&k)));

        let k = Key::from_identity_files(&[&missing], &[&missing, &host]).expect("hostname");
        assert!(opens(&Key::from_setting("vctp-host"), &sealed(&k)));

        let err = Key::from_identity_files(&[&missing, &empty], &[&missing]).expect_err("none");
        assert_eq!(err.reason(), "NoHostIdentity");
    }

    #[test]
    fn this_host_has_an_identity_to_derive_a_key_from() {
        let key = Key::from_host().expect("host key");
        let value = encrypt(&key, "probe-password").expect("encrypt");
        assert_eq!(decrypt(&key, &value).expect("decrypt"), "probe-password");
    }

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
        fn decrypt_never_panics_on_arbitrary_text_after_the_prefix(rest in any::<String>()) {
            let _ = decrypt(&key(), &format!("{PREFIX}{rest}"));
        }

        #[test]
        fn decrypt_never_panics_on_arbitrary_base64_payloads(
            payload in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let value = format!("{PREFIX}{}", BASE64.encode(&payload));
            prop_assert!(decrypt(&key(), &value).is_err());
        }

        #[test]
        fn any_password_longer_than_two_characters_round_trips(password in "\\PC{3,40}") {
            let key = key();
            let value = encrypt(&key, &password).expect("encrypt");
            prop_assert_eq!(decrypt(&key, &value).expect("decrypt"), password);
        }

        #[test]
        fn rewrite_setting_reads_back_any_value(value in any::<String>()) {
            let (_dir, path) = settings_file("settings:\n  vcenter_password: old\n  other: kept\n");
            prop_assert!(rewrite_setting(&path, "vcenter_password", &value).expect("rewrite"));
            prop_assert_eq!(read_back(&path, "vcenter_password"), Some(value));
            prop_assert_eq!(read_back(&path, "other"), Some("kept".to_owned()));
        }
    }
}
