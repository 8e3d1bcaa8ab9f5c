//! A TCP proxy on a loopback port that a test can cut and restore, to simulate a database
//! outage without touching the database server.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

enum Command {
    Cut(oneshot::Sender<()>),
    Restore(oneshot::Sender<io::Result<()>>),
}

/// Forwards connections from its own loopback address to `upstream`.
pub struct TcpProxy {
    pub address: SocketAddr,
    commands: mpsc::Sender<Command>,
}

impl TcpProxy {
    /// Starts forwarding from a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy port");
        let address = listener.local_addr().expect("proxy address");
        let (commands, receiver) = mpsc::channel(4);
        tokio::spawn(run(listener, address, upstream, receiver));
        Self { address, commands }
    }

    /// Closes every forwarded connection and stops listening, so new connections are refused.
    /// Returns once both are done.
    pub async fn cut(&self) {
        let (done, wait) = oneshot::channel();
        self.commands
            .send(Command::Cut(done))
            .await
            .expect("the proxy task runs");
        wait.await.expect("the proxy task confirms the cut");
    }

    /// Listens on the same address again.
    pub async fn restore(&self) {
        let (done, wait) = oneshot::channel();
        self.commands
            .send(Command::Restore(done))
            .await
            .expect("the proxy task runs");
        wait.await
            .expect("the proxy task confirms the restore")
            .expect("bind the proxy address again");
    }
}

async fn run(
    listener: TcpListener,
    address: SocketAddr,
    upstream: SocketAddr,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut listener = Some(listener);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(Command::Cut(done)) => {
                    // Dropping the listener makes the kernel refuse new connections, and
                    // aborting a forwarding task drops (closes) both of its sockets.
                    listener = None;
                    connections.shutdown().await;
                    let _ = done.send(());
                }
                Some(Command::Restore(done)) => {
                    let bound = match &listener {
                        Some(_) => Ok(()),
                        None => TcpListener::bind(address).await.map(|bound| {
                            listener = Some(bound);
                        }),
                    };
                    let _ = done.send(bound);
                }
            },
            accepted = accept(listener.as_ref()) => {
                if let Ok((client, _)) = accepted {
                    connections.spawn(forward(client, upstream));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Accepts the next connection, or waits forever while the proxy is cut.
async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
