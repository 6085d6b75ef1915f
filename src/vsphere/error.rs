//! Everything that can go wrong talking to vCenter, with enough context to act on it and a
//! stable short name for metrics. Messages never carry passwords or session cookies.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid vCenter SDK URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error(
        "refusing to send the vCenter password in clear to {url}: use https://, or allow plain HTTP for this vCenter explicitly (settings: vcenters[].allow_plain_http or vcenter_allow_plain_http; VCenterTarget: spec.allowPlainHttp; vctp bench collect: --allow-plain-http)"
    )]
    PlainHttp { url: String },
    #[error("failed to read the CA bundle {}: {message}", path.display())]
    CaFile { path: PathBuf, message: String },
    #[error("failed to set up the HTTP client for {url}: {message}")]
    ClientSetup { url: String, message: String },
    #[error("failed to connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("TLS certificate verification failed for {url}: {message}")]
    Tls { url: String, message: String },
    #[error("{call} to {url} timed out")]
    Timeout { url: String, call: &'static str },
    #[error("{call} to {url} failed before a response arrived: {message}")]
    Request {
        url: String,
        call: &'static str,
        message: String,
    },
    #[error("invalid login for user {user:?} at {url}")]
    InvalidLogin { url: String, user: String },
    #[error("{url} set no vmware_soap_session cookie on Login")]
    NoSessionCookie { url: String },
    #[error("{call} to {url} was refused: the session is not authenticated")]
    NotAuthenticated { url: String, call: &'static str },
    #[error("{call} to {url} failed with fault {fault}: {message}")]
    Fault {
        url: String,
        call: &'static str,
        fault: String,
        message: String,
    },
    #[error("{call} to {url} failed with HTTP status {status}: {excerpt}")]
    Http {
        url: String,
        call: &'static str,
        status: u16,
        excerpt: String,
    },
    #[error("failed to parse the {call} response: {message}")]
    Parse { call: &'static str, message: String },
    #[error("the {call} response ended before the document was complete")]
    Truncated { call: &'static str },
    #[error(
        "the {call} response of {url} is too large: {bounded} went over its limit of {limit} bytes (a broken or hostile vCenter, or someone in between)"
    )]
    TooLarge {
        url: String,
        call: &'static str,
        bounded: Bounded,
        limit: u64,
    },
    #[error(
        "{url} answered more than {limit} pages of one retrieval (a broken or hostile vCenter keeps sending paging tokens)"
    )]
    TooManyPages { url: String, limit: u32 },
}

impl Error {
    /// A stable short name, for metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Url { .. } => "InvalidUrl",
            Error::PlainHttp { .. } => "PlainHttpRefused",
            Error::CaFile { .. } => "InvalidCaFile",
            Error::ClientSetup { .. } => "ClientSetupFailed",
            Error::Connect { .. } => "ConnectFailed",
            Error::Tls { .. } => "TlsVerificationFailed",
            Error::Timeout { .. } => "Timeout",
            Error::Request { .. } => "RequestFailed",
            Error::InvalidLogin { .. } => "InvalidLogin",
            Error::NoSessionCookie { .. } => "NoSessionCookie",
            Error::NotAuthenticated { .. } => "NotAuthenticated",
            Error::Fault { .. } => "SoapFault",
            Error::Http { .. } => "HttpError",
            Error::Parse { .. } => "InvalidResponse",
            Error::Truncated { .. } => "TruncatedResponse",
            Error::TooLarge { .. } => "ResponseTooLarge",
            Error::TooManyPages { .. } => "TooManyPages",
        }
    }

    /// Whether trying again later may succeed: the network or the server had a bad moment,
    /// as opposed to wrong settings or a request the server rejects.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::Request { .. }
            | Error::Truncated { .. } => true,
            Error::Http { status, .. } => *status >= 500,
            Error::Url { .. }
            | Error::PlainHttp { .. }
            | Error::CaFile { .. }
            | Error::ClientSetup { .. }
            | Error::Tls { .. }
            | Error::InvalidLogin { .. }
            | Error::NoSessionCookie { .. }
            | Error::NotAuthenticated { .. }
            | Error::Fault { .. }
            | Error::Parse { .. }
            | Error::TooLarge { .. }
            | Error::TooManyPages { .. } => false,
        }
    }
}

/// The part of a response a limit bounds, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounded {
    /// [`super::Limits::text_bytes`].
    Text,
    /// [`super::Limits::response_bytes`].
    Response,
}

impl std::fmt::Display for Bounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bounded::Text => "one text node or tag",
            Bounded::Response => "the whole response",
        })
    }
}
