//! The audit trail: one event per token issue, verification, introspection, revocation and admin
//! action, including every failure, written to the store in a hash chain.
//!
//! Every daemon instance writes its own chain, named by an id generated at start, so instances
//! sharing a database never interleave a chain. Within a chain, each event stores the hash of the
//! event before it (`prev_hash`) and its own hash over its fields and `prev_hash`; see [`chain`].
//!
//! Handlers call [`Audit::record`]. Events pass through a bounded queue to one writer task that
//! writes them in batches, one transaction per batch. A full queue makes `record` wait
//! (backpressure); when it stays full longer than `audit.enqueue_timeout_ms`, `record` fails and
//! the request gets 503, so no request that got a response lacks its event. In `sync` mode,
//! `record` also waits for the transaction that contains the event to commit.
//!
//! Events never contain a secret: a credential is named by its fingerprint (`sha256:` and 16 hex
//! digits, see [`crate::verify::fingerprint`]), and admin details carry ids and names only.

pub mod chain;
pub mod export;
pub mod report;
pub mod store;
mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::clock::SharedClock;
use crate::config::{AuditConfig, AuditMode};
use crate::store::Store;
use crate::verify::{Decision, Source};

pub use chain::{verify_chains, ChainFault, ChainReport, FaultKind};
pub use store::{prune, EventFilter, StoredEvent};

/// The kind of operation an audit event records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    TokenIssue,
    Verify,
    Introspect,
    Revoke,
    /// A token exchange (RFC 8693) at the token endpoint.
    Exchange,
    /// A `shadow` phase comparison whose two results differed.
    ShadowCompare,
    PhaseChange,
    /// An admin API action, such as `tenant.create` (stored as `admin:tenant.create`).
    Admin(&'static str),
}

impl Action {
    /// Returns the stored name: `token_issue`, `verify`, `introspect`, `revoke`,
    /// `phase_change` or `admin:<what>`.
    pub fn name(&self) -> String {
        match self {
            Self::TokenIssue => "token_issue".to_owned(),
            Self::Verify => "verify".to_owned(),
            Self::Introspect => "introspect".to_owned(),
            Self::Revoke => "revoke".to_owned(),
            Self::Exchange => "exchange".to_owned(),
            Self::ShadowCompare => "shadow_compare".to_owned(),
            Self::PhaseChange => "phase_change".to_owned(),
            Self::Admin(what) => format!("admin:{what}"),
        }
    }
}

/// Whether the recorded attempt succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One audit event before it is written. The time, chain, sequence number and hashes are set
/// when it is recorded and written.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// Unix seconds; [`Audit::record`] sets it from the daemon's clock.
    pub occurred_at: i64,
    pub action: String,
    pub outcome: Outcome,
    /// A reason code: one of the verification reasons (`valid`, `expired`, ...) or, for client
    /// authentication and admin actions, a code such as `invalid_client`.
    pub reason: String,
    /// Fingerprint of the credential presented (or issued); never the credential itself.
    pub fingerprint: Option<String>,
    /// `native`, or the name of the legacy adapter that decided.
    pub source: String,
    /// The legacy adapter that decided or, for a native token minted by token exchange (source
    /// `native`), the adapter of the legacy credential that the token replaced.
    pub adapter: Option<String>,
    pub tenant_id: Option<String>,
    pub machine_id: Option<String>,
    pub client_address: Option<String>,
    pub request_id: Option<String>,
    /// Details of admin actions as JSON text: ids, names and settings, never secrets.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// Creates a native event with only the action, outcome and reason set.
    pub fn new(action: Action, outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            occurred_at: 0,
            action: action.name(),
            outcome,
            reason: reason.into(),
            fingerprint: None,
            source: "native".to_owned(),
            adapter: None,
            tenant_id: None,
            machine_id: None,
            client_address: None,
            request_id: None,
            detail: None,
        }
    }

    /// Creates the event of a verification decision: the reason, fingerprint, source and the
    /// identity's tenant and machine when the credential itself verified.
    pub fn from_decision(action: Action, decision: &Decision) -> Self {
        let outcome = if decision.is_valid() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = Self::new(action, outcome, decision.reason.as_str());
        event.fingerprint = Some(decision.fingerprint.clone());
        if let Some(identity) = &decision.identity {
            if let Source::Legacy(adapter) = &identity.source {
                event.source = adapter.clone();
                event.adapter = Some(adapter.clone());
            }
            if let Some(adapter) = &identity.translated_from {
                event.adapter = Some(adapter.clone());
            }
            event.tenant_id = Some(identity.tenant_id.to_string());
            event.machine_id = identity.machine_id.as_ref().map(ToString::to_string);
        }
        event
    }

    pub fn with_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.fingerprint = Some(fingerprint.into());
        self
    }

    pub fn with_tenant(mut self, tenant_id: impl ToString) -> Self {
        self.tenant_id = Some(tenant_id.to_string());
        self
    }

    pub fn with_machine(mut self, machine_id: impl ToString) -> Self {
        self.machine_id = Some(machine_id.to_string());
        self
    }

    /// Sets the detail JSON. Callers pass ids, names and settings only, never a secret.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// Sets the client address and request id of the HTTP request.
    pub fn with_request(
        mut self,
        client_address: Option<String>,
        request_id: Option<String>,
    ) -> Self {
        self.client_address = client_address;
        self.request_id = request_id;
        self
    }
}

/// An event could not be recorded, so the request must not get a response as if it had been.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit queue stayed full for {0:?}")]
    QueueFull(Duration),
    #[error("the audit writer has stopped")]
    Closed,
    #[error("writing the audit event failed: {0}")]
    WriteFailed(String),
}

impl From<AuditError> for crate::http::ApiError {
    fn from(error: AuditError) -> Self {
        crate::http::ApiError::Unavailable(error.to_string())
    }
}

impl From<AuditError> for crate::http::OAuthError {
    fn from(error: AuditError) -> Self {
        tracing::warn!(%error, "request failed: audit event not recorded");
        crate::http::OAuthError::unavailable()
    }
}

/// A message to the writer task.
/// The signal that wakes a sleeping batched writer.
#[derive(Default)]
struct WriterWake {
    notify: Notify,
    /// Events in the writer's open batch, set before it sleeps. A stale value costs at most one
    /// early wake-up or a write at the batch's deadline.
    held: AtomicUsize,
}

enum Message {
    /// An event, with the sender to notify after its transaction commits (`sync` mode).
    Event(Box<AuditEvent>, Option<oneshot::Sender<Result<(), String>>>),
    /// Write everything queued before this message, then notify.
    Flush(oneshot::Sender<()>),
    /// Write everything queued before this message, notify, and stop.
    Shutdown(oneshot::Sender<()>),
}

/// The handle handlers record events with; owned by [`crate::app::App`].
pub struct Audit {
    sender: mpsc::Sender<Message>,
    /// Wakes the writer early: when the queue and the writer's open batch together contain a
    /// full batch, and after a flush or shutdown message, because in batched mode the writer
    /// otherwise sleeps until a batch's deadline.
    wake: Arc<WriterWake>,
    batch_size: usize,
    mode: AuditMode,
    enqueue_timeout: Duration,
    clock: SharedClock,
    chain_id: String,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("chain_id", &self.chain_id)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Starts the writer task of a new chain. Must run inside a Tokio runtime.
    pub fn start(store: Store, config: &AuditConfig, clock: SharedClock) -> Self {
        let chain_id = uuid::Uuid::now_v7().simple().to_string();
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let wake = Arc::new(WriterWake::default());
        let writer = writer::Writer::new(store, config, clock.clone(), chain_id.clone());
        tokio::spawn(writer.run(receiver, wake.clone()));
        tracing::info!(audit.chain = %chain_id, mode = ?config.mode, "audit writer started");
        Self {
            sender,
            wake,
            batch_size: config.batch_size.max(1),
            mode: config.mode,
            enqueue_timeout: Duration::from_millis(config.enqueue_timeout_ms),
            clock,
            chain_id,
        }
    }

    /// Returns the number of events waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// Returns the id of the chain this instance writes.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Queues `event` stamped with the current time. In `sync` mode, also waits until it is
    /// committed. Fails when the queue stays full past the enqueue timeout, when the writer has
    /// stopped, or (in `sync` mode) when the write fails.
    pub async fn record(&self, mut event: AuditEvent) -> Result<(), AuditError> {
        event.occurred_at = self.clock.now();
        let (ack, committed) = match self.mode {
            AuditMode::Sync => {
                let (sender, receiver) = oneshot::channel();
                (Some(sender), Some(receiver))
            }
            AuditMode::Batched => (None, None),
        };
        self.enqueue(Message::Event(Box::new(event), ack)).await?;
        if let Some(committed) = committed {
            committed
                .await
                .map_err(|_| AuditError::Closed)?
                .map_err(AuditError::WriteFailed)?;
        }
        Ok(())
    }

    /// Waits until every event queued before this call is written.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (sender, receiver) = oneshot::channel();
        self.sender
            .send(Message::Flush(sender))
            .await
            .map_err(|_| AuditError::Closed)?;
        self.wake.notify.notify_one();
        receiver.await.map_err(|_| AuditError::Closed)
    }

    /// Writes every queued event and stops the writer; later `record` calls fail with
    /// [`AuditError::Closed`]. Call it after the HTTP server has stopped.
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        let (sender, receiver) = oneshot::channel();
        self.sender
            .send(Message::Shutdown(sender))
            .await
            .map_err(|_| AuditError::Closed)?;
        self.wake.notify.notify_one();
        receiver.await.map_err(|_| AuditError::Closed)
    }

    /// Queues `message`, waiting for room when the queue is full.
    ///
    /// With room in the queue, the message is queued before the first await point. Hyper drops a
    /// request's future when its client disconnects, and a drop between the decision and the
    /// enqueue would leave a decision without its event.
    async fn enqueue(&self, message: Message) -> Result<(), AuditError> {
        let message = match self.sender.try_send(message) {
            Ok(()) => {
                self.wake_when_batch_full();
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(AuditError::Closed),
            Err(mpsc::error::TrySendError::Full(message)) => message,
        };
        match self
            .sender
            .send_timeout(message, self.enqueue_timeout)
            .await
        {
            Ok(()) => {
                self.wake_when_batch_full();
                Ok(())
            }
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::warn!(
                    timeout_ms = self.enqueue_timeout.as_millis() as u64,
                    "audit queue full; rejecting the request"
                );
                Err(AuditError::QueueFull(self.enqueue_timeout))
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(AuditError::Closed),
        }
    }

    fn wake_when_batch_full(&self) {
        if self.queue_depth() + self.wake.held.load(Ordering::Relaxed) >= self.batch_size {
            self.wake.notify.notify_one();
        }
    }
}
