//! Credential encryption, following vCTP's "Credential Encryption Lifecycle".
//!
//! A secret setting ([`secret_settings`]: `vcenter_password`, `ldap_bind_password`,
//! `auth_jwt_signing_key` and the secret keys of `object_store_options`,
//! [`SECRET_OBJECT_STORE_OPTIONS`]) holds either plaintext or ciphertext. Ciphertext is
//! `enc:v2:` followed by standard base64 of
//! `salt (16 bytes) || nonce (12 bytes) || AES-256-GCM ciphertext and tag (16 bytes)`:
//! - the AES key is Argon2id ([`KDF_MEMORY_KIB`], [`KDF_PASSES`], one lane) over the key
//!   material with the value's salt, so a stolen settings file cannot be tried against a
//!   guessed `encryption_key` or machine id at SHA-256 speed, nor with precomputed tables;
//! - the setting's name (`vcenter_password`, `object_store_options.aws_secret_access_key`)
//!   is the associated data, so a value copied into another setting does not decrypt.
//!
//! `enc:v1:` values (the key a single SHA-256 of the key material, no associated data) are
//! still read. On start ([`decrypt_settings`]) plaintext and `enc:v1:` values are encrypted as
//! `enc:v2:` and the settings file rewritten in place
//! ([`crate::config::rewrite::rewrite_setting`]), so plaintext lives on disk only until the
//! first run; a prefixed value that does not decrypt is an error, never a secret.
//!
//! The key material is `settings.encryption_key` ([`Key::from_setting`]) or, when that is
//! unset, the host's identity ([`Key::from_host`]: `/etc/machine-id`, else
//! `/var/lib/dbus/machine-id`, else the hostname), so:
//! - a settings file moved to another host no longer decrypts with the host key. Either set
//!   `encryption_key` to the old host's machine id (the content of its `/etc/machine-id`),
//!   which gives the old key, or write the secrets again in plaintext and let vctp encrypt
//!   them for the new host;
//! - containers and pods often share or regenerate a machine id, so set `encryption_key`
//!   (from a Secret) there.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Marks a setting value as ciphertext of the current format.
pub const PREFIX: &str = "enc:v2:";
/// The format before `enc:v2:`: read, and rewritten as `enc:v2:` on start.
const V1_PREFIX: &str = "enc:v1:";
/// What every ciphertext starts with; a value starting so is never taken as plaintext.
const ANY_VERSION: &str = "enc:v";

const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Argon2id memory cost and passes: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
/// A value's key is derived once per salt and process ([`Key`] caches it); these figures are
/// part of the `enc:v2:` format, changing them needs a new prefix.
pub const KDF_MEMORY_KIB: u32 = 19 * 1024;
pub const KDF_PASSES: u32 = 2;

/// Separates the `enc:v1:` key derivation from any other use of SHA-256 over the same text
/// (a user may reuse a passphrase, and the machine id is not secret to other software on
/// the host).
const V1_KEY_DOMAIN: &[u8] = b"vctp credential key v1\0";

/// Where the host identity is read from, in order; the hostname comes last.
const MACHINE_ID_FILES: &[&str] = &["/etc/machine-id", "/var/lib/dbus/machine-id"];
const HOSTNAME_FILES: &[&str] = &["/proc/sys/kernel/hostname", "/etc/hostname"];

/// The top-level settings that hold a secret.
const SECRET_SETTINGS: &[&str] = &[
    "vcenter_password",
    "ldap_bind_password",
    "auth_jwt_signing_key",
];

/// The `object_store_options` keys (object_store's names and aliases, any case) that hold a
/// secret; every other option (region, endpoint, access key id, …) stays as written.
pub const SECRET_OBJECT_STORE_OPTIONS: &[&str] = &[
    // S3
    "aws_secret_access_key",
    "secret_access_key",
    "aws_session_token",
    "aws_token",
    "session_token",
    "token",
    // GCS
    "google_service_account_key",
    "service_account_key",
    // Azure
    "azure_storage_account_key",
    "azure_storage_access_key",
    "azure_storage_master_key",
    "master_key",
    "account_key",
    "access_key",
    "azure_storage_client_secret",
    "azure_client_secret",
    "client_secret",
    "azure_storage_sas_key",
    "azure_storage_sas_token",
    "sas_key",
    "sas_token",
    "azure_storage_token",
    "bearer_token",
];

const OBJECT_STORE_OPTIONS: &str = "object_store_options";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("password has 2 characters or fewer; refusing to use or encrypt it")]
    TooShort,
    #[error(
        "value does not start with `enc:v1:` or `enc:v2:`, so it is not an encrypted credential"
    )]
    NotEncrypted,
    #[error(
        "encrypted credential has an unknown format `{prefix}` (this vctp reads `enc:v1:` and `enc:v2:`; was it written by a newer vctp?)"
    )]
    UnknownVersion { prefix: String },
    #[error("encrypted credential is not valid base64 after its `enc:v…:` prefix")]
    Malformed,
    #[error(
        "encrypted credential is too short: {len} bytes after base64 decoding, at least {min} needed"
    )]
    Truncated { len: usize, min: usize },
    #[error(
        "encrypted credential does not decrypt with this key (wrong or changed `encryption_key`, a settings file from another host, a value encrypted for another setting, or a damaged value)"
    )]
    Decrypt,
    #[error("decrypted credential is not valid UTF-8")]
    NotUtf8,
    #[error("could not get random bytes from the operating system for the salt or nonce")]
    Randomness,
    #[error("encryption failed")]
    Encrypt,
    #[error("the Argon2id key derivation failed: {0}")]
    Kdf(String),
    #[error(
        "no host identity to derive the credential key from (tried /etc/machine-id, /var/lib/dbus/machine-id and the hostname); set `encryption_key` in the settings"
    )]
    NoHostIdentity,
    #[error(
        "`{0}` is not an encrypted setting; use one of {list}",
        list = secret_setting_names()
    )]
    NotASecretSetting(String),
    #[error("settings.{key}: {source}")]
    Setting { key: String, source: Box<Error> },
}

impl Error {
    /// A stable short name, for exit codes, metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::TooShort => "CredentialTooShort",
            Error::NotEncrypted => "CredentialNotEncrypted",
            Error::UnknownVersion { .. } => "UnknownCredentialFormat",
            Error::Malformed => "MalformedCredential",
            Error::Truncated { .. } => "TruncatedCredential",
            Error::Decrypt => "CredentialDecryptFailed",
            Error::NotUtf8 => "CredentialNotUtf8",
            Error::Randomness => "RandomnessUnavailable",
            Error::Encrypt => "CredentialEncryptFailed",
            Error::Kdf(_) => "CredentialKdfFailed",
            Error::NoHostIdentity => "NoHostIdentity",
            Error::NotASecretSetting(_) => "NotASecretSetting",
            Error::Setting { source, .. } => source.reason(),
        }
    }

    fn in_setting(self, key: &str) -> Error {
        Error::Setting {
            key: key.to_owned(),
            source: Box::new(self),
        }
    }
}

/// The names [`encrypt`] takes, for messages: the top-level ones and the option pattern.
fn secret_setting_names() -> String {
    let mut names: Vec<String> = SECRET_SETTINGS.iter().map(|s| s.to_string()).collect();
    names.push(format!(
        "{OBJECT_STORE_OPTIONS}.<{}>",
        SECRET_OBJECT_STORE_OPTIONS.join("|")
    ));
    names.join(", ")
}

/// Whether `name` (`vcenter_password`, `object_store_options.aws_secret_access_key`, …) is a
/// setting whose value is encrypted.
pub fn is_secret_setting(name: &str) -> bool {
    match name.split_once('.') {
        None => SECRET_SETTINGS.contains(&name),
        Some((OBJECT_STORE_OPTIONS, option)) => is_secret_option(option),
        Some(_) => false,
    }
}

fn is_secret_option(option: &str) -> bool {
    SECRET_OBJECT_STORE_OPTIONS
        .iter()
        .any(|secret| secret.eq_ignore_ascii_case(option))
}

/// The credential key material, and the keys derived from it. Its `Debug` output never shows
/// key material.
///
/// Nothing is zeroed on drop: the AES key schedule inside the cipher would stay in memory
/// anyway, so clearing only our copies would promise more than it gives.
pub struct Key {
    material: Vec<u8>,
    /// The salt of every value this process encrypts: one derivation per process.
    salt: OnceLock<[u8; SALT_LEN]>,
    /// Argon2id output per salt seen, so each salt costs one derivation.
    derived: Mutex<Vec<([u8; SALT_LEN], [u8; 32])>>,
}

impl Key {
    /// The key for `settings.encryption_key`: any text. Callers treat an empty or missing
    /// setting as unset and use [`Key::from_host`] instead.
    pub fn from_setting(text: &str) -> Key {
        Key::new(text.as_bytes())
    }

    /// The key derived from this host's identity: `/etc/machine-id`, else
    /// `/var/lib/dbus/machine-id`, else the hostname.
    pub fn from_host() -> Result<Key, Error> {
        let machine_ids: Vec<&Path> = MACHINE_ID_FILES.iter().map(Path::new).collect();
        let hostnames: Vec<&Path> = HOSTNAME_FILES.iter().map(Path::new).collect();
        Key::from_identity_files(&machine_ids, &hostnames)
    }

    /// The first non-empty (trimmed) file among `machine_ids`, then `hostnames`; separate
    /// from [`Key::from_host`] so tests can use their own files.
    fn from_identity_files(machine_ids: &[&Path], hostnames: &[&Path]) -> Result<Key, Error> {
        machine_ids
            .iter()
            .chain(hostnames)
            .find_map(|path| {
                let text = std::fs::read_to_string(path).ok()?;
                let id = text.trim();
                (!id.is_empty()).then(|| Key::new(id.as_bytes()))
            })
            .ok_or(Error::NoHostIdentity)
    }

    fn new(material: &[u8]) -> Key {
        Key {
            material: material.to_vec(),
            salt: OnceLock::new(),
            derived: Mutex::new(Vec::new()),
        }
    }

    /// The `enc:v1:` cipher: SHA-256 of a domain-separation prefix and the material.
    fn v1_cipher(&self) -> Aes256Gcm {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(V1_KEY_DOMAIN)
            .chain_update(&self.material)
            .finalize()
            .into();
        Aes256Gcm::new(&digest.into())
    }

    /// The `enc:v2:` cipher for `salt`: Argon2id over the material, once per salt.
    fn cipher(&self, salt: &[u8; SALT_LEN]) -> Result<Aes256Gcm, Error> {
        // A panic elsewhere cannot leave the cache half-written: entries are pushed whole.
        let mut derived = self.derived.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, key)) = derived.iter().find(|(seen, _)| seen == salt) {
            return Ok(Aes256Gcm::new(&(*key).into()));
        }
        let params = argon2::Params::new(KDF_MEMORY_KIB, KDF_PASSES, 1, Some(32))
            .map_err(|e| Error::Kdf(e.to_string()))?;
        let mut key = [0u8; 32];
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(&self.material, salt, &mut key)
            .map_err(|e| Error::Kdf(e.to_string()))?;
        derived.push((*salt, key));
        Ok(Aes256Gcm::new(&key.into()))
    }

    /// The salt new values get, drawn on first use.
    fn salt(&self) -> Result<[u8; SALT_LEN], Error> {
        if let Some(salt) = self.salt.get() {
            return Ok(*salt);
        }
        let fresh = random()?;
        // Two threads may draw at once; the first one stored wins.
        Ok(*self.salt.get_or_init(|| fresh))
    }
}

/// Bytes from the operating system.
fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| Error::Randomness)?;
    Ok(bytes)
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

fn too_short(password: &str) -> bool {
    password.chars().count() <= 2
}

/// Encrypts the value of `setting` into `enc:v2:…` with a fresh random nonce; the setting's
/// name is bound to it.
pub fn encrypt(key: &Key, setting: &str, plaintext: &str) -> Result<String, Error> {
    if !is_secret_setting(setting) {
        return Err(Error::NotASecretSetting(setting.to_owned()));
    }
    if too_short(plaintext) {
        return Err(Error::TooShort);
    }
    let salt = key.salt()?;
    // A random 96-bit nonce per encryption: we encrypt a handful of settings, far below the
    // ~2^32 messages where random GCM nonces start to collide.
    let nonce: [u8; NONCE_LEN] = random()?;
    let sealed = key
        .cipher(&salt)?
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: setting.as_bytes(),
            },
        )
        .map_err(|_| Error::Encrypt)?;
    let mut payload = Vec::with_capacity(SALT_LEN + NONCE_LEN + sealed.len());
    payload.extend_from_slice(&salt);
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", BASE64.encode(payload)))
}

/// Decrypts an `enc:v2:…` value of `setting`, or an `enc:v1:…` one. Every malformed input is
/// a typed error.
pub fn decrypt(key: &Key, setting: &str, value: &str) -> Result<String, Error> {
    let (v2, encoded) = match (value.strip_prefix(PREFIX), value.strip_prefix(V1_PREFIX)) {
        (Some(encoded), _) => (true, encoded),
        (None, Some(encoded)) => (false, encoded),
        (None, None) if value.starts_with(ANY_VERSION) => {
            let prefix = value.split_inclusive(':').take(2).collect::<String>();
            return Err(Error::UnknownVersion { prefix });
        }
        (None, None) => return Err(Error::NotEncrypted),
    };
    // YAML editing can leave stray spaces or a line break around the value; they are never
    // part of base64.
    let payload = BASE64
        .decode(encoded.trim())
        .map_err(|_| Error::Malformed)?;
    let salt_len = if v2 { SALT_LEN } else { 0 };
    let min = salt_len + NONCE_LEN + TAG_LEN;
    if payload.len() < min {
        return Err(Error::Truncated {
            len: payload.len(),
            min,
        });
    }
    let (salt, rest) = payload.split_at(salt_len);
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    // Cannot fail: the lengths were checked above.
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Malformed)?;
    let plain = if v2 {
        let salt: [u8; SALT_LEN] = salt.try_into().map_err(|_| Error::Malformed)?;
        let payload = Payload {
            msg: sealed,
            aad: setting.as_bytes(),
        };
        key.cipher(&salt)?.decrypt(&Nonce::from(nonce), payload)
    } else {
        key.v1_cipher().decrypt(&Nonce::from(nonce), sealed)
    }
    .map_err(|_| Error::Decrypt)?;
    String::from_utf8(plain).map_err(|_| Error::NotUtf8)
}

/// What a secret setting turned out to hold.
#[derive(Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The secret, whichever form the setting held.
    pub secret: String,
    /// The `enc:v2:` value to write back when the setting held plaintext or `enc:v1:`.
    pub rewrite: Option<String>,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("secret", &"<redacted>")
            .field("rewrite", &self.rewrite)
            .finish()
    }
}

/// The lifecycle of one secret setting: `enc:v2:` values are decrypted, `enc:v1:` values
/// decrypted and re-encrypted (a failure is an error: a prefixed value is never used as a
/// secret); plaintext of 2 characters or fewer is refused; other plaintext is the secret and
/// comes back encrypted for the caller to write back.
pub fn resolve(key: &Key, setting: &str, value: &str) -> Result<Resolved, Error> {
    if value.starts_with(PREFIX) {
        let secret = decrypt(key, setting, value)?;
        return Ok(Resolved {
            secret,
            rewrite: None,
        });
    }
    let secret = if value.starts_with(ANY_VERSION) {
        decrypt(key, setting, value)?
    } else if too_short(value) {
        return Err(Error::TooShort);
    } else {
        value.to_owned()
    };
    let rewrite = Some(encrypt(key, setting, &secret)?);
    Ok(Resolved { secret, rewrite })
}

/// The key for encrypted settings: `settings.encryption_key`, else the host's identity.
pub fn key_from_settings(settings: &crate::config::Settings) -> Result<Key, Error> {
    match &settings.encryption_key {
        Some(text) => Ok(Key::from_setting(text)),
        None => Key::from_host(),
    }
}

/// Every secret setting that has a value, by the name its ciphertext is bound to.
fn secret_settings(settings: &mut crate::config::Settings) -> Vec<(String, &mut String)> {
    let mut secrets = vec![(
        "vcenter_password".to_owned(),
        &mut settings.vcenter_password,
    )];
    for (name, value) in [
        ("ldap_bind_password", settings.ldap_bind_password.as_mut()),
        (
            "auth_jwt_signing_key",
            settings.auth_jwt_signing_key.as_mut(),
        ),
    ] {
        secrets.extend(value.map(|value| (name.to_owned(), value)));
    }
    secrets.extend(
        settings
            .object_store_options
            .iter_mut()
            .filter(|(option, _)| is_secret_option(option))
            .map(|(option, value)| (format!("{OBJECT_STORE_OPTIONS}.{option}"), value)),
    );
    secrets.retain(|(_, value)| !value.is_empty());
    secrets
}

/// `settings` with every secret setting decrypted. Plaintext and `enc:v1:` values are
/// encrypted as `enc:v2:` and written back into the settings file they came from, so
/// plaintext stays on disk only until the first start. A file that cannot be rewritten (a
/// read-only ConfigMap) is warned about and left as it is.
pub fn decrypt_settings(
    settings: &crate::config::Settings,
    settings_path: Option<&Path>,
) -> Result<crate::config::Settings, Error> {
    let mut settings = settings.clone();
    // Derived only when there is a secret: commands on a file without any need no key.
    let material = settings.encryption_key.clone();
    let mut key = None;
    for (name, value) in secret_settings(&mut settings) {
        let key = match &mut key {
            Some(key) => key,
            None => key.insert(match &material {
                Some(text) => Key::from_setting(text),
                None => Key::from_host()?,
            }),
        };
        let resolved = resolve(key, &name, value).map_err(|e| e.in_setting(&name))?;
        if let (Some(encrypted), Some(path)) = (&resolved.rewrite, settings_path) {
            match crate::config::rewrite::rewrite_setting(path, &name, encrypted) {
                Ok(true) => {
                    tracing::info!(file = %path.display(), "encrypted settings.{name} in place")
                }
                Ok(false) => tracing::warn!(
                    file = %path.display(),
                    "settings.{name} is not encrypted as enc:v2: and could not be found in the file to encrypt it; run `vctp encrypt --setting {name}` and paste its output"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "settings.{name} is not encrypted as enc:v2: on disk; run `vctp encrypt --setting {name}` and paste its output"
                ),
            }
        }
        *value = resolved.secret;
    }
    Ok(settings)
}

/// The vCenter password of already decrypted settings, refused when too short to be one.
pub fn vcenter_password(settings: &crate::config::Settings) -> Result<&str, Error> {
    if too_short(&settings.vcenter_password) {
        return Err(Error::TooShort.in_setting("vcenter_password"));
    }
    Ok(&settings.vcenter_password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SETTING: &str = "vcenter_password";

    fn key() -> Key {
        Key::from_setting("correct horse battery staple")
    }

    /// An `enc:v1:` value as vctp wrote them before `enc:v2:`: AES-256-GCM under SHA-256 of
    /// the domain prefix and the key text, no associated data.
    fn v1_value(key_text: &str, plaintext: &str) -> String {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(V1_KEY_DOMAIN)
            .chain_update(key_text)
            .finalize()
            .into();
        let nonce: [u8; NONCE_LEN] = random().unwrap();
        let sealed = Aes256Gcm::new(&digest.into())
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .unwrap();
        format!(
            "{V1_PREFIX}{}",
            BASE64.encode([&nonce[..], &sealed].concat())
        )
    }

    fn payload(value: &str) -> Vec<u8> {
        BASE64.decode(&value[PREFIX.len()..]).expect("base64")
    }

    #[test]
    fn a_secret_encrypts_as_v2_and_decrypts_back_to_itself() {
        let same = key();
        for password in ["hunter22", "pässwörd with spaces", "x\"y\\z: #w", "abc"] {
            let value = encrypt(&same, SETTING, password).expect("encrypt");
            assert!(value.starts_with("enc:v2:"), "{value}");
            assert_eq!(decrypt(&same, SETTING, &value).expect("decrypt"), password);
            // A key of the same text in another process (no cache) reads it too.
            assert_eq!(
                decrypt(&key(), SETTING, &value).expect("fresh key"),
                password
            );
        }
    }

    #[test]
    fn each_value_carries_its_salt_and_a_fresh_nonce() {
        let same = key();
        let a = payload(&encrypt(&same, SETTING, "same password").expect("encrypt"));
        let b = payload(&encrypt(&same, SETTING, "same password").expect("encrypt"));
        assert_ne!(a, b);
        let nonce = |p: &[u8]| p[SALT_LEN..SALT_LEN + NONCE_LEN].to_vec();
        assert_ne!(nonce(&a), nonce(&b));
        // Another process draws another salt.
        let c = payload(&encrypt(&key(), SETTING, "same password").expect("encrypt"));
        assert_ne!(a[..SALT_LEN], c[..SALT_LEN]);
    }

    #[test]
    fn a_value_encrypted_for_one_setting_does_not_decrypt_as_another() {
        let key = key();
        let value = encrypt(&key, "vcenter_password", "secret-password").expect("encrypt");
        for other in [
            "ldap_bind_password",
            "auth_jwt_signing_key",
            "object_store_options.aws_secret_access_key",
        ] {
            let err = decrypt(&key, other, &value).expect_err(other);
            assert!(matches!(err, Error::Decrypt), "{other}: {err:?}");
            assert!(err.to_string().contains("another setting"), "{err}");
        }
        let value = encrypt(
            &key,
            "object_store_options.aws_secret_access_key",
            "s3-secret",
        )
        .expect("encrypt");
        assert!(decrypt(&key, "object_store_options.aws_session_token", &value).is_err());
        assert_eq!(
            decrypt(&key, "object_store_options.aws_secret_access_key", &value).expect("same"),
            "s3-secret"
        );
    }

    #[test]
    fn only_secret_settings_are_encrypted() {
        for setting in [
            "vcenter_username",
            "object_store_options.aws_region",
            "database_url",
            "",
        ] {
            let err = encrypt(&key(), setting, "some value").expect_err(setting);
            assert_eq!(err.reason(), "NotASecretSetting", "{setting}");
            assert!(err.to_string().contains("ldap_bind_password"), "{err}");
        }
        assert!(is_secret_setting(
            "object_store_options.AWS_SECRET_ACCESS_KEY"
        ));
    }

    #[test]
    fn a_different_key_cannot_decrypt() {
        let value = encrypt(&key(), SETTING, "secret-password").expect("encrypt");
        let err = decrypt(&Key::from_setting("another key"), SETTING, &value)
            .expect_err("wrong key must fail");
        assert!(matches!(err, Error::Decrypt), "{err:?}");
        assert_eq!(err.reason(), "CredentialDecryptFailed");
    }

    #[test]
    fn any_changed_byte_of_the_value_is_rejected() {
        let key = key();
        let value = encrypt(&key, SETTING, "secret-password").expect("encrypt");
        let payload = payload(&value);
        // Salt, nonce, ciphertext and tag bytes alike.
        for i in 0..payload.len() {
            let mut tampered = payload.clone();
            tampered[i] ^= 0x01;
            let value = format!("{PREFIX}{}", BASE64.encode(&tampered));
            assert!(
                matches!(decrypt(&key, SETTING, &value), Err(Error::Decrypt)),
                "byte {i}"
            );
        }
        // A shortened payload (tag cut) fails too.
        let cut = format!("{PREFIX}{}", BASE64.encode(&payload[..payload.len() - 1]));
        assert!(decrypt(&key, SETTING, &cut).is_err());
    }

    #[test]
    fn v1_values_are_read_and_come_back_as_v2() {
        let key = key();
        let v1 = v1_value("correct horse battery staple", "old-password");
        assert_eq!(decrypt(&key, SETTING, &v1).expect("v1"), "old-password");
        let resolved = resolve(&key, SETTING, &v1).expect("resolve v1");
        assert_eq!(resolved.secret, "old-password");
        let v2 = resolved.rewrite.expect("a v1 value is rewritten");
        assert!(v2.starts_with(PREFIX), "{v2}");
        assert_eq!(decrypt(&key, SETTING, &v2).expect("v2"), "old-password");
        assert_eq!(
            resolve(&key, SETTING, &v2).expect("resolve v2"),
            Resolved {
                secret: "old-password".into(),
                rewrite: None
            }
        );
        assert!(matches!(
            decrypt(&Key::from_setting("other"), SETTING, &v1),
            Err(Error::Decrypt)
        ));
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let key = key();
        let v1_under = format!(
            "{V1_PREFIX}{}",
            BASE64.encode([0u8; NONCE_LEN + TAG_LEN - 1])
        );
        let v1_exact = format!("{V1_PREFIX}{}", BASE64.encode([0u8; NONCE_LEN + TAG_LEN]));
        let v2_under = format!(
            "{PREFIX}{}",
            BASE64.encode([0u8; SALT_LEN + NONCE_LEN + TAG_LEN - 1])
        );
        let v2_exact = format!(
            "{PREFIX}{}",
            BASE64.encode([0u8; SALT_LEN + NONCE_LEN + TAG_LEN])
        );
        let cases = [
            ("", "CredentialNotEncrypted"),
            ("plaintext", "CredentialNotEncrypted"),
            ("enc:v1:", "TruncatedCredential"),
            ("enc:v2:", "TruncatedCredential"),
            ("enc:v1:!!!", "MalformedCredential"),
            ("enc:v2:!!!", "MalformedCredential"),
            ("enc:v9:AAAA", "UnknownCredentialFormat"),
            (v1_under.as_str(), "TruncatedCredential"),
            (v1_exact.as_str(), "CredentialDecryptFailed"),
            (v2_under.as_str(), "TruncatedCredential"),
            (v2_exact.as_str(), "CredentialDecryptFailed"),
        ];
        for (value, reason) in cases {
            let err = decrypt(&key, SETTING, value).expect_err(value);
            assert_eq!(err.reason(), reason, "{value}: {err}");
        }
        assert!(matches!(
            decrypt(&key, SETTING, "enc:v2:AAAA"),
            Err(Error::Truncated { len: 3, min: 44 })
        ));
        let err = decrypt(&key, SETTING, "enc:v9:AAAA").expect_err("v9");
        assert!(err.to_string().contains("`enc:v9:`"), "{err}");
    }

    #[test]
    fn passwords_of_two_characters_or_fewer_are_rejected() {
        let key = key();
        // Characters, not bytes: "éé" is 4 bytes but 2 characters.
        for short in ["", "a", "ab", "éé"] {
            assert!(
                matches!(encrypt(&key, SETTING, short), Err(Error::TooShort)),
                "{short:?}"
            );
            assert!(
                matches!(resolve(&key, SETTING, short), Err(Error::TooShort)),
                "{short:?}"
            );
        }
        assert!(encrypt(&key, SETTING, "abc").is_ok());
        assert_eq!(Error::TooShort.reason(), "CredentialTooShort");
    }

    #[test]
    fn resolve_encrypts_plaintext_and_decrypts_ciphertext() {
        let key = key();
        let resolved = resolve(&key, SETTING, "vc-password").expect("plaintext");
        assert_eq!(resolved.secret, "vc-password");
        let encrypted = resolved.rewrite.expect("plaintext is rewritten");
        assert_eq!(
            resolve(&key, SETTING, &encrypted).expect("ciphertext"),
            Resolved {
                secret: "vc-password".to_owned(),
                rewrite: None
            }
        );
    }

    #[test]
    fn resolve_never_uses_a_prefixed_value_that_does_not_decrypt_as_a_secret() {
        let value = encrypt(&key(), SETTING, "vc-password").expect("encrypt");
        let other = Key::from_setting("other");
        assert!(matches!(
            resolve(&other, SETTING, &value),
            Err(Error::Decrypt)
        ));
        for value in ["enc:v1:not base64!", "enc:v2:not base64!"] {
            assert!(matches!(
                resolve(&key(), SETTING, value),
                Err(Error::Malformed)
            ));
        }
        assert!(matches!(
            resolve(&key(), SETTING, "enc:v3:AAAA"),
            Err(Error::UnknownVersion { .. })
        ));
    }

    #[test]
    fn decrypt_settings_decrypts_each_secret_and_names_the_one_that_fails() {
        let key = Key::from_setting("k1");
        let mut settings = crate::config::Settings {
            encryption_key: Some("k1".into()),
            vcenter_password: encrypt(&key, "vcenter_password", "vc-secret").unwrap(),
            ldap_bind_password: Some(v1_value("k1", "ldap-secret")),
            auth_jwt_signing_key: Some("plain-jwt-key".into()),
            ..Default::default()
        };
        settings.object_store_options.insert(
            "aws_session_token".into(),
            encrypt(&key, "object_store_options.aws_session_token", "token-1").unwrap(),
        );
        settings
            .object_store_options
            .insert("aws_region".into(), "enc:v2:not-a-secret-option".into());
        let plain = decrypt_settings(&settings, None).expect("decrypt");
        assert_eq!(plain.vcenter_password, "vc-secret");
        assert_eq!(plain.ldap_bind_password.as_deref(), Some("ldap-secret"));
        assert_eq!(plain.auth_jwt_signing_key.as_deref(), Some("plain-jwt-key"));
        assert_eq!(plain.object_store_options["aws_session_token"], "token-1");
        assert_eq!(
            plain.object_store_options["aws_region"],
            "enc:v2:not-a-secret-option"
        );

        settings.encryption_key = Some("another key".into());
        let err = decrypt_settings(&settings, None).expect_err("wrong key");
        assert!(
            err.to_string().starts_with("settings.vcenter_password: "),
            "{err}"
        );
        // Nothing to decrypt needs no key (and so no host identity).
        let empty = crate::config::Settings::default();
        assert!(decrypt_settings(&empty, None).is_ok());
    }

    #[test]
    fn debug_output_never_shows_key_material_or_secrets() {
        let key = Key::from_setting("k-material");
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
        let resolved = resolve(&key, SETTING, "vc-password").expect("resolve");
        assert!(!format!("{resolved:?}").contains("vc-password"));
    }

    #[test]
    fn error_messages_never_contain_the_secret() {
        let key = key();
        let secret = "Sup3r-Secret";
        let value = encrypt(&key, SETTING, secret).expect("encrypt");
        let errors = [
            decrypt(&Key::from_setting("other"), SETTING, &value).expect_err("wrong key"),
            decrypt(&key, SETTING, &format!("{PREFIX}{secret}!")).expect_err("malformed"),
            decrypt(&key, SETTING, secret).expect_err("not encrypted"),
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
        let sealed = |k: &Key| encrypt(k, SETTING, "probe-password").expect("encrypt");
        let opens = |k: &Key, v: &str| decrypt(k, SETTING, v).is_ok();

        let k = Key::from_identity_files(&[&machine, &dbus], &[&host]).expect("machine id");
        // The same derivation as encryption_key: the old host's machine id as
        // encryption_key reads values written with the host key.
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
        let value = encrypt(&key, SETTING, "probe-password").expect("encrypt");
        assert_eq!(
            decrypt(&key, SETTING, &value).expect("decrypt"),
            "probe-password"
        );
    }

    /// One key for the properties, so its derivation is cached across cases.
    static SHARED: std::sync::LazyLock<Key> = std::sync::LazyLock::new(key);

    proptest! {
        #[test]
        fn decrypt_never_panics_on_arbitrary_text_after_the_prefix(rest in any::<String>()) {
            let _ = decrypt(&SHARED, SETTING, &format!("{PREFIX}{rest}"));
            let _ = decrypt(&SHARED, SETTING, &format!("{V1_PREFIX}{rest}"));
        }

        #[test]
        fn any_secret_longer_than_two_characters_round_trips(password in "\\PC{3,40}") {
            let value = encrypt(&SHARED, SETTING, &password).expect("encrypt");
            prop_assert_eq!(decrypt(&SHARED, SETTING, &value).expect("decrypt"), password);
        }
    }

    proptest! {
        // Each random salt costs one Argon2id derivation.
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn decrypt_never_panics_on_arbitrary_base64_payloads(
            payload in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let value = format!("{PREFIX}{}", BASE64.encode(&payload));
            prop_assert!(decrypt(&SHARED, SETTING, &value).is_err());
        }
    }
}
