//! A bare axum server for the throughput baseline: `POST /v1/verify` reads the body and returns
//! a fixed 200 JSON answer. It runs on the same tokio multi-thread runtime and `axum::serve` call
//! as the daemon, without the daemon's middleware, credential check and audit.
//!
//! Usage: `baseline 127.0.0.1:PORT`

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

const ANSWER: &str = r#"{"valid":true,"reason":"valid","source":"native","tenantId":"abcd1234","mode":"live","roles":["reader"]}"#;

async fn verify(_body: Bytes) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        ANSWER,
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    eprintln!("baseline listening on {}", listener.local_addr()?);
    let router = Router::new().route("/v1/verify", post(verify));
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
