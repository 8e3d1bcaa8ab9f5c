//! Audit rows in the store: batch inserts, chain walks, filtered pages, and retention pruning
//! with checkpoints.

use sqlx::Row;

use crate::store::{Backend, Store, StoreError, StoreResult};

const COLUMNS: &str = "id, chain_id, seq, occurred_at, action, outcome, reason, fingerprint, \
     source, adapter, tenant_id, machine_id, client_address, request_id, detail, prev_hash, hash";

/// An audit event as stored, with its place in its chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Row id, increasing in insertion order across all chains; the paging cursor.
    pub id: i64,
    pub chain_id: String,
    pub seq: i64,
    /// Unix seconds.
    pub occurred_at: i64,
    pub action: String,
    pub outcome: String,
    pub reason: String,
    pub fingerprint: Option<String>,
    pub source: String,
    pub adapter: Option<String>,
    pub tenant_id: Option<String>,
    pub machine_id: Option<String>,
    pub client_address: Option<String>,
    pub request_id: Option<String>,
    /// JSON text.
    pub detail: Option<String>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

fn event_from_row(row: &sqlx::any::AnyRow) -> StoreResult<StoredEvent> {
    Ok(StoredEvent {
        id: row.try_get("id")?,
        chain_id: row.try_get("chain_id")?,
        seq: row.try_get("seq")?,
        occurred_at: row.try_get("occurred_at")?,
        action: row.try_get("action")?,
        outcome: row.try_get("outcome")?,
        reason: row.try_get("reason")?,
        fingerprint: row.try_get("fingerprint")?,
        source: row.try_get("source")?,
        adapter: row.try_get("adapter")?,
        tenant_id: row.try_get("tenant_id")?,
        machine_id: row.try_get("machine_id")?,
        client_address: row.try_get("client_address")?,
        request_id: row.try_get("request_id")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Rows per INSERT statement: 16 columns each keeps a statement under SQLite's limit of 32,766
/// bound parameters and PostgreSQL's 65,535.
const ROWS_PER_INSERT: usize = 128;

/// Columns of one inserted audit row, in bind order.
const INSERT_COLUMNS: usize = 16;

/// A failed batch insert.
#[derive(Debug)]
pub(crate) struct InsertBatchError {
    pub(crate) error: StoreError,
    /// True when the commit failed. Only then may the rows be stored after all, because the
    /// commit can succeed while its acknowledgement is lost.
    pub(crate) at_commit: bool,
}

impl From<sqlx::Error> for InsertBatchError {
    fn from(error: sqlx::Error) -> Self {
        Self {
            error: error.into(),
            at_commit: false,
        }
    }
}

/// Inserts chained events in one transaction, many rows per statement; nothing is written when
/// any insert fails.
pub(crate) async fn insert_batch(
    store: &Store,
    events: &[StoredEvent],
) -> Result<(), InsertBatchError> {
    let mut transaction = store.pool().begin().await?;
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO audit_events (chain_id, seq, occurred_at, action, outcome, reason, \
             fingerprint, source, adapter, tenant_id, machine_id, client_address, request_id, \
             detail, prev_hash, hash) VALUES {}",
            values_placeholders(store.backend(), chunk.len(), INSERT_COLUMNS)
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            query = query
                .bind(&event.chain_id)
                .bind(event.seq)
                .bind(event.occurred_at)
                .bind(&event.action)
                .bind(&event.outcome)
                .bind(&event.reason)
                .bind(event.fingerprint.clone())
                .bind(&event.source)
                .bind(event.adapter.clone())
                .bind(event.tenant_id.clone())
                .bind(event.machine_id.clone())
                .bind(event.client_address.clone())
                .bind(event.request_id.clone())
                .bind(event.detail.clone())
                .bind(event.prev_hash.clone())
                .bind(event.hash.clone());
        }
        query.execute(&mut *transaction).await?;
    }
    transaction
        .commit()
        .await
        .map_err(|error| InsertBatchError {
            error: error.into(),
            at_commit: true,
        })
}

/// Returns `rows` groups of `columns` placeholders for a multi-row INSERT.
///
/// SQLite gets anonymous `?` placeholders. sqlx binds each numbered `$n` by asking SQLite for
/// its name, and SQLite finds a name by walking the list of all names. Binding a statement with
/// thousands of `$n` placeholders therefore takes time quadratic in their number: 45 % of the
/// daemon's CPU under verify load in a perf profile, before this change. PostgreSQL only accepts
/// `$n`.
fn values_placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let groups: Vec<String> = (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = (1..=columns)
                .map(|column| match backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${}", row * columns + column),
                })
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    groups.join(", ")
}

/// Ids of every chain that has events or a checkpoint, sorted.
pub async fn chain_ids(store: &Store) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT chain_id FROM audit_events UNION SELECT chain_id FROM audit_checkpoints \
         ORDER BY chain_id",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| row.try_get("chain_id").map_err(Into::into))
        .collect()
}

/// Reads the retention checkpoint of a chain: the last pruned sequence number and its hash.
pub async fn checkpoint(store: &Store, chain_id: &str) -> StoreResult<Option<(i64, Vec<u8>)>> {
    let row = sqlx::query("SELECT seq, hash FROM audit_checkpoints WHERE chain_id = $1")
        .bind(chain_id)
        .fetch_optional(store.pool())
        .await?;
    row.map(|row| Ok((row.try_get("seq")?, row.try_get("hash")?)))
        .transpose()
}

/// Up to `limit` events of a chain with a sequence number above `after_seq`, in sequence order.
pub async fn chain_page(
    store: &Store,
    chain_id: &str,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(chain_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(event_from_row).collect()
}

/// Conditions on the events a query returns; `None` matches everything.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub tenant_id: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub source: Option<String>,
    pub adapter: Option<String>,
    pub fingerprint: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
}

/// Order of a filtered page by row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageOrder {
    /// Oldest first, rows with an id above the cursor.
    Ascending,
    /// Newest first, rows with an id below the cursor.
    Descending,
}

/// Up to `limit` events that match `filter`, after the row id `cursor` in `order`.
///
/// NOTE: on PostgreSQL an id is drawn before its transaction commits, so a page read while
/// several instances write may miss a row with a lower id that commits just after the read.
pub async fn events_page(
    store: &Store,
    filter: &EventFilter,
    cursor: Option<i64>,
    order: PageOrder,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    let mut conditions = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut numbers: Vec<i64> = Vec::new();
    let text_filters = [
        ("tenant_id", &filter.tenant_id),
        ("outcome", &filter.outcome),
        ("reason", &filter.reason),
        ("source", &filter.source),
        ("adapter", &filter.adapter),
        ("fingerprint", &filter.fingerprint),
    ];
    for (column, value) in text_filters {
        if let Some(value) = value {
            texts.push(value.clone());
            conditions.push(format!("{column} = ${}", texts.len()));
        }
    }
    let mut number_conditions = Vec::new();
    if let Some(since) = filter.since {
        numbers.push(since);
        number_conditions.push(("occurred_at >=", numbers.len()));
    }
    if let Some(until) = filter.until {
        numbers.push(until);
        number_conditions.push(("occurred_at <", numbers.len()));
    }
    if let Some(cursor) = cursor {
        numbers.push(cursor);
        let comparison = match order {
            PageOrder::Ascending => "id >",
            PageOrder::Descending => "id <",
        };
        number_conditions.push((comparison, numbers.len()));
    }
    for (comparison, index) in number_conditions {
        conditions.push(format!("{comparison} ${}", texts.len() + index));
    }
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let direction = match order {
        PageOrder::Ascending => "ASC",
        PageOrder::Descending => "DESC",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events {where_clause} ORDER BY id {direction} LIMIT ${}",
        texts.len() + numbers.len() + 1
    );
    let mut query = sqlx::query(&sql);
    for text in texts {
        query = query.bind(text);
    }
    for number in numbers {
        query = query.bind(number);
    }
    let rows = query.bind(limit).fetch_all(store.pool()).await?;
    rows.iter().map(event_from_row).collect()
}

/// Deletes events that occurred before `cutoff` (Unix seconds) and moves each chain's checkpoint
/// to its last deleted event, so verification starts after it. Returns the rows deleted.
///
/// Per chain, only a prefix is deleted: the events up to the last one before `cutoff`, so the
/// rest of the chain still links to the checkpoint.
pub async fn prune(store: &Store, cutoff: i64) -> StoreResult<u64> {
    let rows = sqlx::query(
        "SELECT chain_id, MAX(seq) AS last_seq FROM audit_events WHERE occurred_at < $1 \
         GROUP BY chain_id",
    )
    .bind(cutoff)
    .fetch_all(store.pool())
    .await?;
    let mut deleted = 0;
    for row in rows {
        let chain_id: String = row.try_get("chain_id")?;
        let last_seq: i64 = row.try_get("last_seq")?;
        // Events never change once written, so the hash is read before the transaction, whose
        // first statement then writes and takes SQLite's write lock at once.
        let hash: Vec<u8> =
            sqlx::query("SELECT hash FROM audit_events WHERE chain_id = $1 AND seq = $2")
                .bind(&chain_id)
                .bind(last_seq)
                .fetch_one(store.pool())
                .await?
                .try_get("hash")?;
        let mut transaction = store.pool().begin().await?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (chain_id, seq, hash, pruned_before) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (chain_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             pruned_before = excluded.pruned_before",
        )
        .bind(&chain_id)
        .bind(last_seq)
        .bind(hash)
        .bind(cutoff)
        .execute(&mut *transaction)
        .await?;
        let result = sqlx::query("DELETE FROM audit_events WHERE chain_id = $1 AND seq <= $2")
            .bind(&chain_id)
            .bind(last_seq)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        deleted += result.rows_affected();
    }
    Ok(deleted)
}
