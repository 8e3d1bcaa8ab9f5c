//! Bulk import of legacy API keys (`authbridge import ADAPTER`) into the daemon's `legacy_keys`
//! table.
//!
//! The adapter's `import_query` is read in keyset order, one page per batch. Each batch is
//! written in one transaction together with the import cursor (the last lookup value of the
//! batch), so an interrupted run resumes after the last committed batch. A row equal to the
//! stored copy is left alone, so a second run over an unchanged legacy table writes no key.
//! A run that reaches the end marks the cursor finished, and the next run starts from the
//! beginning again, which is how revocations and expiry changes in the legacy store arrive.

use std::collections::{BTreeMap, HashSet};

use indicatif::ProgressBar;

use super::imported::key_data;
use super::sql_keys::SqlKeysAdapter;
use super::Adapter;
use crate::store::{LegacyImportBatch, LegacyKeyData, Store};

/// Default rows per batch.
pub const DEFAULT_BATCH_SIZE: u32 = 1000;
/// Largest batch size, so one transaction stays short.
pub const MAX_BATCH_SIZE: u32 = 50_000;

/// Options of one import run.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub batch_size: u32,
    /// Compare with the stored copy and count the outcomes, but write nothing.
    pub dry_run: bool,
    /// Ignore an unfinished cursor and read from the first row.
    pub from_start: bool,
    /// Stop after this many batches, as if interrupted. The next run resumes.
    pub max_batches: Option<u64>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            dry_run: false,
            from_start: false,
            max_batches: None,
        }
    }
}

/// Counts of one run by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Skipped rows by reason.
    pub skipped: BTreeMap<String, u64>,
    pub batches: u64,
    /// The lookup value after which this run started, when it resumed an interrupted run.
    pub resumed_after: Option<String>,
    /// True when the run read the legacy table to its end.
    pub finished: bool,
    pub dry_run: bool,
}

impl ImportSummary {
    pub fn rows_read(&self) -> u64 {
        self.inserted + self.updated + self.unchanged + self.skipped.values().sum::<u64>()
    }

    fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_owned()).or_default() += 1;
    }
}

/// An import that could not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("adapter {0:?} is not a `sql_keys` adapter; only `sql_keys` adapters can be imported")]
    NotSqlKeys(String),
    #[error("adapter {0:?} has no `import_query`; see docs/import.md for how to write one")]
    NoImportQuery(String),
    #[error("batch size {0} is invalid: use 1 to {MAX_BATCH_SIZE}")]
    BatchSize(u32),
    #[error("reading the legacy store failed: {0}")]
    Legacy(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Returns the `sql_keys` adapter behind `adapter`, checking that it can be imported.
pub fn importable(adapter: &Adapter) -> Result<&SqlKeysAdapter, ImportError> {
    let keys = adapter
        .verifier
        .sql_keys()
        .ok_or_else(|| ImportError::NotSqlKeys(adapter.name.clone()))?;
    if !keys.has_import_query() {
        return Err(ImportError::NoImportQuery(adapter.name.clone()));
    }
    Ok(keys)
}

/// Runs `count_query` of an importable adapter, or returns `None` when it has none.
pub async fn count_rows(adapter: &Adapter) -> Result<Option<u64>, ImportError> {
    importable(adapter)?
        .count_import_rows()
        .await
        .map_err(ImportError::Legacy)
}

/// Imports the keys of `adapter`, advancing `progress` by the rows read. `now` gives the time
/// stamped on written rows.
pub async fn run(
    store: &Store,
    adapter: &Adapter,
    options: &ImportOptions,
    progress: &ProgressBar,
    now: impl Fn() -> i64,
) -> Result<ImportSummary, ImportError> {
    let keys = importable(adapter)?;
    if !(1..=MAX_BATCH_SIZE).contains(&options.batch_size) {
        return Err(ImportError::BatchSize(options.batch_size));
    }
    let name = adapter.name.as_str();
    let mut summary = ImportSummary {
        dry_run: options.dry_run,
        ..ImportSummary::default()
    };
    let mut after = String::new();
    if !options.from_start {
        if let Some(cursor) = store.legacy_import_cursor(name).await? {
            if cursor.finished_at.is_none() {
                after = cursor.last_lookup.clone();
                summary.resumed_after = Some(cursor.last_lookup);
            }
        }
    }

    loop {
        if options
            .max_batches
            .is_some_and(|max| summary.batches >= max)
        {
            return Ok(summary);
        }
        let page = keys
            .fetch_import_page(&after, options.batch_size)
            .await
            .map_err(ImportError::Legacy)?;
        let finished = page.len() < options.batch_size as usize;
        let Some(last) = page.last() else {
            // An empty page after full ones: the previous batch ended exactly at the end.
            if !options.dry_run && summary.batches > 0 {
                let batch = LegacyImportBatch {
                    cursor: &after,
                    finished: true,
                    ..LegacyImportBatch::default()
                };
                store.apply_legacy_import_batch(name, &batch, now()).await?;
            }
            summary.finished = true;
            return Ok(summary);
        };
        // Lookup order is the legacy database's collation, which may differ from byte order, so
        // only a page that repeats the cursor value shows a query without `lookup > $1`.
        if !after.is_empty() && page.iter().any(|row| row.lookup == after) {
            return Err(ImportError::Legacy(format!(
                "`import_query` did not move past the lookup value {after:?}: it must filter `lookup > $1` and order by the lookup column"
            )));
        }
        let next_after = last.lookup.clone();
        let rows_read = page.len() as u64;

        let mut rows: Vec<(String, LegacyKeyData)> = Vec::with_capacity(page.len());
        let mut seen = HashSet::with_capacity(page.len());
        for row in page {
            if row.lookup.is_empty() {
                summary.skip("empty lookup value");
                continue;
            }
            if !seen.insert(row.lookup.clone()) {
                summary.skip("duplicate lookup value");
                continue;
            }
            match row.record {
                Ok(record) => rows.push((
                    row.lookup,
                    key_data(&record, keys.hash_scheme_name(), row.source_updated_at),
                )),
                Err(problem) => {
                    tracing::warn!(adapter.name = %name, %problem, "legacy key row skipped");
                    summary.skip(&format!("unreadable row: {problem}"));
                }
            }
        }

        let lookups: Vec<&str> = rows.iter().map(|(lookup, _)| lookup.as_str()).collect();
        let existing = store.legacy_key_data(name, &lookups).await?;
        let mut batch = LegacyImportBatch {
            cursor: &next_after,
            finished,
            ..LegacyImportBatch::default()
        };
        for (lookup, data) in &rows {
            match existing.get(lookup) {
                None => batch.inserts.push((lookup, data)),
                Some(stored) if stored == data => summary.unchanged += 1,
                Some(_) => batch.updates.push((lookup, data)),
            }
        }
        summary.inserted += batch.inserts.len() as u64;
        summary.updated += batch.updates.len() as u64;
        if !options.dry_run {
            store.apply_legacy_import_batch(name, &batch, now()).await?;
            // An import inside the daemon makes its changes seen at once. One run by the CLI
            // reaches a running daemon when the daemon's cached row expires.
            for (lookup, _) in &batch.updates {
                keys.imported_rows().forget(lookup);
            }
        }
        summary.batches += 1;
        progress.inc(rows_read);
        after = next_after;
        if finished {
            summary.finished = true;
            return Ok(summary);
        }
    }
}
