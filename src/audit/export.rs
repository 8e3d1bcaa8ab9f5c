//! Export of audit events as JSON Lines or CSV, read from the store page by page.

use std::io::Write;

use serde_json::{json, Value};

use super::store::{events_page, EventFilter, PageOrder, StoredEvent};
use crate::clock::to_rfc3339;
use crate::store::Store;

/// Rows read per query while exporting.
const PAGE_SIZE: i64 = 1000;

/// Output format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// Column order of the CSV export; the JSON Lines objects use the same names.
pub const CSV_HEADER: [&str; 17] = [
    "id",
    "chainId",
    "seq",
    "time",
    "action",
    "outcome",
    "reason",
    "fingerprint",
    "source",
    "adapter",
    "tenantId",
    "machineId",
    "clientAddress",
    "requestId",
    "detail",
    "prevHash",
    "hash",
];

impl StoredEvent {
    /// Converts the event to a JSON object: camelCase names, RFC 3339 time, hashes in hex, and the
    /// detail as parsed JSON (or its text when it does not parse).
    pub fn to_json(&self) -> Value {
        let detail = self
            .detail
            .as_deref()
            .map(|text| serde_json::from_str(text).unwrap_or_else(|_| Value::from(text)));
        json!({
            "id": self.id,
            "chainId": self.chain_id,
            "seq": self.seq,
            "time": to_rfc3339(self.occurred_at),
            "action": self.action,
            "outcome": self.outcome,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            "source": self.source,
            "adapter": self.adapter,
            "tenantId": self.tenant_id,
            "machineId": self.machine_id,
            "clientAddress": self.client_address,
            "requestId": self.request_id,
            "detail": detail,
            "prevHash": hex::encode(&self.prev_hash),
            "hash": hex::encode(&self.hash),
        })
    }

    fn csv_fields(&self) -> [String; 17] {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        [
            self.id.to_string(),
            self.chain_id.clone(),
            self.seq.to_string(),
            to_rfc3339(self.occurred_at),
            self.action.clone(),
            self.outcome.clone(),
            self.reason.clone(),
            text(&self.fingerprint),
            self.source.clone(),
            text(&self.adapter),
            text(&self.tenant_id),
            text(&self.machine_id),
            text(&self.client_address),
            text(&self.request_id),
            text(&self.detail),
            hex::encode(&self.prev_hash),
            hex::encode(&self.hash),
        ]
    }
}

/// Quotes a CSV field when it contains a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn write_csv_line<W: Write>(out: &mut W, fields: &[impl AsRef<str>]) -> std::io::Result<()> {
    let line: Vec<String> = fields.iter().map(|f| csv_field(f.as_ref())).collect();
    writeln!(out, "{}", line.join(","))
}

/// Writes the events that match `filter`, oldest first, and returns how many were written.
/// CSV output starts with a header line, which the count leaves out.
pub async fn export<W: Write>(
    store: &Store,
    filter: &EventFilter,
    format: ExportFormat,
    out: &mut W,
) -> anyhow::Result<u64> {
    if format == ExportFormat::Csv {
        write_csv_line(out, &CSV_HEADER)?;
    }
    let mut cursor = None;
    let mut written = 0;
    loop {
        let page = events_page(store, filter, cursor, PageOrder::Ascending, PAGE_SIZE).await?;
        let Some(last) = page.last() else {
            break;
        };
        cursor = Some(last.id);
        for event in &page {
            match format {
                ExportFormat::Jsonl => writeln!(out, "{}", event.to_json())?,
                ExportFormat::Csv => write_csv_line(out, &event.csv_fields())?,
            }
            written += 1;
        }
        out.flush()?;
    }
    Ok(written)
}
