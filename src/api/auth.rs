//! Authentication over HTTP: [`require`] on every request (CSRF check of unsafe requests →
//! path → [`Access`] → bearer token or session cookie → role check), `POST /api/auth/login`
//! (JSON credentials → LDAP → role → token), the login form (`GET`/`POST /login`, which sets
//! the session cookie) and `POST /logout`, `GET /api/auth/me` (the presented token's claims),
//! and the answers of auth failures.

use super::AppState;
use super::error::{ApiError, error_body};
use super::session::{self, Session};
use crate::auth::audit::{self, RequestInfo, Subject};
use crate::auth::{Access, Auth, Claims, Enabled, Error, Mode, Role};
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Query, Request, State};
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
        Error::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
    }
}

/// What the caller is told: LDAP detail (server URL, directory messages) stays in the log.
fn public_message(error: &Error) -> String {
    match status(error) {
        StatusCode::SERVICE_UNAVAILABLE => "the directory server is unavailable".to_string(),
        StatusCode::INTERNAL_SERVER_ERROR => "internal error".to_string(),
        _ => error.to_string(),
    }
}

/// `Retry-After` on a rate-limited login.
fn retry_after(error: &Error, response: &mut Response) {
    if let Error::TooManyAttempts { retry_after } = error {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status(&self);
        let mut response = (status, error_body(public_message(&self))).into_response();
        retry_after(&self, &mut response);
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

/// The middleware on the whole router. An unsafe request that does not carry a bearer
/// token passes [`session::verify_csrf`] first (cookies are sent by the browser on its own;
/// with auth disabled or optional, so is a form from another site). Then the request is
/// classified with [`Access::of`]; the credentials are the `Authorization` header's bearer
/// token, else the session cookie; the mode and role decide. A page without a viewer under
/// `required` is sent to `/login`; the API answers 401. Handlers find the [`Claims`] and the
/// pages' [`Session`] as extensions. Every decision on an admin route is audited.
pub async fn require(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let info = request_info(
        &method,
        request.uri(),
        request.extensions().get::<ConnectInfo<SocketAddr>>(),
    );
    let access = Access::of(&method, &path);
    let audited = access == Access::Admin;
    // A browser never attaches an `Authorization` header on its own, so bearer requests
    // cannot be forged; the JSON login sets no cookie and answers its token to the caller only.
    let forgeable = session::is_unsafe(&method)
        && !request.headers().contains_key(header::AUTHORIZATION)
        && path != "/api/auth/login";
    let mut request = if forgeable {
        match session::verify_csrf(request).await {
            Ok(request) => request,
            Err(e) => {
                if audited {
                    audit::refuse(&info, e.reason(), Subject::default(), e.status().as_u16());
                }
                return e.into_response();
            }
        }
    } else {
        request
    };
    let known_csrf = session::cookie(request.headers(), session::CSRF_COOKIE).map(str::to_string);
    let issued_csrf = known_csrf.is_none().then(session::new_csrf_token);
    let csrf = known_csrf
        .or_else(|| issued_csrf.clone())
        .unwrap_or_default();
    let mut stale_session = false;
    let claims = match state.auth.enabled() {
        None => None,
        Some(on) => match credentials(on, request.headers()) {
            Ok((claims, stale)) => {
                stale_session = stale;
                claims
            }
            Err(e) => {
                let status = status(&e);
                audit::deny(&info, &e, Subject::default(), status.as_u16());
                return e.into_response();
            }
        },
    };
    if let (Some(on), Some(required)) = (state.auth.enabled(), access.role()) {
        let refusal = match &claims {
            None if on.mode == Mode::Optional => None,
            None => Some(Error::MissingToken),
            Some(claims) if claims.role < required => Some(Error::InsufficientRole {
                required: required.as_str(),
                actual: claims.role.as_str(),
            }),
            Some(_) => None,
        };
        if let Some(e) = refusal {
            let subject = claims.as_ref().map(Subject::of).unwrap_or_default();
            let to_page = access == Access::Page && matches!(e, Error::MissingToken);
            let answer = if to_page {
                StatusCode::SEE_OTHER
            } else {
                status(&e)
            };
            audit::deny(&info, &e, subject, answer.as_u16());
            let mut response = if to_page {
                to_login(request.uri())
            } else {
                e.into_response()
            };
            if stale_session {
                clear_session(&mut response, state.secure_cookies);
            }
            return response;
        }
    }
    let session = Session {
        login: state.auth.enabled().is_some(),
        user: claims.as_ref().map(|c| (c.sub.clone(), c.role)),
        csrf,
    };
    request.extensions_mut().insert(session);
    if let Some(claims) = &claims {
        request.extensions_mut().insert(claims.clone());
    }
    let mut response = next.run(request).await;
    if audited {
        let reason = match (&claims, state.auth.enabled()) {
            (_, None) => "auth_disabled",
            (None, Some(_)) => "anonymous",
            (Some(_), Some(_)) => "admin",
        };
        let subject = claims.as_ref().map(Subject::of).unwrap_or_default();
        audit::allow(&info, reason, subject, response.status().as_u16());
    }
    if stale_session {
        clear_session(&mut response, state.secure_cookies);
    }
    // Pages render the token into their forms; the cookie is what it is checked against.
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if let Some(token) = issued_csrf.filter(|_| is_html) {
        response.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(session::CSRF_COOKIE, &token, None, state.secure_cookies),
        );
    }
    response
}

/// The request's identity: a bearer token (any fault of it is the caller's error), else a
/// session cookie. An expired or bad cookie is no identity, and `true` says to clear it.
fn credentials(on: &Enabled, headers: &HeaderMap) -> Result<(Option<Claims>, bool), Error> {
    if let Some(token) = bearer(headers)? {
        return on.tokens.verify(token).map(|claims| (Some(claims), false));
    }
    match session::cookie(headers, session::SESSION_COOKIE) {
        None => Ok((None, false)),
        Some(token) => match on.tokens.verify(token) {
            Ok(claims) => Ok((Some(claims), false)),
            Err(e) => {
                tracing::debug!(reason = e.reason(), "session cookie refused");
                Ok((None, true))
            }
        },
    }
}

/// `303 See Other` to the login page, which comes back to `uri` afterwards.
fn to_login(uri: &Uri) -> Response {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let next: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    redirect(&format!("/login?next={next}"))
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn clear_session(response: &mut Response, secure: bool) {
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(session::SESSION_COOKIE, "", Some(0), secure),
    );
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
    let result = match (auth.enabled(), body) {
        (None, _) => Err(Error::Disabled),
        (Some(_), Err(rejection)) => Err(Error::BadRequest(rejection.body_text())),
        (Some(on), Ok(Json(body))) => issue(on, &body.username, &body.password, remote).await,
    };
    match result {
        Ok((access_token, claims)) => {
            audit::allow(&request, "login", Subject::of(&claims), 200);
            Ok(Json(LoginResponse {
                access_token,
                token_type: "Bearer".to_string(),
                expires_in: claims.exp - claims.iat,
                role: claims.role,
                username: claims.sub,
                expires_at: claims.exp,
            }))
        }
        Err(e) => {
            let subject = Subject::named(username.as_deref());
            audit::deny(&request, &e, subject, status(&e).as_u16());
            Err(e)
        }
    }
}

/// The one login path of the API and the form: rate limit → LDAP → role → signed token.
async fn issue(
    on: &Enabled,
    username: &str,
    password: &str,
    remote: Option<ConnectInfo<SocketAddr>>,
) -> Result<(String, Claims), Error> {
    let username = username.trim();
    if username.is_empty() {
        return Err(Error::BadRequest("username must not be empty".into()));
    }
    on.throttle
        .attempt(remote.map(|ConnectInfo(addr)| addr.ip()), username)?;
    let user = on.directory.authenticate(username, password).await?;
    let role = on.groups.resolve(&user.groups)?;
    let now = chrono::Utc::now().timestamp();
    on.tokens.issue(username, &user.dn, role, user.groups, now)
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login?next=…`: the login form (404 with auth disabled, like `/api/auth/login`).
pub async fn login_page(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    if state.auth.enabled().is_none() {
        return ApiError::UnknownRoute("/login".to_string()).into_response();
    }
    let next = query.ok().and_then(|Query(q)| q.next).unwrap_or_default();
    let next = session::local_target(&next);
    super::ui::login_page(&session, next, "", None, StatusCode::OK)
}

/// `POST /login` (form: username, password, next, csrf_token): on success the session cookie
/// and `303` to `next` (a local path, else `/`); on failure the form again with the reason.
pub async fn login_form(
    State(state): State<AppState>,
    session: Session,
    method: Method,
    uri: Uri,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Response {
    let Some(on) = state.auth.enabled() else {
        return ApiError::UnknownRoute("/login".to_string()).into_response();
    };
    let remote = remote.map(|Extension(info)| info);
    let request = request_info(&method, &uri, remote.as_ref());
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map_or("", String::as_str);
    let next = session::local_target(field("next"));
    let username = field("username").trim();
    // Browsers keep a cookie of at most 4 KB, and a user's whole group list (the API token's
    // `groups`) can be longer; the pages need only the name and role.
    let issued = issue(on, username, field("password"), remote)
        .await
        .and_then(|(_, claims)| {
            let claims = Claims {
                groups: Vec::new(),
                ..claims
            };
            on.tokens.sign(&claims).map(|token| (token, claims))
        });
    match issued {
        Ok((token, claims)) => {
            let mut response = redirect(next);
            response.headers_mut().append(
                header::SET_COOKIE,
                session::set_cookie(
                    session::SESSION_COOKIE,
                    &token,
                    Some(on.tokens.lifespan_seconds()),
                    state.secure_cookies,
                ),
            );
            audit::allow(&request, "login", Subject::of(&claims), 303);
            response
        }
        Err(e) => {
            let status = status(&e);
            audit::deny(
                &request,
                &e,
                Subject::named(Some(username)),
                status.as_u16(),
            );
            let message = public_message(&e);
            let mut response =
                super::ui::login_page(&session, next, username, Some(&message), status);
            retry_after(&e, &mut response);
            response
        }
    }
}

/// `POST /logout`: clears the session cookie and shows the login page.
pub async fn logout(State(state): State<AppState>) -> Response {
    if state.auth.enabled().is_none() {
        return ApiError::UnknownRoute("/logout".to_string()).into_response();
    }
    let mut response = redirect("/login");
    clear_session(&mut response, state.secure_cookies);
    response
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
