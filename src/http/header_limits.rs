//! Limits on the size and number of request header fields (`server.max_header_bytes` and
//! `server.max_headers`). A middleware enforces them exactly with a 431 problem+json response
//! for HTTP/1.1 and HTTP/2 alike. hyper's own limits, set per connection in [`crate::server`], are a
//! backstop at about twice these values: a request past them gets hyper's 431 without a body,
//! and hyper closes the HTTP/1.1 connection.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::config::ServerConfig;

/// Bytes that HTTP/1.1 adds to each field besides its name and value: `: ` and CRLF.
const FIELD_OVERHEAD_BYTES: usize = 4;

/// Room in hyper's HTTP/1.1 read buffer for the request line next to the header fields.
const REQUEST_LINE_BYTES: usize = 8192;

/// The configured header limits.
#[derive(Clone, Copy, Debug)]
pub struct HeaderLimits {
    pub max_bytes: usize,
    pub max_count: usize,
}

impl HeaderLimits {
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            max_bytes: server.max_header_bytes,
            max_count: server.max_headers,
        }
    }

    /// Checks `headers` and describes the limit they exceed.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        let count = headers.len();
        if count > self.max_count {
            return Err(format!(
                "the request has {count} header fields; the maximum is {}",
                self.max_count
            ));
        }
        let bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + FIELD_OVERHEAD_BYTES)
            .sum();
        if bytes > self.max_bytes {
            return Err(format!(
                "the request's header fields take {bytes} bytes; the maximum is {}",
                self.max_bytes
            ));
        }
        Ok(())
    }

    /// hyper's HTTP/1.1 limit on header fields, the backstop behind [`Self::check`].
    pub fn http1_max_headers(&self) -> usize {
        self.max_count.saturating_mul(2)
    }

    /// hyper's HTTP/1.1 read buffer size, which bounds the request head (request line and
    /// header fields) as a backstop behind [`Self::check`]. hyper requires at least 8192.
    pub fn http1_max_buf_size(&self) -> usize {
        self.max_bytes
            .saturating_mul(2)
            .saturating_add(REQUEST_LINE_BYTES)
            .max(8192)
    }

    /// Returns hyper's HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`, the backstop behind
    /// [`Self::check`]. It counts 32 bytes per field besides name and value (RFC 9113 section
    /// 6.5.2).
    pub fn http2_max_header_list_size(&self) -> u32 {
        let bytes = self
            .max_bytes
            .saturating_add(self.max_count.saturating_mul(32))
            .saturating_mul(2);
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// Responds with 431 to a request whose header fields exceed the limits, before any other work.
pub async fn enforce(State(limits): State<HeaderLimits>, request: Request, next: Next) -> Response {
    match limits.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(detail) => {
            tracing::debug!(%detail, "request rejected: header fields too large");
            ApiError::HeaderFieldsTooLarge(detail).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const LIMITS: HeaderLimits = HeaderLimits {
        max_bytes: 100,
        max_count: 3,
    };

    #[test]
    fn fields_within_limits_pass() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.test"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        assert_eq!(LIMITS.check(&headers), Ok(()));
    }

    #[test]
    fn repeated_fields_count_each() {
        let mut headers = HeaderMap::new();
        for _ in 0..4 {
            headers.append("x-a", HeaderValue::from_static("1"));
        }
        let error = LIMITS.check(&headers).unwrap_err();
        assert!(error.contains("4 header fields"), "{error}");
    }

    #[test]
    fn size_counts_name_value_and_separators() {
        let mut headers = HeaderMap::new();
        // 1 + 95 + 4 = 100 bytes: at the limit.
        headers.insert("x", HeaderValue::from_str(&"v".repeat(95)).unwrap());
        assert_eq!(LIMITS.check(&headers), Ok(()));
        headers.insert("x", HeaderValue::from_str(&"v".repeat(96)).unwrap());
        let error = LIMITS.check(&headers).unwrap_err();
        assert!(error.contains("101 bytes"), "{error}");
    }
}
