//! Bearer tokens: login identity → HS256 JWT (`settings.auth_jwt_*`), and a presented
//! token → checked algorithm, signature, issuer, audience and times → [`Claims`].

use super::{Error, Role, setting};
use crate::config::Settings;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// HS256 keys shorter than this are refused (the hash's output size).
const MIN_KEY_BYTES: usize = 32;

/// What a token says; handlers behind the middleware find it as a request extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The login name.
    pub sub: String,
    /// The user's LDAP DN.
    pub dn: String,
    pub role: Role,
    /// Every group DN of the user, as the directory spelled it.
    pub groups: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// A random id, so every token is distinct and can be traced in logs.
    pub jti: String,
}

/// Signs and checks tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    lifespan_seconds: i64,
}

impl Tokens {
    pub fn new(
        key: &[u8],
        issuer: &str,
        audience: &str,
        lifespan_seconds: i64,
        clock_skew_seconds: u64,
    ) -> Tokens {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = clock_skew_seconds;
        Tokens {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            lifespan_seconds,
        }
    }

    pub(super) fn from_settings(settings: &Settings) -> Result<Tokens, Error> {
        let key_name = "auth_jwt_signing_key";
        let encoded = settings
            .auth_jwt_signing_key
            .as_deref()
            .filter(|key| !key.trim().is_empty())
            .ok_or_else(|| {
                setting(
                    key_name,
                    "is required when auth is enabled (base64 of at least 32 random bytes, e.g. `openssl rand -base64 32`)",
                )
            })?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| setting(key_name, format!("is not valid base64: {e}")))?;
        if key.len() < MIN_KEY_BYTES {
            return Err(setting(
                key_name,
                format!(
                    "decodes to {} bytes; HS256 needs at least {MIN_KEY_BYTES} bytes",
                    key.len()
                ),
            ));
        }
        if settings.auth_token_lifespan_minutes == 0 {
            return Err(setting("auth_token_lifespan_minutes", "must be at least 1"));
        }
        for (name, value) in [
            ("auth_jwt_issuer", &settings.auth_jwt_issuer),
            ("auth_jwt_audience", &settings.auth_jwt_audience),
        ] {
            if value.trim().is_empty() {
                return Err(setting(name, "must not be empty"));
            }
        }
        let lifespan = i64::try_from(settings.auth_token_lifespan_minutes.saturating_mul(60))
            .map_err(|_| setting("auth_token_lifespan_minutes", "is too large"))?;
        Ok(Tokens::new(
            &key,
            &settings.auth_jwt_issuer,
            &settings.auth_jwt_audience,
            lifespan,
            settings.auth_clock_skew_seconds,
        ))
    }

    /// Seconds a new token stays valid.
    pub fn lifespan_seconds(&self) -> i64 {
        self.lifespan_seconds
    }

    /// A signed token for a logged-in user, valid from `now` for the configured lifespan.
    pub fn issue(
        &self,
        username: &str,
        dn: &str,
        role: Role,
        groups: Vec<String>,
        now: i64,
    ) -> Result<(String, Claims), Error> {
        let claims = Claims {
            sub: username.to_string(),
            dn: dn.to_string(),
            role,
            groups,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + self.lifespan_seconds,
            jti: format!("{:032x}", rand::random::<u128>()),
        };
        self.sign(&claims).map(|token| (token, claims))
    }

    /// Signs any claims with the configured key (also used by tests to forge tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::Sign(e.to_string()))
    }

    /// The claims of a valid token, or why it is not valid.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        // jsonwebtoken cannot even parse a header with `alg: none`; name that case ourselves.
        if header_alg(token).is_some_and(|alg| alg != "HS256") {
            return Err(Error::InvalidToken {
                reason: "alg_not_allowed",
            });
        }
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| Error::InvalidToken {
                reason: match e.kind() {
                    ErrorKind::InvalidSignature => "invalid_signature",
                    ErrorKind::ExpiredSignature => "expired",
                    ErrorKind::ImmatureSignature => "not_yet_valid",
                    ErrorKind::InvalidAudience => "wrong_audience",
                    ErrorKind::InvalidIssuer => "wrong_issuer",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "alg_not_allowed"
                    }
                    ErrorKind::MissingRequiredClaim(_) => "missing_claim",
                    _ => "malformed_token",
                },
            })
    }
}

/// The `alg` of a token's header, when the header is readable JSON.
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_string)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// base64 of 32 bytes, for settings in tests.
    pub(crate) const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn tokens() -> Tokens {
        Tokens::new(
            b"0123456789abcdef0123456789abcdef",
            "vctp",
            "vctp-api",
            3600,
            60,
        )
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn reason(result: Result<Claims, Error>) -> &'static str {
        match result {
            Err(e) => e.reason(),
            Ok(claims) => panic!("token accepted: {claims:?}"),
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn an_issued_token_verifies_to_its_claims() {
        let tokens = tokens();
        let groups = vec!["cn=admins,dc=x".to_string()];
        let (token, claims) = tokens
            .issue(
                "alice",
                "uid=alice,dc=x",
                Role::Admin,
                groups.clone(),
                now(),
            )
            .unwrap();
        let back = tokens.verify(&token).unwrap();
        assert_eq!(back, claims);
        assert_eq!(back.groups, groups);
        assert_eq!(back.exp - back.iat, 3600);
        let (other, _) = tokens
            .issue("alice", "uid=alice,dc=x", Role::Admin, vec![], now())
            .unwrap();
        assert_ne!(token, other, "jti makes every token distinct");
    }

    #[test]
    fn a_tampered_payload_or_another_key_fails_the_signature() {
        let tokens = tokens();
        let (token, _) = tokens
            .issue("victor", "uid=victor,dc=x", Role::Viewer, vec![], now())
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap();
        let forged = String::from_utf8(payload)
            .unwrap()
            .replace("\"viewer\"", "\"admin\"");
        let tampered = format!("{}.{}.{}", parts[0], b64(forged.as_bytes()), parts[2]);
        assert_eq!(reason(tokens.verify(&tampered)), "invalid_signature");
        let other = Tokens::new(
            b"another key another key another k",
            "vctp",
            "vctp-api",
            60,
            60,
        );
        assert_eq!(reason(other.verify(&token)), "invalid_signature");
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let tokens = tokens();
        let (token, _) = tokens
            .issue("alice", "uid=alice,dc=x", Role::Admin, vec![], now())
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(reason(tokens.verify(&none)), "alg_not_allowed");
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &tokens.verify(&token).unwrap(),
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(reason(tokens.verify(&hs512)), "alg_not_allowed");
        assert_eq!(reason(tokens.verify("not.a.token")), "malformed_token");
    }

    #[test]
    fn expiry_is_checked_with_the_clock_skew_as_leeway() {
        let tokens = tokens();
        let (_, mut claims) = tokens
            .issue("alice", "uid=alice,dc=x", Role::Admin, vec![], now())
            .unwrap();
        claims.iat = now() - 7200;
        claims.nbf = claims.iat;
        claims.exp = now() - 30;
        assert!(
            tokens.verify(&tokens.sign(&claims).unwrap()).is_ok(),
            "30 s past expiry is within the 60 s skew"
        );
        claims.exp = now() - 120;
        assert_eq!(
            reason(tokens.verify(&tokens.sign(&claims).unwrap())),
            "expired"
        );
        let strict = Tokens::new(
            b"0123456789abcdef0123456789abcdef",
            "vctp",
            "vctp-api",
            60,
            0,
        );
        claims.exp = now() - 5;
        assert_eq!(
            reason(strict.verify(&strict.sign(&claims).unwrap())),
            "expired"
        );
    }

    #[test]
    fn a_token_not_valid_yet_is_refused_beyond_the_skew() {
        let tokens = tokens();
        let (_, mut claims) = tokens
            .issue("alice", "uid=alice,dc=x", Role::Admin, vec![], now())
            .unwrap();
        claims.nbf = now() + 600;
        claims.exp = now() + 3600;
        assert_eq!(
            reason(tokens.verify(&tokens.sign(&claims).unwrap())),
            "not_yet_valid"
        );
    }

    #[test]
    fn wrong_audience_and_issuer_are_refused() {
        let tokens = tokens();
        let (_, claims) = tokens
            .issue("alice", "uid=alice,dc=x", Role::Admin, vec![], now())
            .unwrap();
        let other_audience = Claims {
            aud: "someone-else".into(),
            ..claims.clone()
        };
        assert_eq!(
            reason(tokens.verify(&tokens.sign(&other_audience).unwrap())),
            "wrong_audience"
        );
        let other_issuer = Claims {
            iss: "evil".into(),
            ..claims
        };
        assert_eq!(
            reason(tokens.verify(&tokens.sign(&other_issuer).unwrap())),
            "wrong_issuer"
        );
    }
}
