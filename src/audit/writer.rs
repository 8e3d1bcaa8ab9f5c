//! The writer task: takes events from the queue, chains them and writes each batch in one
//! transaction. It owns the chain's next sequence number and last hash, so no lock is needed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::chain::{HashInput, GENESIS_HASH};
use super::store::{self, StoredEvent};
use super::{AuditEvent, Message, WriterWake};
use crate::clock::SharedClock;
use crate::config::{AuditConfig, AuditMode};
use crate::store::Store;

/// How often old events are pruned when `audit.retention_days` is set.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Maximum wait between attempts to write a batch while the database fails.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// An event waiting to be written, with the sender to notify in `sync` mode.
struct Pending {
    event: AuditEvent,
    committed: Option<oneshot::Sender<Result<(), String>>>,
}

pub(super) struct Writer {
    store: Store,
    chain_id: String,
    next_seq: i64,
    prev_hash: Vec<u8>,
    mode: AuditMode,
    batch_size: usize,
    flush_interval: Duration,
    retention_days: u32,
    clock: SharedClock,
    /// Set when a failed batch was dropped because its callers got the error (sync mode). Its
    /// commit may have succeeded all the same, so the chain's last stored event is read before
    /// the next write, and nothing is written while that read fails.
    head_unconfirmed: bool,
}

impl Writer {
    pub(super) fn new(
        store: Store,
        config: &AuditConfig,
        clock: SharedClock,
        chain_id: String,
    ) -> Self {
        Self {
            store,
            chain_id,
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_vec(),
            mode: config.mode,
            batch_size: config.batch_size.max(1),
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            retention_days: config.retention_days,
            clock,
            head_unconfirmed: false,
        }
    }

    /// Runs until a shutdown message arrives or every sender is gone, then writes what is left.
    ///
    /// In batched mode, once a batch is open the writer does not wait on the queue for each
    /// event, because every such wait lets the next sender wake this task, once per event. It
    /// sleeps until the batch's deadline instead, or until `wake` fires: [`super::Audit`] fires
    /// it when the queue and the open batch together contain a full batch, and after sending a
    /// flush or shutdown message.
    pub(super) async fn run(
        mut self,
        mut receiver: mpsc::Receiver<Message>,
        wake: Arc<WriterWake>,
    ) {
        let mut batch: Vec<Pending> = Vec::new();
        let mut deadline = Instant::now();
        let mut stopped_waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut prune_timer = tokio::time::interval(PRUNE_INTERVAL);
        prune_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            let message = if self.mode == AuditMode::Batched && !batch.is_empty() {
                match receiver.try_recv() {
                    Ok(message) => Some(message),
                    Err(TryRecvError::Disconnected) => None,
                    Err(TryRecvError::Empty) if Instant::now() >= deadline => {
                        self.write(&mut batch).await;
                        continue;
                    }
                    Err(TryRecvError::Empty) => {
                        // After either, the loop takes what arrived meanwhile before it writes.
                        wake.held.store(batch.len(), Ordering::Relaxed);
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline) => {}
                            _ = wake.notify.notified() => {}
                        }
                        wake.held.store(0, Ordering::Relaxed);
                        continue;
                    }
                }
            } else {
                tokio::select! {
                    message = receiver.recv() => message,
                    _ = tokio::time::sleep_until(deadline), if !batch.is_empty() => {
                        self.write(&mut batch).await;
                        continue;
                    }
                    _ = prune_timer.tick(), if self.retention_days > 0 && batch.is_empty() => {
                        self.prune().await;
                        continue;
                    }
                }
            };
            match message {
                Some(Message::Event(event, committed)) => {
                    if batch.is_empty() {
                        deadline = Instant::now() + self.flush_interval;
                    }
                    batch.push(Pending {
                        event: *event,
                        committed,
                    });
                    // In sync mode a batch is whatever arrived while the last one was written,
                    // so callers wait for at most one transaction before theirs.
                    let sync_ready = self.mode == AuditMode::Sync && receiver.is_empty();
                    if batch.len() >= self.batch_size || sync_ready {
                        self.write(&mut batch).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    self.write(&mut batch).await;
                    let _ = done.send(());
                }
                Some(Message::Shutdown(done)) => {
                    // Closing stops new messages; those already queued are still received.
                    receiver.close();
                    stopped_waiters.push(done);
                }
                None => {
                    self.write(&mut batch).await;
                    tracing::info!(audit.chain = %self.chain_id, last_seq = self.next_seq - 1, "audit writer stopped");
                    for done in stopped_waiters {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    /// Writes `batch` in one transaction and empties it. A failed write is retried with backoff
    /// until it succeeds, which blocks the queue and so slows the handlers down. In sync mode the
    /// waiting callers get the error instead and their events are dropped from the batch.
    async fn write(&mut self, batch: &mut Vec<Pending>) {
        let mut delay = Duration::from_millis(100);
        // Set once a commit of this batch failed: from then on, every failure is checked
        // against the store, because a retry of stored rows fails on their sequence numbers.
        // Checking after other failures would only add a second wait for a connection while
        // the database is unreachable.
        let mut maybe_stored = false;
        while !batch.is_empty() {
            let settled = self.confirm_chain_head().await;
            let rows = self.chain_rows(batch);
            let result = match settled {
                Ok(()) => store::insert_batch(&self.store, &rows).await,
                Err(error) => Err(error),
            };
            if let Err(failed) = &result {
                maybe_stored |= failed.at_commit;
            }
            match result.map_err(|failed| failed.error) {
                Ok(()) => {}
                Err(error) if maybe_stored && self.committed_despite_error(&rows).await => {
                    tracing::warn!(%error, audit.chain = %self.chain_id, "audit batch reported an error but is stored");
                }
                Err(error) => {
                    tracing::error!(%error, audit.chain = %self.chain_id, events = batch.len(), "writing audit events failed; retrying");
                    let message = error.to_string();
                    batch.retain_mut(|pending| match pending.committed.take() {
                        Some(committed) => {
                            let _ = committed.send(Err(message.clone()));
                            false
                        }
                        None => true,
                    });
                    if batch.is_empty() {
                        self.head_unconfirmed = true;
                    } else {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(MAX_RETRY_DELAY);
                    }
                    continue;
                }
            }
            if let Some(last) = rows.last() {
                self.next_seq = last.seq + 1;
                self.prev_hash = last.hash.clone();
            }
            for pending in batch.drain(..) {
                if let Some(committed) = pending.committed {
                    let _ = committed.send(Ok(()));
                }
            }
        }
    }

    /// Continues the chain after its last stored event when `head_unconfirmed` is set, because
    /// a batch whose callers got an error may be stored. Only this writer writes the chain, so
    /// that event is the chain's true head.
    async fn confirm_chain_head(&mut self) -> Result<(), store::InsertBatchError> {
        if !self.head_unconfirmed {
            return Ok(());
        }
        let last = sqlx::query(
            "SELECT seq, hash FROM audit_events WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(&self.chain_id)
        .fetch_optional(self.store.pool())
        .await?;
        if let Some(last) = last {
            let seq: i64 = last.try_get("seq")?;
            if seq >= self.next_seq {
                tracing::warn!(audit.chain = %self.chain_id, seq, "audit events reported to their requests as failed are stored; continuing the chain after them");
                self.next_seq = seq + 1;
                self.prev_hash = last.try_get("hash")?;
            }
        }
        self.head_unconfirmed = false;
        Ok(())
    }

    /// Assigns sequence numbers and hashes to the batch, continuing the chain.
    fn chain_rows(&self, batch: &[Pending]) -> Vec<StoredEvent> {
        let mut prev_hash = self.prev_hash.clone();
        let mut rows = Vec::with_capacity(batch.len());
        for (seq, pending) in (self.next_seq..).zip(batch) {
            let event = &pending.event;
            let hash = HashInput {
                chain_id: &self.chain_id,
                seq,
                occurred_at: event.occurred_at,
                action: &event.action,
                outcome: event.outcome.as_str(),
                reason: &event.reason,
                fingerprint: event.fingerprint.as_deref(),
                source: &event.source,
                adapter: event.adapter.as_deref(),
                tenant_id: event.tenant_id.as_deref(),
                machine_id: event.machine_id.as_deref(),
                client_address: event.client_address.as_deref(),
                request_id: event.request_id.as_deref(),
                detail: event.detail.as_deref(),
                prev_hash: &prev_hash,
            }
            .hash()
            .to_vec();
            rows.push(StoredEvent {
                id: 0,
                chain_id: self.chain_id.clone(),
                seq,
                occurred_at: event.occurred_at,
                action: event.action.clone(),
                outcome: event.outcome.as_str().to_owned(),
                reason: event.reason.clone(),
                fingerprint: event.fingerprint.clone(),
                source: event.source.clone(),
                adapter: event.adapter.clone(),
                tenant_id: event.tenant_id.clone(),
                machine_id: event.machine_id.clone(),
                client_address: event.client_address.clone(),
                request_id: event.request_id.clone(),
                detail: event.detail.clone(),
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
            });
        }
        rows
    }

    /// True when the batch's last row is in the store after all: a commit can succeed although
    /// its acknowledgement was lost, and writing the rows again would break the unique sequence.
    async fn committed_despite_error(&self, rows: &[StoredEvent]) -> bool {
        let Some(last) = rows.last() else {
            return false;
        };
        let stored = sqlx::query("SELECT hash FROM audit_events WHERE chain_id = $1 AND seq = $2")
            .bind(&self.chain_id)
            .bind(last.seq)
            .fetch_optional(self.store.pool())
            .await;
        match stored {
            Ok(Some(row)) => row
                .try_get::<Vec<u8>, _>("hash")
                .is_ok_and(|hash| hash == last.hash),
            _ => false,
        }
    }

    async fn prune(&self) {
        let cutoff = self.clock.now() - i64::from(self.retention_days) * 86_400;
        match store::prune(&self.store, cutoff).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(
                    deleted,
                    retention_days = self.retention_days,
                    "pruned old audit events"
                )
            }
            Err(error) => {
                tracing::warn!(%error, "pruning old audit events failed; retrying at the next interval")
            }
        }
    }
}
