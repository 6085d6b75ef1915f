//! Authentication through `router(state).oneshot(request)`: logins against the real OpenLDAP
//! server of scripts/ldap.sh (`#[ignore]`, run by scripts/test.sh), and token, role and mode
//! checks with tokens signed here. Every case also reads the `auth_audit` events it caused,
//! and no captured log line may contain a password or a token.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::app::App;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use vctp::api::router;
use vctp::auth::{Auth, Claims, Role, Tokens};
use vctp::config::Settings;

/// base64 of the 32-byte key below.
const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const ADMINS: &str = "cn=vctp-admins,ou=Groups,dc=example,dc=com";
const VIEWERS: &str = "cn=vctp-viewers,ou=Groups,dc=example,dc=com";
const SPECIAL_USER: &str = "o'neil (ops), jr";

/// The test directory of scripts/ldap.sh.
struct Ldap {
    url: String,
    ldaps_url: String,
    ca: String,
    base_dn: String,
    user_base_dn: String,
    bind_dn: String,
    bind_password: String,
    password: String,
}

fn ldap_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts OpenLDAP (scripts/ldap.sh)"
        )
    })
}

fn ldap() -> Ldap {
    Ldap {
        url: ldap_env("VCTP_TEST_LDAP_URL"),
        ldaps_url: ldap_env("VCTP_TEST_LDAPS_URL"),
        ca: ldap_env("VCTP_TEST_LDAP_CA"),
        base_dn: ldap_env("VCTP_TEST_LDAP_BASE_DN"),
        user_base_dn: ldap_env("VCTP_TEST_LDAP_USER_BASE_DN"),
        bind_dn: ldap_env("VCTP_TEST_LDAP_BIND_DN"),
        bind_password: ldap_env("VCTP_TEST_LDAP_BIND_PASSWORD"),
        password: ldap_env("VCTP_TEST_LDAP_PASSWORD"),
    }
}

/// Settings text with auth on: the admins and viewers groups mapped (spelled differently from
/// the directory, so DN normalization matters), platform-operators mapped to viewer.
fn settings_text(url: &str, base_dn: &str, extra: &str) -> String {
    format!(
        r#"settings:
  auth_enabled: true
  ldap_bind_address: "{url}"
  ldap_base_dn: "{base_dn}"
  auth_jwt_signing_key: "{KEY_B64}"
  auth_group_role_mappings:
    "CN=vctp-admins, OU=Groups, DC=example, DC=com": admin
    "cn=VCTP-Viewers,ou=groups,dc=example,dc=com": viewer
    "cn=platform-operators,ou=Groups,dc=example,dc=com": viewer
    "cn=unique-viewers,ou=Groups,dc=example,dc=com": viewer
{extra}"#
    )
}

fn auth_from(text: &str) -> Auth {
    let settings = Settings::parse(text, Path::new("auth-test.yml")).unwrap();
    Auth::from_settings(&settings).unwrap()
}

/// Auth against the test directory over StartTLS, trusting its CA, plus `extra` settings.
fn directory_auth(ldap: &Ldap, extra: &str) -> Auth {
    auth_from(&directory_auth_text(ldap, extra))
}

/// Auth whose directory is never reached (token and role checks only).
fn offline_auth(mode: &str) -> Auth {
    auth_from(&settings_text(
        "ldap://127.0.0.1:1",
        "dc=example,dc=com",
        &format!("  auth_mode: {mode}\n"),
    ))
}

async fn app(auth: Auth) -> App {
    let mut app = common::app::app(common::sqlite().await);
    app.state = app.state.with_auth(auth);
    app
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

async fn call(app: &App, request: Request<Body>) -> Answer {
    let response = router(app.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        challenge,
        body,
    }
}

fn login_request(body: Value) -> Request<Body> {
    Request::post("/api/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn login(app: &App, username: &str, password: &str) -> Answer {
    call(
        app,
        login_request(json!({"username": username, "password": password})),
    )
    .await
}

fn request(method: Method, uri: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::empty()).unwrap()
}

async fn get(app: &App, uri: &str, token: Option<&str>) -> Answer {
    call(app, request(Method::GET, uri, token)).await
}

/// Every log line of the test, as JSON, from a subscriber set for this (current-thread) test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The `auth_audit` events so far, oldest first, then forgets them.
    fn take_audit(&self) -> Vec<Value> {
        let events = self
            .text()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|event| {
                event["target"] == "auth_audit" && event["fields"]["decision"].is_string()
            })
            .map(|event| event["fields"].clone())
            .collect();
        self.0.lock().unwrap().clear();
        events
    }

    /// The one audit decision since the last call: (decision, reason).
    fn decision(&self) -> (String, String) {
        let events = self.take_audit();
        assert_eq!(events.len(), 1, "one audit event expected: {events:?}");
        (
            events[0]["decision"].as_str().unwrap().to_string(),
            events[0]["reason"].as_str().unwrap().to_string(),
        )
    }

    fn assert_free_of(&self, secrets: &[&str]) {
        let text = self.text();
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "a log line contains a secret: {text}"
            );
        }
    }
}

fn deny(reason: &str) -> (String, String) {
    ("deny".to_string(), reason.to_string())
}

/// Tokens signed with the settings' key, issuer and audience.
fn tokens() -> Tokens {
    Tokens::new(KEY, "vctp", "vctp-api", 3600, 60)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn token_for(role: Role) -> String {
    let groups = vec![match role {
        Role::Admin => ADMINS.to_string(),
        Role::Viewer => VIEWERS.to_string(),
    }];
    tokens()
        .issue(
            "someone",
            "uid=someone,dc=example,dc=com",
            role,
            groups,
            now(),
        )
        .unwrap()
        .0
}

fn forged(change: impl FnOnce(&mut Claims)) -> String {
    let tokens = tokens();
    let (_, mut claims) = tokens
        .issue(
            "alice",
            "uid=alice,dc=example,dc=com",
            Role::Admin,
            vec![],
            now(),
        )
        .unwrap();
    change(&mut claims);
    tokens.sign(&claims).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn admins_and_viewers_log_in_and_me_shows_their_role_and_group_dns() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let app = app(directory_auth(&ldap, "")).await;
    let mut secrets = vec![ldap.password.clone()];
    for (user, role, group) in [("alice", "admin", ADMINS), ("victor", "viewer", VIEWERS)] {
        let answer = login(&app, user, &ldap.password).await;
        assert_eq!(answer.status, StatusCode::OK, "{user}: {}", answer.body);
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(answer.body["expires_in"], 3600);
        assert_eq!(answer.body["role"], role);
        let token = answer.body["access_token"].as_str().unwrap().to_string();
        let events = log.take_audit();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            (
                &events[0]["decision"],
                &events[0]["username"],
                &events[0]["role"]
            ),
            (&json!("allow"), &json!(user), &json!(role))
        );

        let me = get(&app, "/api/auth/me", Some(&token)).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        assert_eq!(me.body["username"], user);
        assert_eq!(me.body["role"], role);
        assert_eq!(me.body["dn"], format!("uid={user},{}", ldap.user_base_dn));
        assert_eq!(
            me.body["groups"],
            json!([group]),
            "full group DNs as the directory has them"
        );
        let vcenters = get(&app, "/api/vcenters", Some(&token)).await;
        assert_eq!(
            (vcenters.status, vcenters.body),
            (StatusCode::OK, json!([]))
        );
        secrets.push(token);
    }
    log.assert_free_of(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let app = app(directory_auth(&ldap, "")).await;
    let wrong = login(&app, "alice", "not-the-password").await;
    assert_eq!(log.decision(), deny("invalid_credentials"));
    let unknown = login(&app, "mallory", &ldap.password).await;
    assert_eq!(log.decision(), deny("user_not_found"));
    for answer in [&wrong, &unknown] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.challenge.as_deref(), Some("Bearer"));
    }
    assert_eq!(wrong.body, unknown.body, "no hint which half was wrong");
    assert_eq!(wrong.body, json!({"error": "invalid username or password"}));
    log.assert_free_of(&[&ldap.password, "not-the-password"]);
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn a_user_in_no_mapped_group_is_403() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let app = app(directory_auth(&ldap, "")).await;
    let answer = login(&app, "olga", &ldap.password).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert_eq!(log.decision(), deny("no_mapped_role"));
    assert!(answer.body["access_token"].is_null());
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn the_allowlist_refuses_a_user_whose_mapped_group_is_not_in_ldap_groups() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let allowlist = format!(
        "  ldap_groups:\n    - \"{ADMINS}\"\n    - \"{}\"\n",
        VIEWERS.to_uppercase()
    );
    let allowing = app(directory_auth(&ldap, &allowlist)).await;
    let paula = login(&allowing, "paula", &ldap.password).await;
    assert_eq!(paula.status, StatusCode::FORBIDDEN, "{}", paula.body);
    assert_eq!(log.decision(), deny("not_in_allowed_group"));
    let victor = login(&allowing, "victor", &ldap.password).await;
    assert_eq!(victor.status, StatusCode::OK, "{}", victor.body);
    assert_eq!(log.decision(), ("allow".to_string(), "login".to_string()));

    let without = app(directory_auth(&ldap, "")).await;
    let paula = login(&without, "paula", &ldap.password).await;
    assert_eq!(
        (paula.status, &paula.body["role"]),
        (StatusCode::OK, &json!("viewer")),
        "without ldap_groups a mapped group is enough"
    );
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn filter_injection_in_the_username_matches_nobody() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let app = app(directory_auth(&ldap, "")).await;
    for username in ["*)(uid=*))(|(uid=*", "alice)(|(objectClass=*", "*", "ali*"] {
        let answer = login(&app, username, &ldap.password).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{username}");
        // user_not_found: the escaped filter matched no entry, so nobody was bound; unescaped,
        // `*` would match every user (ambiguous_user) and `alice)(|…` alice.
        assert_eq!(log.decision(), deny("user_not_found"), "{username}");
    }
    let special = login(&app, SPECIAL_USER, &ldap.password).await;
    assert_eq!(special.status, StatusCode::OK, "{}", special.body);
    assert_eq!(special.body["role"], "viewer");
    assert_eq!(special.body["username"], SPECIAL_USER);
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn groups_without_member_of_are_found_by_searching_their_members() {
    let ldap = ldap();
    let app = app(directory_auth(&ldap, "")).await;
    // gus is only in a groupOfUniqueNames, for which the memberof overlay keeps no memberOf.
    let answer = login(&app, "gus", &ldap.password).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let token = answer.body["access_token"].as_str().unwrap();
    let me = get(&app, "/api/auth/me", Some(token)).await;
    assert_eq!(
        me.body["groups"],
        json!(["cn=unique-viewers,ou=Groups,dc=example,dc=com"])
    );
    assert_eq!(me.body["role"], "viewer");
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn an_empty_password_is_refused_without_a_bind() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let app = app(directory_auth(&ldap, "")).await;
    let answer = login(&app, "alice", "").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.body,
        json!({"error": "invalid username or password"})
    );
    assert_eq!(log.decision(), deny("empty_password"));
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn ldaps_with_the_ca_file_logs_in_and_an_untrusted_certificate_is_503() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let ldaps = |extra: &str| {
        auth_from(&settings_text(
            &ldap.ldaps_url,
            &ldap.base_dn,
            &format!("  ldap_user_base_dn: \"{}\"\n{extra}", ldap.user_base_dn),
        ))
    };
    let trusted = app(ldaps(&format!("  ldap_trust_cert_file: \"{}\"\n", ldap.ca))).await;
    let answer = login(&trusted, "alice", &ldap.password).await;
    assert_eq!(
        (answer.status, &answer.body["role"]),
        (StatusCode::OK, &json!("admin")),
        "{}",
        answer.body
    );
    log.take_audit();

    let untrusted = app(ldaps("")).await;
    let answer = login(&untrusted, "alice", &ldap.password).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(log.decision(), deny("ldap_unavailable"));

    let unverified = app(ldaps("  ldap_disable_validation: true\n")).await;
    let answer = login(&unverified, "alice", &ldap.password).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn starttls_is_used_on_ldap_urls_unless_ldap_insecure_and_a_service_account_can_search() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    // StartTLS against a CA we do not trust fails: proof the upgrade really happens.
    let untrusted = app(auth_from(&settings_text(
        &ldap.url,
        &ldap.base_dn,
        &format!("  ldap_user_base_dn: \"{}\"\n", ldap.user_base_dn),
    )))
    .await;
    let answer = login(&untrusted, "victor", &ldap.password).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(log.decision(), deny("ldap_unavailable"));
    assert_eq!(
        answer.body,
        json!({"error": "the directory server is unavailable"})
    );

    let plain = app(auth_from(&settings_text(
        &ldap.url,
        &ldap.base_dn,
        &format!(
            "  ldap_insecure: true\n  ldap_bind_dn: \"{}\"\n  ldap_bind_password: \"{}\"\n",
            ldap.bind_dn, ldap.bind_password
        ),
    )))
    .await;
    let answer = login(&plain, "victor", &ldap.password).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    log.assert_free_of(&[&ldap.password, &ldap.bind_password]);

    let wrong_account = app(auth_from(&settings_text(
        &ldap.url,
        &ldap.base_dn,
        &format!(
            "  ldap_insecure: true\n  ldap_bind_dn: \"{}\"\n  ldap_bind_password: wrong\n",
            ldap.bind_dn
        ),
    )))
    .await;
    log.take_audit();
    let answer = login(&wrong_account, "victor", &ldap.password).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(log.decision(), deny("ldap_error"));
}

#[tokio::test]
async fn an_unreachable_directory_is_503() {
    let (log, _guard) = Captured::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = app(auth_from(&settings_text(
        &format!("ldap://127.0.0.1:{port}"),
        "dc=example,dc=com",
        "  ldap_timeout_seconds: 2\n",
    )))
    .await;
    let answer = login(&app, "alice", "secret-password").await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(log.decision(), deny("ldap_unavailable"));
    log.assert_free_of(&["secret-password"]);
}

#[tokio::test]
async fn bad_login_bodies_are_400() {
    let (log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    for body in [
        json!({"username": "alice"}),
        json!({"username": "", "password": "x"}),
        json!({"username": 1, "password": "x"}),
    ] {
        let answer = call(&app, login_request(body.clone())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer.body["error"].is_string(), "{}", answer.body);
        assert_eq!(log.decision(), deny("bad_request"), "{body}");
    }
    let not_json = Request::post("/api/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{"))
        .unwrap();
    assert_eq!(call(&app, not_json).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_tokens_are_401_with_their_reason() {
    let (log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    let good = token_for(Role::Admin);
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        (forged(|c| c.exp = now() - 600), "expired"),
        (
            format!("{}.{}.{}", parts[0], parts[1], b64(b"not the signature")),
            "invalid_signature",
        ),
        (
            format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]),
            "alg_not_allowed",
        ),
        (forged(|c| c.aud = "another-api".into()), "wrong_audience"),
        (forged(|c| c.iss = "someone-else".into()), "wrong_issuer"),
        (forged(|c| c.nbf = now() + 3600), "not_yet_valid"),
        (
            Tokens::new(
                b"ANOTHER KEY ANOTHER KEY ANOTHER!",
                "vctp",
                "vctp-api",
                60,
                60,
            )
            .issue("alice", "uid=alice", Role::Admin, vec![], now())
            .unwrap()
            .0,
            "invalid_signature",
        ),
        ("garbage".to_string(), "malformed_token"),
    ];
    for (token, reason) in &cases {
        let answer = get(&app, "/api/vcenters", Some(token)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{reason}");
        assert_eq!(
            answer.challenge.as_deref(),
            Some("Bearer error=\"invalid_token\""),
            "{reason}"
        );
        assert_eq!(log.decision(), deny(reason));
    }
    let skewed = forged(|c| c.exp = now() - 20);
    assert_eq!(
        get(&app, "/api/vcenters", Some(&skewed)).await.status,
        StatusCode::OK,
        "20 s past expiry is within the 60 s clock skew"
    );
    let basic = call(
        &app,
        Request::get("/api/vcenters")
            .header(header::AUTHORIZATION, "Basic YWxpY2U6eA==")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(log.decision(), deny("malformed_header"));
    let mut secrets: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    secrets.push(&good);
    log.assert_free_of(&secrets);
}

#[tokio::test]
async fn a_viewer_calling_an_admin_route_is_403_and_an_admin_passes() {
    let (log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    for path in ["/api/snapshots/aggregate", "/api/vcenters/cache/rebuild"] {
        let viewer = call(
            &app,
            request(Method::POST, path, Some(&token_for(Role::Viewer))),
        )
        .await;
        assert_eq!(viewer.status, StatusCode::FORBIDDEN, "{path}");
        let events = log.take_audit();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            (
                &events[0]["reason"],
                &events[0]["required"],
                &events[0]["role"]
            ),
            (
                &json!("insufficient_role"),
                &json!("admin"),
                &json!("viewer")
            )
        );
        let admin = call(
            &app,
            request(Method::POST, path, Some(&token_for(Role::Admin))),
        )
        .await;
        assert!(
            admin.status != StatusCode::FORBIDDEN && admin.status != StatusCode::UNAUTHORIZED,
            "{path}: an admin gets past auth to the router ({})",
            admin.status
        );
        assert_eq!(
            log.decision().0,
            "allow",
            "{path}: the admin's action is audited"
        );
    }
    let viewer_reads = get(&app, "/api/vcenters", Some(&token_for(Role::Viewer))).await;
    assert_eq!(viewer_reads.status, StatusCode::OK);
    let pprof = get(&app, "/debug/pprof/", Some(&token_for(Role::Viewer))).await;
    assert_eq!(pprof.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn debug_pprof_answers_admins_only_and_only_when_enabled() {
    let (_log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    let off = get(&app, "/debug/pprof/", Some(&token_for(Role::Admin))).await;
    assert_eq!(
        off.status,
        StatusCode::NOT_FOUND,
        "settings.enable_pprof is off"
    );
    let mut app = app;
    app.state = app.state.with_pprof(true);
    assert_eq!(
        get(&app, "/debug/pprof/", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&app, "/debug/pprof/", Some(&token_for(Role::Viewer)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let admin = get(&app, "/debug/pprof/", Some(&token_for(Role::Admin))).await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(
        admin.body["rss_bytes"].as_u64().unwrap() > 0,
        "{}",
        admin.body
    );
    assert!(
        admin.body["tokio_workers"].as_u64().unwrap() >= 1,
        "{}",
        admin.body
    );
}

#[tokio::test]
async fn required_mode_needs_a_token_on_the_api_but_not_on_probes_metrics_or_login() {
    let (log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    for path in [
        "/api/vcenters",
        "/api/reports",
        "/api/reports/download?key=reports/daily/2026-03-10/all.xlsx",
        "/api/auth/me",
    ] {
        let answer = get(&app, path, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.challenge.as_deref(), Some("Bearer"), "{path}");
        assert_eq!(answer.body, json!({"error": "missing bearer token"}));
        assert_eq!(log.decision(), deny("missing_token"));
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = router(app.state.clone())
            .oneshot(request(Method::GET, path, None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // Login is reachable without a token (here it fails later: the body is bad).
    let login = call(&app, login_request(json!({}))).await;
    assert_eq!(login.status, StatusCode::BAD_REQUEST);
    let with_token = get(&app, "/api/vcenters", Some(&token_for(Role::Viewer))).await;
    assert_eq!(
        (with_token.status, with_token.body),
        (StatusCode::OK, json!([]))
    );
}

#[tokio::test]
async fn optional_mode_accepts_no_token_but_checks_a_given_one() {
    let (log, _guard) = Captured::start();
    let app = app(offline_auth("optional")).await;
    assert_eq!(
        get(&app, "/api/vcenters", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, script_post("/api/vcenters")).await.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "no token passes auth even on admin routes"
    );
    assert_eq!(
        log.decision(),
        ("allow".to_string(), "anonymous".to_string()),
        "and the anonymous admin action is audited"
    );
    let bad = get(&app, "/api/vcenters", Some("garbage")).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(log.decision(), deny("malformed_token"));
    let expired = get(
        &app,
        "/api/vcenters",
        Some(&forged(|c| c.exp = now() - 600)),
    )
    .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    let viewer = call(
        &app,
        request(
            Method::POST,
            "/api/vcenters",
            Some(&token_for(Role::Viewer)),
        ),
    )
    .await;
    assert_eq!(
        viewer.status,
        StatusCode::FORBIDDEN,
        "a given token's role counts"
    );
    let me = get(&app, "/api/auth/me", None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "me needs an identity");
    let me = get(&app, "/api/auth/me", Some(&token_for(Role::Viewer))).await;
    assert_eq!(me.body["role"], "viewer");
}

#[tokio::test]
async fn disabled_auth_leaves_everything_open_and_has_no_login() {
    let (log, _guard) = Captured::start();
    let settings = Settings::parse("settings: {}\n", Path::new("auth-test.yml")).unwrap();
    let app = app(Auth::from_settings(&settings).unwrap()).await;
    assert_eq!(
        get(&app, "/api/vcenters", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "/api/vcenters", Some("garbage")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, script_post("/api/vcenters")).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let login = login(&app, "alice", "x").await;
    assert_eq!(login.status, StatusCode::NOT_FOUND, "{}", login.body);
    let _ = log.take_audit();
}

#[test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
fn vctp_serve_with_auth_settings_logs_in_over_http() {
    use std::process::Command;
    let ldap = ldap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vctp.yml");
    let settings = directory_auth_text(
        &ldap,
        &format!(
            "  reports_dir: \"{}\"\n",
            dir.path().join("reports").display()
        ),
    );
    // The key comes from the environment, as the chart passes it from a Secret.
    let key_line = format!("  auth_jwt_signing_key: \"{KEY_B64}\"\n");
    assert!(settings.contains(&key_line));
    std::fs::write(&config, settings.replace(&key_line, "")).unwrap();
    let db = dir.path().join("db.sqlite3");
    let (mut serve, base) =
        common::start_serve(&config, &db, &[("VCTP_AUTH_JWT_SIGNING_KEY", KEY_B64)]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (anonymous, login, me) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let anonymous = client
            .get(format!("{base}/api/vcenters"))
            .send()
            .await
            .unwrap()
            .status();
        let body = json!({"username": "alice", "password": ldap.password});
        let login = client
            .post(format!("{base}/api/auth/login"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let login: Value = serde_json::from_str(&login).unwrap();
        let token = login["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let me = client
            .get(format!("{base}/api/auth/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let me: Value = serde_json::from_str(&me).unwrap();
        (anonymous, login, me)
    });
    let status = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(serve.wait().unwrap().success());
    assert_eq!(anonymous, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(login["role"], "admin", "{login}");
    assert_eq!(me["groups"], json!([ADMINS]), "{me}");
}

fn directory_auth_text(ldap: &Ldap, extra: &str) -> String {
    settings_text(
        &ldap.url,
        &ldap.base_dn,
        &format!(
            "  ldap_user_base_dn: \"{}\"\n  ldap_trust_cert_file: \"{}\"\n{extra}",
            ldap.user_base_dn, ldap.ca
        ),
    )
}

#[test]
fn vctp_serve_refuses_to_start_with_invalid_auth_settings() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vctp.yml");
    std::fs::write(&config, "settings:\n  auth_mode: required\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vctp"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("VCTP_LISTEN", "127.0.0.1:0")
        .env(
            "VCTP_DATABASE_URL",
            dir.path().join("db.sqlite3").to_str().unwrap(),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("settings.auth_mode"), "{stderr}");
}

/// A browser's form POST from another site: a foreign `Origin`, a form body, no token.
fn cross_site_form(path: &str, origin: Option<&str>) -> Request<Body> {
    let mut builder = Request::post(path)
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        builder = builder.header(header::ORIGIN, origin);
    }
    builder.body(Body::from("confirm=1")).unwrap()
}

#[tokio::test]
async fn cross_site_form_posts_to_admin_routes_are_refused_with_auth_disabled() {
    let (_log, _guard) = Captured::start();
    let app = app(Auth::disabled()).await;
    for path in ["/api/vcenters/cache/rebuild", "/api/snapshots/repair/all"] {
        let foreign = call(&app, cross_site_form(path, Some("https://evil.example"))).await;
        assert_eq!(
            foreign.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            foreign.body
        );
        let message = foreign.body["error"].as_str().unwrap();
        assert!(message.contains("https://evil.example"), "{message}");
        // Without Origin (an old browser, or one told not to send it) the missing token is.
        let no_origin = call(&app, cross_site_form(path, None)).await;
        assert_eq!(no_origin.status, StatusCode::FORBIDDEN, "{path}");
        let message = no_origin.body["error"].as_str().unwrap();
        assert!(message.contains("CSRF token"), "{message}");
        let referer = Request::post(path)
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::REFERER, "http://evil.example/page")
            .header(CSRF_HEADER, "t")
            .body(Body::empty())
            .unwrap();
        let answer = call(&app, referer).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
        assert!(
            answer.body["error"]
                .as_str()
                .unwrap()
                .contains("evil.example")
        );
    }
    // The same requests from this server's own pages pass.
    let own = Request::post("/api/vcenters/cache/rebuild")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .header(header::COOKIE, "vctp_csrf=abc")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("csrf_token=abc"))
        .unwrap();
    let answer = call(&app, own).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let wrong = Request::post("/api/vcenters/cache/rebuild")
        .header(header::COOKIE, "vctp_csrf=abc")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("csrf_token=abd"))
        .unwrap();
    assert_eq!(call(&app, wrong).await.status, StatusCode::FORBIDDEN);
    // A script sends the header, which no cross-site form can.
    let script = script_post("/api/vcenters/cache/rebuild");
    assert_eq!(call(&app, script).await.status, StatusCode::OK);
}

const CSRF_HEADER: &str = "x-csrf-token";

/// An unsafe request without a token, as a script sends it: the CSRF header, no cookie.
fn script_post(path: &str) -> Request<Body> {
    Request::post(path)
        .header(CSRF_HEADER, "1")
        .body(Body::empty())
        .unwrap()
}

/// A request carrying `token` in the session cookie, as the browser sends it after /login.
fn with_session(method: Method, uri: &str, token: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri).header(
        header::COOKIE,
        format!("vctp_session={token}; vctp_csrf=tok"),
    )
}

#[tokio::test]
async fn cookie_authenticated_posts_need_the_csrf_token_and_bearer_posts_do_not() {
    let (_log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    let admin = token_for(Role::Admin);
    let path = "/api/vcenters/cache/rebuild";
    let bare = with_session(Method::POST, path, &admin)
        .body(Body::empty())
        .unwrap();
    let answer = call(&app, bare).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("CSRF token")
    );
    let wrong = with_session(Method::POST, path, &admin)
        .header(CSRF_HEADER, "other")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, wrong).await.status, StatusCode::FORBIDDEN);
    let header_token = with_session(Method::POST, path, &admin)
        .header(CSRF_HEADER, "tok")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, header_token).await.status, StatusCode::OK);
    let form_token = with_session(Method::POST, path, &admin)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("csrf_token=tok"))
        .unwrap();
    assert_eq!(call(&app, form_token).await.status, StatusCode::OK);
    // A viewer's session passes CSRF but not the role check.
    let viewer = with_session(Method::POST, path, &token_for(Role::Viewer))
        .header(CSRF_HEADER, "tok")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, viewer).await.status, StatusCode::FORBIDDEN);
    // Bearer clients are not CSRF-able and keep working unchanged.
    let bearer = call(&app, request(Method::POST, path, Some(&admin))).await;
    assert_eq!(bearer.status, StatusCode::OK, "{}", bearer.body);
}

/// The answer's status, `Location` and `Set-Cookie` headers and body text.
async fn raw(
    app: &App,
    request: Request<Body>,
) -> (StatusCode, Option<String>, Vec<String>, String) {
    let response = router(app.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        location,
        cookies,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn under_required_pages_redirect_to_login_and_a_session_cookie_shows_them() {
    let (_log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    for path in [
        "/",
        "/vcenters",
        "/snapshots/hourly",
        "/vm/trace?vm=vm-1&view=daily",
        "/reports",
    ] {
        let (status, location, _, body) = raw(&app, request(Method::GET, path, None)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}: {body}");
        let next = url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
        assert_eq!(location, Some(format!("/login?next={next}")), "{path}");
    }
    // The API still answers 401, and the login page and assets stay public.
    assert_eq!(
        get(&app, "/api/vcenters", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, cookies, form) =
        raw(&app, request(Method::GET, "/login?next=/reports", None)).await;
    assert_eq!(status, StatusCode::OK, "{form}");
    assert!(
        form.contains(r#"name="password""#) && form.contains(r#"value="/reports""#),
        "{form}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("vctp_csrf=")),
        "{cookies:?}"
    );
    let (status, ..) = raw(&app, request(Method::GET, "/assets/vctp.css", None)).await;
    assert_eq!(status, StatusCode::OK);

    let viewer = token_for(Role::Viewer);
    let (status, _, _, page) = raw(
        &app,
        with_session(Method::GET, "/", &viewer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("someone") && page.contains(r#"action="/logout""#),
        "{page}"
    );
    assert!(
        !page.contains("/api/vcenters/cache/rebuild"),
        "no admin controls for a viewer"
    );
    let (_, _, _, page) = raw(
        &app,
        with_session(Method::GET, "/", &token_for(Role::Admin))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        page.contains("/api/vcenters/cache/rebuild")
            && page.contains(r#"name="csrf_token" value="tok""#),
        "{page}"
    );
    // A bearer token shows the pages too; an expired session is no viewer.
    let (status, ..) = raw(&app, request(Method::GET, "/reports", Some(&viewer))).await;
    assert_eq!(status, StatusCode::OK);
    let expired = forged(|c| c.exp = now() - 600);
    let (status, location, ..) = raw(
        &app,
        with_session(Method::GET, "/reports", &expired)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login?next=%2Freports"))
    );
}

#[tokio::test]
async fn under_optional_pages_are_public_and_a_logged_in_user_sees_their_name() {
    let (_log, _guard) = Captured::start();
    let app = app(offline_auth("optional")).await;
    let (status, _, _, page) = raw(&app, request(Method::GET, "/", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"href="/login"#) && !page.contains("/logout"),
        "{page}"
    );
    let (_, _, _, page) = raw(
        &app,
        with_session(Method::GET, "/", &token_for(Role::Viewer))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        page.contains("someone") && page.contains("/logout"),
        "{page}"
    );
    // Disabled: as before, no login at all.
    let off = self::app(Auth::disabled()).await;
    let (status, _, _, page) = raw(&off, request(Method::GET, "/", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("/login") && !page.contains("/logout"),
        "{page}"
    );
    assert_eq!(
        raw(&off, request(Method::GET, "/login", None)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn logout_clears_the_session_cookie_and_needs_the_csrf_token() {
    let (_log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    let viewer = token_for(Role::Viewer);
    let no_token = with_session(Method::POST, "/logout", &viewer)
        .body(Body::empty())
        .unwrap();
    assert_eq!(raw(&app, no_token).await.0, StatusCode::FORBIDDEN);
    let logout = with_session(Method::POST, "/logout", &viewer)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("csrf_token=tok"))
        .unwrap();
    let (status, location, cookies, _) = raw(&app, logout).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    let session = cookies
        .iter()
        .find(|c| c.starts_with("vctp_session="))
        .expect("clears the session");
    assert!(
        session.starts_with("vctp_session=;") && session.contains("Max-Age=0"),
        "{session}"
    );
}

#[tokio::test]
async fn every_admin_route_decision_is_audited_with_subject_token_id_and_outcome() {
    let (log, _guard) = Captured::start();
    let app = app(offline_auth("required")).await;
    let (admin, claims) = tokens()
        .issue(
            "alice",
            "uid=alice,dc=example,dc=com",
            Role::Admin,
            vec![],
            now(),
        )
        .unwrap();
    let path = "/api/vcenters/cache/rebuild";
    assert_eq!(
        call(&app, request(Method::POST, path, Some(&admin)))
            .await
            .status,
        StatusCode::OK
    );
    let events = log.take_audit();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(
        (
            &event["decision"],
            &event["username"],
            &event["token_id"],
            &event["method"],
            &event["path"],
            &event["status"]
        ),
        (
            &json!("allow"),
            &json!("alice"),
            &json!(claims.jti),
            &json!("POST"),
            &json!(path),
            &json!(200)
        ),
        "{event}"
    );
    let (viewer, viewer_claims) = tokens()
        .issue(
            "victor",
            "uid=victor,dc=example,dc=com",
            Role::Viewer,
            vec![],
            now(),
        )
        .unwrap();
    call(&app, request(Method::POST, path, Some(&viewer))).await;
    let events = log.take_audit();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (
            &events[0]["decision"],
            &events[0]["username"],
            &events[0]["token_id"],
            &events[0]["status"]
        ),
        (
            &json!("deny"),
            &json!("victor"),
            &json!(viewer_claims.jti),
            &json!(403)
        ),
    );
    // Reads are not admin decisions; with auth disabled an admin action is still recorded.
    get(&app, "/api/vcenters", Some(&viewer)).await;
    assert!(log.take_audit().is_empty());
    let off = self::app(Auth::disabled()).await;
    assert_eq!(call(&off, script_post(path)).await.status, StatusCode::OK);
    let events = log.take_audit();
    assert_eq!(
        (
            events.len(),
            &events[0]["decision"],
            &events[0]["reason"],
            &events[0]["status"]
        ),
        (1, &json!("allow"), &json!("auth_disabled"), &json!(200)),
        "{events:?}"
    );
    log.assert_free_of(&[&admin, &viewer]);
}

fn login_from(remote: &str, username: &str) -> Request<Body> {
    let mut request = login_request(json!({"username": username, "password": "pw"}));
    let addr: std::net::SocketAddr = remote.parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    request
}

#[tokio::test]
async fn logins_are_rate_limited_per_client_address_and_per_username() {
    let (log, _guard) = Captured::start();
    let limits = "  auth_login_max_attempts_per_address: 4\n  auth_login_max_attempts_per_username: 2\n  auth_login_window_seconds: 120\n  auth_mode: required\n";
    let app = app(auth_from(&settings_text(
        "ldap://127.0.0.1:1",
        "dc=example,dc=com",
        limits,
    )))
    .await;
    // The directory is unreachable: every attempt that gets through is a 503.
    for _ in 0..2 {
        assert_eq!(
            call(&app, login_from("10.0.0.1:5000", "alice"))
                .await
                .status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let response = router(app.state.clone())
        .oneshot(login_from("10.0.0.2:5000", "alice"))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "per username, from any address"
    );
    let retry: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 120, "{retry}");
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many login attempts"),
        "{body}"
    );
    assert_eq!(
        log.take_audit().last().unwrap()["reason"],
        "too_many_attempts"
    );
    // Per address: other usernames from 10.0.0.1 get two more tries, then 429.
    for user in ["bob", "carol"] {
        assert_eq!(
            call(&app, login_from("10.0.0.1:6000", user)).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(
        call(&app, login_from("10.0.0.1:7000", "dave")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        call(&app, login_from("10.0.0.3:7000", "dave")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// A relay in front of the plain-LDAP directory that records the operation of every message
/// the client sends (bind, search, unbind, …), so a test can count what a login costs.
async fn ldap_relay(directory_url: &str) -> (String, Arc<Mutex<Vec<&'static str>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = directory_url.trim_start_matches("ldap://").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    let ops = Arc::new(Mutex::new(Vec::new()));
    let recorded = ops.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
            let ops = recorded.clone();
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = client_read.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&chunk[..n]);
                    while let Some((op, length)) = ldap_message(&pending) {
                        ops.lock().unwrap().push(op);
                        pending.drain(..length);
                    }
                    if server_write.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, ops)
}

/// The operation and length of the first whole LDAPMessage (BER: SEQUENCE { messageID,
/// protocolOp }) of `bytes`.
fn ldap_message(bytes: &[u8]) -> Option<(&'static str, usize)> {
    if bytes.len() < 2 {
        return None;
    }
    let (length, header) = if bytes[1] < 0x80 {
        (bytes[1] as usize, 2)
    } else {
        let n = (bytes[1] & 0x7f) as usize;
        let digits = bytes.get(2..2 + n)?;
        (
            digits.iter().fold(0usize, |acc, b| acc << 8 | *b as usize),
            2 + n,
        )
    };
    if bytes.len() < header + length {
        return None;
    }
    let id_length = bytes[header + 1] as usize;
    let op = match bytes[header + 2 + id_length] {
        0x60 => "bind",
        0x63 => "search",
        0x42 => "unbind",
        0x77 => "extended",
        _ => "other",
    };
    Some((op, header + length))
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn an_unknown_user_costs_the_same_ldap_operations_as_a_wrong_password() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let (relay, ops) = ldap_relay(&ldap.url).await;
    for account in [
        String::new(),
        format!(
            "  ldap_bind_dn: \"{}\"\n  ldap_bind_password: \"{}\"\n",
            ldap.bind_dn, ldap.bind_password
        ),
    ] {
        let app = app(auth_from(&settings_text(
            &relay,
            &ldap.base_dn,
            &format!("  ldap_insecure: true\n{account}"),
        )))
        .await;
        let mut costs = Vec::new();
        for (username, reason) in [
            ("alice", "invalid_credentials"),
            ("mallory", "user_not_found"),
        ] {
            ops.lock().unwrap().clear();
            let answer = login(&app, username, "not-the-password").await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{username}");
            assert_eq!(log.decision(), deny(reason));
            // The unbind that ends each login may reach the relay after the answer.
            let sent = ops.lock().unwrap().clone();
            costs.push(
                sent.into_iter()
                    .filter(|op| *op != "unbind")
                    .collect::<Vec<_>>(),
            );
        }
        assert!(
            costs[0].contains(&"search") && costs[0].contains(&"bind"),
            "{costs:?}"
        );
        assert_eq!(
            costs[0], costs[1],
            "the same operations whether or not the user exists"
        );
    }
}

#[tokio::test]
#[ignore = "needs OpenLDAP: run scripts/test.sh"]
async fn the_login_form_sets_a_strict_http_only_session_cookie_and_redirects_to_next() {
    let ldap = ldap();
    let (log, _guard) = Captured::start();
    let form = |username: &str, password: &str, next: &str| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("username", username),
                ("password", password),
                ("next", next),
                ("csrf_token", "tok"),
            ])
            .finish();
        Request::post("/login")
            .header(header::COOKIE, "vctp_csrf=tok")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    for secure in [false, true] {
        let mut app = app(directory_auth(&ldap, "")).await;
        app.state = app.state.with_secure_cookies(secure);
        let (status, location, cookies, body) = raw(
            &app,
            form("alice", &ldap.password, "/vm/trace?vm=a&view=daily"),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(location.as_deref(), Some("/vm/trace?vm=a&view=daily"));
        let session = cookies
            .iter()
            .find(|c| c.starts_with("vctp_session="))
            .unwrap();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
            assert!(session.contains(attribute), "{session}");
        }
        assert_eq!(session.contains("Secure"), secure, "{session}");
        let token = session["vctp_session=".len()..].split(';').next().unwrap();
        assert!(
            tokens().verify(token).unwrap().groups.is_empty(),
            "no group list in a cookie (browsers keep 4 KB at most)"
        );
        let (status, _, _, page) = raw(
            &app,
            with_session(Method::GET, "/reports", token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("alice"));
        assert_eq!(log.take_audit()[0]["reason"], "login");
        log.assert_free_of(&[token, &ldap.password]);
    }
    let app = app(directory_auth(&ldap, "")).await;
    for foreign in [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let (status, location, ..) = raw(&app, form("alice", &ldap.password, foreign)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(
            location.as_deref(),
            Some("/"),
            "no open redirect to {foreign}"
        );
    }
    let (status, _, cookies, page) = raw(&app, form("alice", "wrong", "/reports")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        page.contains("invalid username or password") && page.contains(r#"value="/reports""#),
        "{page}"
    );
    assert!(
        !cookies.iter().any(|c| c.starts_with("vctp_session=")),
        "{cookies:?}"
    );
}

/// A WebDriver session of headless Chromium through chromedriver (the W3C protocol, JSON over
/// HTTP on 127.0.0.1), enough to fill in and submit forms.
struct Browser {
    driver: std::process::Child,
    client: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start() -> Browser {
        let env = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the tests through scripts/test.sh, which finds Chromium and chromedriver (scripts/chromium.sh)")
            })
        };
        let (chromium, chromedriver) = (env("VCTP_TEST_CHROMIUM"), env("VCTP_TEST_CHROMEDRIVER"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(answer) = client.get(format!("{base}/status")).send().await {
                let status: Value = serde_json::from_str(&answer.text().await.unwrap_or_default())
                    .unwrap_or_default();
                if status["value"]["ready"] == true {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not answer on {base}");
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                    // Nothing but the server under test is reached.
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                ],
            },
        }}});
        let answer = client
            .post(format!("{base}/session"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(capabilities.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        Browser {
            driver,
            client,
            session: format!("{base}/session/{session}"),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let request = self
            .client
            .request(method, format!("{}{path}", self.session));
        let request = if body.is_null() {
            request
        } else {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
        };
        let answer = request.send().await.unwrap().text().await.unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert!(answer["value"]["error"].is_null(), "{path}: {answer}");
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    /// The page's URL once it is `want`, or the last one seen after 10 s: a click that submits
    /// a form returns before the browser has followed the answer.
    async fn url_once(&self, want: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let url = self.url().await;
            if url == want || std::time::Instant::now() > deadline {
                return url;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn cookies(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, "/cookie", Value::Null)
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    async fn stop(mut self) {
        let _ = self.client.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
#[ignore = "needs OpenLDAP, Chromium and chromedriver: run scripts/test.sh"]
fn in_chromium_a_user_logs_in_through_the_form_sees_the_pages_and_after_logout_is_refused() {
    let ldap = ldap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vctp.yml");
    let settings = directory_auth_text(
        &ldap,
        &format!(
            "  reports_dir: \"{}\"\n",
            dir.path().join("reports").display()
        ),
    );
    std::fs::write(&config, settings).unwrap();
    let db = dir.path().join("db.sqlite3");
    let (mut serve, base) = common::start_serve(&config, &db, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            let browser = Browser::start().await;
            browser.open(&format!("{base}/reports")).await;
            assert_eq!(browser.url().await, format!("{base}/login?next=%2Freports"));
            browser.type_into("input[name=username]", "alice").await;
            browser
                .type_into("input[name=password]", &ldap.password)
                .await;
            browser.click("form.login button").await;
            assert_eq!(
                browser.url_once(&format!("{base}/reports")).await,
                format!("{base}/reports"),
                "back where the login began"
            );
            let reports = browser.source().await;
            assert!(
                reports.contains("<h1>Reports</h1>") && reports.contains("alice"),
                "{reports}"
            );
            let cookies = browser.cookies().await;
            let session = cookies
                .iter()
                .find(|c| c["name"] == "vctp_session")
                .unwrap_or_else(|| panic!("{cookies:?}"));
            assert_eq!(
                (&session["httpOnly"], &session["sameSite"]),
                (&json!(true), &json!("Strict"))
            );
            browser.open(&format!("{base}/")).await;
            let dashboard = browser.source().await;
            assert!(
                dashboard.contains("Rebuild the totals cache"),
                "alice is an admin: {dashboard}"
            );
            browser.click("header form.inline button").await;
            assert_eq!(
                browser.url_once(&format!("{base}/login")).await,
                format!("{base}/login")
            );
            assert!(
                !browser
                    .cookies()
                    .await
                    .iter()
                    .any(|c| c["name"] == "vctp_session")
            );
            browser.open(&format!("{base}/vcenters")).await;
            assert_eq!(
                browser.url().await,
                format!("{base}/login?next=%2Fvcenters"),
                "refused after logout"
            );
            browser.stop().await;
        })
    }));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
