-- Migration phase changes per adapter (tenant_id NULL) or per tenant, kept as history: the row
-- in force is the latest whose effective_at has passed, so a scheduled change is a row with a
-- future effective_at, and restoring an earlier phase is one more row.

CREATE TABLE phase_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    adapter TEXT NOT NULL,
    tenant_id TEXT,
    phase TEXT NOT NULL,
    effective_at INTEGER NOT NULL,
    sunset_at INTEGER,
    created_at INTEGER NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX phase_changes_adapter ON phase_changes (adapter);

-- Exceptions that keep legacy access alive past enforcement, for a tenant (and its subtree) or
-- one credential, until expires_at.
CREATE TABLE phase_exceptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    adapter TEXT NOT NULL,
    tenant_id TEXT,
    credential_fingerprint TEXT,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    actor TEXT NOT NULL
);
