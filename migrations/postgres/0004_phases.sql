-- Migration phase changes per adapter (tenant_id NULL) or per tenant, kept as history: the row
-- in force is the latest whose effective_at has passed, so a scheduled change is a row with a
-- future effective_at, and restoring an earlier phase is one more row.

CREATE TABLE phase_changes (
    id BIGSERIAL PRIMARY KEY,
    adapter TEXT NOT NULL,
    tenant_id TEXT,
    phase TEXT NOT NULL,
    effective_at BIGINT NOT NULL,
    sunset_at BIGINT,
    created_at BIGINT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX phase_changes_adapter ON phase_changes (adapter);

-- Exceptions that keep legacy access alive past enforcement, for a tenant (and its subtree) or
-- one credential, until expires_at.
CREATE TABLE phase_exceptions (
    id BIGSERIAL PRIMARY KEY,
    adapter TEXT NOT NULL,
    tenant_id TEXT,
    credential_fingerprint TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    actor TEXT NOT NULL
);
