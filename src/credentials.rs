//! Credential encryption, following vCTP's "Credential Encryption Lifecycle".
//!
//! A password setting holds either plaintext or ciphertext. Ciphertext is
//! `enc:v1:` followed by standard base64 of `nonce (12 bytes) || AES-256-GCM
//! ciphertext and tag (16 bytes)`. On start a plaintext password is encrypted
//! and the settings file rewritten with the ciphertext ([`resolve`] then
//! [`crate::config::rewrite::rewrite_setting`]), so the plaintext lives on disk only until the first
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
use std::path::Path;

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
    #[error(transparent)]
    Rewrite(#[from] crate::config::rewrite::Error),
    #[error("settings.{key}: {source}")]
    Setting {
        key: &'static str,
        source: Box<Error>,
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
            Error::Rewrite(e) => e.reason(),
            Error::Setting { source, .. } => source.reason(),
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
) -> Result<String, Error> {
    const KEY: &str = "vcenter_password";
    let key = key_from_settings(settings)?;
    let resolved = resolve(&key, &settings.vcenter_password).map_err(|e| Error::Setting {
        key: KEY,
        source: Box::new(e),
    })?;
    if let (Resolved::Plaintext { encrypted, .. }, Some(path)) = (&resolved, settings_path) {
        if crate::config::rewrite::rewrite_setting(path, KEY, encrypted)? {
            tracing::info!(file = %path.display(), "encrypted settings.{KEY} in place");
        } else {
            tracing::warn!(file = %path.display(), "settings.{KEY} is plaintext and could not be found in the file to encrypt it");
        }
    }
    Ok(resolved.password().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    }
}
