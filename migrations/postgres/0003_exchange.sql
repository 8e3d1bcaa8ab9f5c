-- Native API keys minted by token exchange for a legacy credential, so each legacy credential
-- gets at most one replacement and progress can count it as migrated.

CREATE TABLE legacy_links (
    credential_hash TEXT PRIMARY KEY NOT NULL,
    adapter TEXT NOT NULL,
    legacy_subject TEXT,
    tenant_id TEXT NOT NULL,
    api_key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX legacy_links_adapter ON legacy_links (adapter);
