//! Authentication over HTTP: [`require`] on every request (path → [`Access`] → bearer token
//! → role check), `POST /api/auth/login` (JSON credentials → LDAP → role → token),
//! `GET /api/auth/me` (the presented token's claims), and the answers of auth failures.

use super::error::error_body;
use crate::auth::audit::{self, RequestInfo};
use crate::auth::{Access, Auth, Claims, Error, Mode, Role};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

/// The answer's status for each auth failure.
fn status(error: &Error) -> StatusCode {
    match error {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::Disabled => StatusCode::NOT_FOUND,
        Error::EmptyPassword
        | Error::UserNotFound
        | Error::AmbiguousUser { .. }
        | Error::InvalidCredentials
        | Error::MissingToken
        | Error::MalformedHeader
        | Error::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
        Error::NotInAllowedGroup | Error::NoMappedRole | Error::InsufficientRole { .. } => {
            StatusCode::FORBIDDEN
        }
        Error::LdapUnavailable { .. } | Error::Ldap { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Setting { .. } | Error::Sign(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status(&self);
        // LDAP detail (server URL, directory messages) stays in the log.
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => "the directory server is unavailable".to_string(),
            StatusCode::INTERNAL_SERVER_ERROR => "internal error".to_string(),
            _ => self.to_string(),
        };
        let mut response = (status, error_body(message)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match self {
                Error::MissingToken => "Bearer",
                Error::MalformedHeader | Error::InvalidToken { .. } => {
                    "Bearer error=\"invalid_token\""
                }
                _ => "Bearer",
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// The middleware on the whole router: classifies the request with [`Access::of`], checks
/// the bearer token and role as the mode demands, and hands the token's [`Claims`] to the
/// handlers as an extension.
pub async fn require(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    let Some(on) = auth.enabled() else {
        return next.run(request).await;
    };
    let access = Access::of(request.method(), request.uri().path());
    let Some(required) = access.role() else {
        return next.run(request).await;
    };
    let request_info = request_info(
        request.method(),
        request.uri(),
        request.extensions().get::<ConnectInfo<SocketAddr>>(),
    );
    let claims = match bearer(request.headers()).and_then(|token| match token {
        Some(token) => on.tokens.verify(token).map(Some),
        None if on.mode == Mode::Optional => Ok(None),
        None => Err(Error::MissingToken),
    }) {
        Ok(claims) => claims,
        Err(e) => {
            audit::deny(&request_info, &e, None, None);
            return e.into_response();
        }
    };
    if let Some(claims) = claims {
        if claims.role < required {
            let e = Error::InsufficientRole {
                required: required.as_str(),
                actual: claims.role.as_str(),
            };
            audit::deny(&request_info, &e, Some(&claims.sub), Some(claims.role));
            return e.into_response();
        }
        request.extensions_mut().insert(claims);
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer …` header; `None` without the header.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| Error::MalformedHeader)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(Error::MalformedHeader)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(Error::MalformedHeader);
    }
    Ok(Some(token))
}

/// What the audit log says about the request (the peer is known when the server was started
/// with connect info; tests call the router without it).
fn request_info(
    method: &Method,
    uri: &Uri,
    remote: Option<&ConnectInfo<SocketAddr>>,
) -> RequestInfo {
    RequestInfo::new(
        method.as_str(),
        uri.path(),
        remote.map(|ConnectInfo(addr)| *addr),
    )
}

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
    State(auth): State<Arc<Auth>>,
    method: Method,
    uri: Uri,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, Error> {
    let remote = remote.map(|Extension(info)| info);
    let request = request_info(&method, &uri, remote.as_ref());
    let username = body.as_ref().ok().map(|Json(body)| body.username.clone());
    let result = login_checked(&auth, body).await;
    match &result {
        Ok(Json(answer)) => audit::allow(&request, "login", &answer.username, answer.role),
        Err(e) => audit::deny(&request, e, username.as_deref(), None),
    }
    result
}

async fn login_checked(
    auth: &Auth,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, Error> {
    let Some(on) = auth.enabled() else {
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
    State(auth): State<Arc<Auth>>,
    claims: Option<Extension<Claims>>,
) -> Result<Json<MeResponse>, Error> {
    if auth.enabled().is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            map
        };
        assert_eq!(bearer(&HeaderMap::new()).unwrap(), None);
        assert_eq!(bearer(&headers("Bearer abc")).unwrap(), Some("abc"));
        assert_eq!(bearer(&headers("bearer abc")).unwrap(), Some("abc"));
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc", "Bearer a b"] {
            assert!(
                matches!(bearer(&headers(bad)), Err(Error::MalformedHeader)),
                "{bad}"
            );
        }
    }
}
