//! Running the daemon: serve the router on a listener until the shutdown signal, with a
//! background task that resyncs state changed by other instances.
//!
//! Connections are served with hyper-util's HTTP/1.1 and HTTP/2 builder rather than
//! `axum::serve`, because `axum::serve` sets no header limits, no header read timeout and no
//! limit on open connections.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::app::App;
use crate::config::ServerConfig;
use crate::http::header_limits::HeaderLimits;

/// How often state shared through the database is re-read, so changes made by another instance
/// (tenants, token revocations, signing keys) arrive here too.
const RESYNC_INTERVAL: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// for at most the configured grace period.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = Duration::from_secs(app.config.server.shutdown_grace_seconds);
    let (stop_sender, stop_receiver) = watch::channel(false);
    let resync = tokio::spawn(resync_loop(app.clone(), stop_receiver.clone()));
    crate::cluster::start(&app);

    let router = crate::http::router(app.clone());
    let settings = ConnectionSettings::from_config(&app.config.server);
    let server = serve_connections(listener, router, settings, stop_receiver.clone());

    let serving = tokio::spawn(server);
    shutdown.await;
    tracing::info!(
        grace_seconds = grace.as_secs(),
        "shutting down: finishing in-flight requests"
    );
    let _ = stop_sender.send(true);
    let result = match tokio::time::timeout(grace, serving).await {
        Ok(Ok(result)) => result,
        Ok(Err(join_error)) => Err(std::io::Error::other(join_error)),
        Err(_) => {
            tracing::warn!("grace period ended with requests still in flight");
            Ok(())
        }
    };
    resync.abort();
    // The writer retries failed writes without end, so a lost database must not block exit.
    match tokio::time::timeout(grace, app.audit.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "audit events could not be flushed at shutdown"),
        Err(_) => tracing::error!(
            grace_seconds = grace.as_secs(),
            "audit events not flushed within the grace period; queued events are lost"
        ),
    }
    app.store.close().await;
    tracing::info!("stopped");
    result
}

/// Per-connection settings from `[server]`.
#[derive(Clone, Copy, Debug)]
struct ConnectionSettings {
    header_limits: HeaderLimits,
    header_read_timeout: Duration,
    max_connections: usize,
}

impl ConnectionSettings {
    fn from_config(server: &ServerConfig) -> Self {
        Self {
            header_limits: HeaderLimits::from_config(server),
            header_read_timeout: Duration::from_secs(server.header_read_timeout_seconds),
            max_connections: server.max_connections,
        }
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_headers(self.header_limits.http1_max_headers())
            .max_buf_size(self.header_limits.http1_max_buf_size());
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(self.header_limits.http2_max_header_list_size());
        builder
    }
}

/// Accepts connections until `stop` turns true, then waits until every open connection has
/// finished its in-flight requests.
async fn serve_connections(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let builder = settings.builder();
    let graceful = GracefulShutdown::new();
    let open_connections = Arc::new(Semaphore::new(settings.max_connections));
    loop {
        // At the limit, new connections wait in the listen backlog until a permit is free.
        let permit = tokio::select! {
            permit = open_connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    handle_accept_error(error).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let service = router.clone().map_request(
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            },
        );
        let header_read_timeout = settings.header_read_timeout;
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let mut stopping = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let detectable = tokio::select! {
                detectable = protocol_detectable(&stream, header_read_timeout) => detectable,
                () = stopped(&mut stopping) => false,
            };
            if !detectable {
                return;
            }
            let connection = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(client.address = %peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Completes once `stop` is true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Waits, for at most `timeout`, until the client has sent enough bytes to tell HTTP/1.1 from
/// HTTP/2. hyper-util reads them without a deadline and hyper's header read timeout starts only
/// after them, so without this wait a client that sends nothing would hold its connection
/// forever. Returns false when the time ran out or the client closed the connection.
async fn protocol_detectable(stream: &TcpStream, timeout: Duration) -> bool {
    const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buffer = [0u8; HTTP2_PREFACE.len()];
        loop {
            let read = stream.peek(&mut buffer).await?;
            if read == 0 {
                return Ok::<bool, io::Error>(false);
            }
            if read == buffer.len() || buffer[..read] != HTTP2_PREFACE[..read] {
                return Ok(true);
            }
            // Part of the HTTP/2 preface: peek would return the same bytes at once, so wait
            // before looking again.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(true)))
}

/// Sleeps a second after an accept error other than a reset connection, such as `EMFILE` (too
/// many open files), so the loop does not spin while no descriptor is free.
async fn handle_accept_error(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn resync_loop(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(RESYNC_INTERVAL);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(error) = app.resync().await {
                    tracing::warn!(%error, "resync with the store failed; retrying at the next interval");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
