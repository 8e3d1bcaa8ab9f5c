//! Running the daemon: serve the router on a listener until the shutdown signal, with a
//! background task that resyncs state changed by other instances.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;

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
    let mut stopped = stop_receiver.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });

    let serving = tokio::spawn(async move { server.await });
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
