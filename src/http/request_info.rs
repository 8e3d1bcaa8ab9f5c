//! Request metadata that audit events record: the client address and the request id.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::audit::AuditEvent;

/// The client's IP address and the `x-request-id` of a request. Either is absent when the
/// router runs without connection info (as in tests that call it directly) or without the
/// request id middleware.
#[derive(Clone, Debug, Default)]
pub struct RequestInfo {
    pub client_address: Option<String>,
    pub request_id: Option<String>,
}

impl RequestInfo {
    pub fn from_parts(parts: &Parts) -> Self {
        Self {
            client_address: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip().to_string()),
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }

    /// Sets the client address and request id of `event`.
    pub fn tag(&self, event: AuditEvent) -> AuditEvent {
        event.with_request(self.client_address.clone(), self.request_id.clone())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}
