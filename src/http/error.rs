//! The HTTP error boundary: every failure becomes `application/problem+json` (RFC 9457), or an
//! RFC 6749 error object on the OAuth endpoints. Status codes are assigned here and nowhere
//! else; 5xx bodies stay generic and the detail goes to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::admin::AdminError;
use crate::store::StoreError;

/// An error of the admin API, verify API or another non-OAuth endpoint.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    PayloadTooLarge,
    /// Too many failed credential checks from the client address; retry after this many
    /// seconds.
    TooManyRequests(i64),
    UnsupportedMediaType(String),
    /// The request's header fields exceed `server.max_header_bytes` or `server.max_headers`.
    HeaderFieldsTooLarge(String),
    Unavailable(String),
    Internal(String),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &str) {
        match self {
            Self::BadRequest(detail) => (StatusCode::BAD_REQUEST, detail),
            Self::Unauthorized(detail) => (StatusCode::UNAUTHORIZED, detail),
            Self::Forbidden(detail) => (StatusCode::FORBIDDEN, detail),
            Self::NotFound(detail) => (StatusCode::NOT_FOUND, detail),
            Self::Conflict(detail) => (StatusCode::CONFLICT, detail),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body is too large"),
            Self::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed credential checks from this address; retry after the seconds in Retry-After",
            ),
            Self::UnsupportedMediaType(detail) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, detail),
            Self::HeaderFieldsTooLarge(detail) => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, detail)
            }
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "a backing service is unavailable; retry later",
            ),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }
}

/// Builds a problem+json response.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unavailable(detail) => {
                tracing::warn!(error = %detail, "request failed: backing service unavailable")
            }
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "request failed with an internal error")
            }
            _ => {}
        }
        let (status, detail) = self.parts();
        let mut response = problem(status, detail);
        if let Self::TooManyRequests(seconds) = &self {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"authbridge\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => ApiError::Unavailable(detail),
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid(detail) => ApiError::BadRequest(detail),
            AdminError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            AdminError::Conflict(detail) => ApiError::Conflict(detail),
            AdminError::Store(store) => store.into(),
        }
    }
}

/// An OAuth error response (RFC 6749 section 5.2).
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// Set when the client tried HTTP Basic authentication and failed (RFC 6749 section 5.2).
    pub basic_challenge: bool,
    /// Seconds for `Retry-After`, on a 429.
    pub retry_after: Option<i64>,
}

impl OAuthError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }

    /// Builds the error for a client address with too many failed credential checks. RFC 6749
    /// defines no error code for this, so the code is `temporarily_unavailable` with status 429.
    pub fn too_many_requests(retry_after: i64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "too many failed client authentications from this address; retry after the seconds in Retry-After",
            )
        }
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "a backing service is unavailable; retry later",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.basic_challenge {
                "Basic realm=\"authbridge\""
            } else {
                "Bearer realm=\"authbridge\""
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
