-- Audit events in hash chains, one chain per daemon instance (SQLite). Times are Unix seconds;
-- detail is JSON text; hashes are 32-byte SHA-256 digests.

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    occurred_at INTEGER NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    fingerprint TEXT,
    source TEXT NOT NULL,
    adapter TEXT,
    tenant_id TEXT,
    machine_id TEXT,
    client_address TEXT,
    request_id TEXT,
    detail TEXT,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    UNIQUE (chain_id, seq)
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_tenant_id ON audit_events (tenant_id, id);
CREATE INDEX audit_events_fingerprint ON audit_events (fingerprint);

-- Where verification of a pruned chain starts: the last deleted event and its hash.
CREATE TABLE audit_checkpoints (
    chain_id TEXT PRIMARY KEY NOT NULL,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    pruned_before INTEGER NOT NULL
);
