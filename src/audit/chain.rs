//! The hash chain over audit events and its verification.
//!
//! An event's hash is SHA-256 over a canonical serialization: a JSON array, in a fixed order, of
//! a version tag, the chain id, the sequence number, every recorded field (the detail as its
//! stored text) and the hex of `prev_hash`. The first event of a chain has 32 zero bytes as
//! `prev_hash`. serde_json writes an array of strings, integers and nulls the same way every
//! time, so the serialization is stable.
//!
//! Verification walks each chain in sequence order from its retention checkpoint (or from the
//! start) and stops at the first bad event. It detects an edited event, a deleted one (a gap in
//! the sequence numbers), a reordered one and a broken link. It cannot detect deleted events at
//! the end of a chain, because nothing after them refers to them.

use sha2::{Digest, Sha256};

use super::store::{self, StoredEvent};
use crate::store::{Store, StoreResult};

/// The `prev_hash` of the first event of a chain.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Rows read per query while walking a chain.
const PAGE_SIZE: i64 = 1000;

/// Sequence numbers tried on each side of a bad event's own number, to tell a moved event from
/// an edited one.
const REORDER_WINDOW: i64 = 1000;

/// The fields an event's hash covers, in their stored form.
pub struct HashInput<'a> {
    pub chain_id: &'a str,
    pub seq: i64,
    pub occurred_at: i64,
    pub action: &'a str,
    pub outcome: &'a str,
    pub reason: &'a str,
    pub fingerprint: Option<&'a str>,
    pub source: &'a str,
    pub adapter: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    pub machine_id: Option<&'a str>,
    pub client_address: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub prev_hash: &'a [u8],
}

impl HashInput<'_> {
    /// Computes SHA-256 over the canonical serialization.
    pub fn hash(&self) -> [u8; 32] {
        let canonical = serde_json::json!([
            "authbridge-audit-v1",
            self.chain_id,
            self.seq,
            self.occurred_at,
            self.action,
            self.outcome,
            self.reason,
            self.fingerprint,
            self.source,
            self.adapter,
            self.tenant_id,
            self.machine_id,
            self.client_address,
            self.request_id,
            self.detail,
            hex::encode(self.prev_hash),
        ]);
        Sha256::digest(canonical.to_string().as_bytes()).into()
    }
}

impl StoredEvent {
    /// Builds the hash input of this row, with `seq` in place of its stored sequence number.
    fn hash_input(&self, seq: i64) -> HashInput<'_> {
        HashInput {
            chain_id: &self.chain_id,
            seq,
            occurred_at: self.occurred_at,
            action: &self.action,
            outcome: &self.outcome,
            reason: &self.reason,
            fingerprint: self.fingerprint.as_deref(),
            source: &self.source,
            adapter: self.adapter.as_deref(),
            tenant_id: self.tenant_id.as_deref(),
            machine_id: self.machine_id.as_deref(),
            client_address: self.client_address.as_deref(),
            request_id: self.request_id.as_deref(),
            detail: self.detail.as_deref(),
            prev_hash: &self.prev_hash,
        }
    }

    /// True when the stored hash matches the row's fields.
    pub fn hash_matches(&self) -> bool {
        self.hash_input(self.seq).hash().as_slice() == self.hash.as_slice()
    }
}

/// The kind of fault found at the first bad event of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The row's fields no longer match its hash.
    Edited,
    /// Sequence numbers `first..=last` are missing before this event.
    Deleted { first: i64, last: i64 },
    /// The row is intact but was written with sequence number `written_as`.
    Reordered { written_as: i64 },
    /// The row is intact, but its `prev_hash` is not the hash of the event before it: an event
    /// before it was replaced, or deleted and the later rows renumbered.
    BrokenLink,
}

/// The first bad event of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFault {
    pub chain_id: String,
    /// The sequence number the bad row is stored under.
    pub seq: i64,
    pub kind: FaultKind,
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (chain, seq) = (&self.chain_id, self.seq);
        match &self.kind {
            FaultKind::Edited => write!(
                f,
                "chain {chain} event {seq}: edited (its fields do not match its hash)"
            ),
            FaultKind::Deleted { first, last } if first == last => {
                write!(
                    f,
                    "chain {chain} event {seq}: event {first} before it was deleted"
                )
            }
            FaultKind::Deleted { first, last } => write!(
                f,
                "chain {chain} event {seq}: events {first} to {last} before it were deleted"
            ),
            FaultKind::Reordered { written_as } => write!(
                f,
                "chain {chain} event {seq}: reordered (it was written as event {written_as})"
            ),
            FaultKind::BrokenLink => write!(
                f,
                "chain {chain} event {seq}: its prev_hash does not match the event before it \
                 (an earlier event was replaced, or deleted and the later events renumbered)"
            ),
        }
    }
}

/// The result of verifying one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub chain_id: String,
    /// Sequence number of the retention checkpoint the walk started after, if any.
    pub checkpoint_seq: Option<i64>,
    /// Events checked before the walk ended.
    pub events_checked: u64,
    pub last_seq: Option<i64>,
    pub fault: Option<ChainFault>,
}

/// Verifies every chain in the store, in chain id order.
pub async fn verify_chains(store: &Store) -> StoreResult<Vec<ChainReport>> {
    let mut reports = Vec::new();
    for chain_id in store::chain_ids(store).await? {
        reports.push(verify_chain(store, &chain_id).await?);
    }
    Ok(reports)
}

/// Walks one chain in sequence order, page by page, and stops at the first bad event.
pub async fn verify_chain(store: &Store, chain_id: &str) -> StoreResult<ChainReport> {
    let checkpoint = store::checkpoint(store, chain_id).await?;
    let (mut expected_seq, mut expected_prev) = match &checkpoint {
        Some((seq, hash)) => (seq + 1, hash.clone()),
        None => (1, GENESIS_HASH.to_vec()),
    };
    let mut report = ChainReport {
        chain_id: chain_id.to_owned(),
        checkpoint_seq: checkpoint.as_ref().map(|(seq, _)| *seq),
        events_checked: 0,
        last_seq: None,
        fault: None,
    };
    loop {
        let page = store::chain_page(store, chain_id, expected_seq - 1, PAGE_SIZE).await?;
        if page.is_empty() {
            return Ok(report);
        }
        for event in &page {
            if let Some(kind) = check_event(event, expected_seq, &expected_prev) {
                report.fault = Some(ChainFault {
                    chain_id: chain_id.to_owned(),
                    seq: event.seq,
                    kind,
                });
                return Ok(report);
            }
            report.events_checked += 1;
            report.last_seq = Some(event.seq);
            expected_seq = event.seq + 1;
            expected_prev = event.hash.clone();
        }
    }
}

/// Returns what is wrong with `event`, given the sequence number and `prev_hash` it must have.
fn check_event(event: &StoredEvent, expected_seq: i64, expected_prev: &[u8]) -> Option<FaultKind> {
    if !event.hash_matches() {
        // A row moved by changing its sequence number still matches the number it was written
        // with, so try the numbers around it before calling it edited.
        let written_as = (event.seq - REORDER_WINDOW..=event.seq + REORDER_WINDOW)
            .filter(|seq| *seq != event.seq && *seq > 0)
            .find(|seq| event.hash_input(*seq).hash().as_slice() == event.hash.as_slice());
        return Some(match written_as {
            Some(written_as) => FaultKind::Reordered { written_as },
            None => FaultKind::Edited,
        });
    }
    if event.seq > expected_seq {
        return Some(FaultKind::Deleted {
            first: expected_seq,
            last: event.seq - 1,
        });
    }
    if event.prev_hash != expected_prev {
        return Some(FaultKind::BrokenLink);
    }
    None
}
