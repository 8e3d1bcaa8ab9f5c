//! Runs the real `authbridge` binary: CLI commands such as `bootstrap --json`, and `serve` on a
//! free loopback port with its configuration in environment variables. Every child process is
//! killed and reaped when its handle is dropped, also when the test panics.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{AnyConnection, Connection};

const BINARY: &str = env!("CARGO_BIN_EXE_authbridge");

/// Time a daemon gets to become ready. Generous, because other builds and tests may load the
/// machine.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A fixed master key, so that every process of a test reads the same encrypted signing keys
/// and pepper without sharing a data directory.
const TEST_MASTER_KEY: &str = "YXV0aGJyaWRnZS10ZXN0LW1hc3Rlci1rZXktMzJieXQ=";

/// The settings every `authbridge` process of one test shares: the data and working directory,
/// configuration variables and an optional configuration file.
#[derive(Clone, Debug)]
pub struct DaemonEnv {
    pub dir: PathBuf,
    vars: BTreeMap<String, String>,
    config: Option<PathBuf>,
}

impl DaemonEnv {
    /// Creates an environment with the default SQLite store in `dir`.
    pub fn sqlite(dir: &Path) -> Self {
        let env = Self {
            dir: dir.to_owned(),
            vars: BTreeMap::new(),
            config: None,
        };
        env.set("AUTHBRIDGE_DATABASE__DATA_DIR", &dir.display().to_string())
    }

    /// Creates an environment for the PostgreSQL database at `url`, with a master key shared by
    /// every process.
    pub fn postgres(dir: &Path, url: &str) -> Self {
        Self::sqlite(dir)
            .set("AUTHBRIDGE_DATABASE__URL", url)
            .set("AUTHBRIDGE_SECURITY__MASTER_KEY", TEST_MASTER_KEY)
    }

    /// Sets a configuration variable such as `AUTHBRIDGE_AUDIT__MODE`.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Writes `toml` to a file in the directory and passes it with `--config`.
    pub fn with_config_file(mut self, toml: &str) -> Self {
        let path = self.dir.join("authbridge.toml");
        std::fs::write(&path, toml).expect("write the configuration file");
        self.config = Some(path);
        self
    }

    /// Returns the database URL the processes use: the configured one, or the default SQLite
    /// file.
    pub fn database_url(&self) -> String {
        match self.vars.get("AUTHBRIDGE_DATABASE__URL") {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.dir.join("authbridge.db").display()),
        }
    }

    /// Builds a command with only this environment's configuration: variables of the test process
    /// that would configure authbridge (`AUTHBRIDGE_<SECTION>__<KEY>`, `RUST_LOG`) are removed.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        for (name, _) in std::env::vars() {
            if (name.starts_with("AUTHBRIDGE_") && name.contains("__")) || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command
            .env("AUTHBRIDGE_LOGGING__LEVEL", "info")
            .envs(&self.vars)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command.args(args);
        command
    }

    /// Runs a CLI command to the end and returns its output.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::from(self.command(args));
        command.kill_on_drop(true);
        command
            .output()
            .await
            .unwrap_or_else(|e| panic!("run authbridge {args:?}: {e}"))
    }

    /// Runs `authbridge bootstrap --json`.
    pub async fn bootstrap(&self) -> Bootstrap {
        let output = self.run(&["bootstrap", "--json"]).await;
        assert!(
            output.status.success(),
            "bootstrap failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed: Value =
            serde_json::from_slice(&output.stdout).expect("bootstrap --json prints JSON");
        Bootstrap {
            tenant_id: printed["tenantId"].as_str().expect("tenantId").to_owned(),
            admin_key: printed["apiKey"].as_str().expect("apiKey").to_owned(),
        }
    }

    /// Starts a command in the background with standard output and error in the file
    /// `<log_name>.log` of the directory.
    pub fn spawn(&self, args: &[&str], log_name: &str) -> ChildGuard {
        let log = self.dir.join(format!("{log_name}.log"));
        let file = std::fs::File::create(&log).expect("create the log file");
        let stdout = file.try_clone().expect("clone the log file handle");
        let child = self
            .command(args)
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("start authbridge {args:?}: {e}"));
        ChildGuard { child, log }
    }

    /// Starts `authbridge serve` on a free loopback port and waits until `/readyz` returns 200.
    /// `name` names the log file. A start that fails because another process took the port is
    /// retried on a new port.
    pub async fn serve(&self, name: &str) -> Daemon {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        for _attempt in 0..3 {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let mut child = self
                .clone()
                .set("AUTHBRIDGE_SERVER__LISTEN", &listen)
                .spawn(&["serve"], name);
            let base = format!("http://{listen}");
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                if let Some(status) = child.try_status() {
                    let log = child.log_text();
                    if log.contains("in use") {
                        break;
                    }
                    panic!("authbridge serve ({name}) exited with {status} before it was ready:\n{log}");
                }
                if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
                    if response.status().is_success() {
                        return Daemon { child, base };
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "authbridge serve ({name}) was not ready within {STARTUP_TIMEOUT:?}:\n{}",
                    child.log_text()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("authbridge serve ({name}) found no free port in 3 attempts");
    }

    /// Runs `authbridge audit verify` and returns the number of events checked per chain.
    /// Panics with the output when the command fails or reports a broken chain.
    pub async fn verify_audit_chains(&self) -> BTreeMap<String, u64> {
        let output = self.run(&["audit", "verify"]).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "audit verify failed with {}:\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let pattern =
            regex::Regex::new(r"^chain (\S+): ok, (\d+) events checked").expect("valid regex");
        let mut chains = BTreeMap::new();
        for line in stdout.lines() {
            let captures = pattern
                .captures(line)
                .unwrap_or_else(|| panic!("unexpected line from audit verify: {line}"));
            chains.insert(captures[1].to_owned(), captures[2].parse().expect("count"));
        }
        chains
    }

    /// Opens a connection to the store, for checks the HTTP API does not offer.
    pub async fn connect_store(&self) -> AnyConnection {
        connect(&self.database_url()).await
    }
}

/// What `authbridge bootstrap --json` prints.
pub struct Bootstrap {
    pub tenant_id: String,
    pub admin_key: String,
}

/// A child process that is killed and reaped when dropped.
pub struct ChildGuard {
    child: Child,
    log: PathBuf,
}

impl ChildGuard {
    /// Returns the exit status once the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("query the child process")
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub async fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.try_status() {
            return Some(status);
        }
        let sent = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .await
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed", self.child.id());
        self.wait(timeout).await
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Returns the process's standard output and error so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `authbridge serve`.
pub struct Daemon {
    pub child: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Daemon {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Returns the id of the audit chain this daemon writes, from its start-up log line.
    pub fn chain_id(&self) -> String {
        let log = self.child.log_text();
        let pattern = regex::Regex::new(r"audit writer started audit\.chain=([0-9a-f]+)")
            .expect("valid regex");
        pattern
            .captures(&log)
            .map(|captures| captures[1].to_owned())
            .unwrap_or_else(|| panic!("no audit chain id in the log:\n{log}"))
    }

    /// Waits up to `timeout` for `text` to appear in the log.
    pub async fn wait_for_log(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.child.log_text().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{text:?} did not appear in the log within {timeout:?}:\n{}",
                self.child.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Opens a connection to the database at `url`.
pub async fn connect(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Parses the `x-request-id` response header.
pub fn request_id(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
