//! `POST /api/auth/login` (JSON credentials → LDAP → role → token) and `GET /api/auth/me`
//! (the presented token's claims).

use super::audit::{self, RequestInfo};
use super::{Claims, Error, Role};
use crate::api::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, Uri};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Debug without the password.
impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    pub role: Role,
    pub username: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub username: String,
    pub dn: String,
    pub role: Role,
    /// Every group DN of the user as the directory spells it, to copy into
    /// `settings.auth_group_role_mappings`.
    pub groups: Vec<String>,
    pub issuer: String,
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub token_id: String,
}

/// Logs in with an LDAP username and password and returns a bearer token.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "The body is not {\"username\", \"password\"}"),
        (status = 401, description = "Invalid username or password"),
        (status = 403, description = "The user has no vctp role or is not in an allowed group"),
        (status = 404, description = "Authentication is disabled"),
        (status = 503, description = "The directory server is unavailable"),
    ),
    tag = "auth"
)]
pub async fn login(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, Error> {
    let remote = remote.map(|Extension(info)| info);
    let request = RequestInfo::from_parts(&method, &uri, remote.as_ref());
    let username = body.as_ref().ok().map(|Json(body)| body.username.clone());
    let result = login_checked(&state, body).await;
    match &result {
        Ok(Json(answer)) => audit::allow(&request, "login", &answer.username, answer.role),
        Err(e) => audit::deny(&request, e, username.as_deref(), None),
    }
    result
}

async fn login_checked(
    state: &AppState,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, Error> {
    let Some(on) = state.auth.enabled() else {
        return Err(Error::Disabled);
    };
    let Json(body) = body.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    let username = body.username.trim();
    if username.is_empty() {
        return Err(Error::BadRequest("username must not be empty".into()));
    }
    let user = on.directory.authenticate(username, &body.password).await?;
    let role = on.groups.resolve(&user.groups)?;
    let now = chrono::Utc::now().timestamp();
    let (access_token, claims) = on
        .tokens
        .issue(username, &user.dn, role, user.groups, now)?;
    Ok(Json(LoginResponse {
        access_token,
        token_type: "Bearer".to_string(),
        expires_in: on.tokens.lifespan_seconds(),
        role,
        username: claims.sub,
        expires_at: claims.exp,
    }))
}

/// The identity of the presented token: username, DN, role and every group DN.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    operation_id = "whoami",
    responses(
        (status = 200, description = "The token's claims", body = MeResponse),
        (status = 401, description = "No valid bearer token"),
        (status = 404, description = "Authentication is disabled"),
    ),
    security(("bearer" = [])),
    tag = "auth"
)]
pub async fn me(
    State(state): State<AppState>,
    claims: Option<Extension<Claims>>,
) -> Result<Json<MeResponse>, Error> {
    if state.auth.enabled().is_none() {
        return Err(Error::Disabled);
    }
    // In optional mode a request without a token reaches here without claims.
    let Some(Extension(claims)) = claims else {
        return Err(Error::MissingToken);
    };
    Ok(Json(MeResponse {
        username: claims.sub,
        dn: claims.dn,
        role: claims.role,
        groups: claims.groups,
        issuer: claims.iss,
        audience: claims.aud,
        issued_at: claims.iat,
        expires_at: claims.exp,
        token_id: claims.jti,
    }))
}
