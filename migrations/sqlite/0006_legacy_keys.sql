-- Imported copies of legacy API keys (bulk import or lazy import on first verification), so that
-- in the phases `dual` and `sunset` a legacy key verifies without the legacy store.
--
-- `lookup` is the value the adapter binds to its query (the `lookup` capture, or its digest when
-- the adapter sets `lookup_hash`). `legacy_hash` is checked with the scheme named in
-- `hash_scheme`. `owner`, `tenant_hint` and `key_id` are JSON values and `scopes` a JSON array, as
-- the legacy row held them. `own_hmac` is the daemon's HMAC-SHA256 (hex, under its pepper) of the
-- whole key, set once the key has been verified in clear. Times are Unix seconds.

CREATE TABLE legacy_keys (
    adapter TEXT NOT NULL,
    lookup TEXT NOT NULL,
    legacy_hash TEXT NOT NULL,
    hash_scheme TEXT NOT NULL,
    owner TEXT,
    tenant_hint TEXT,
    key_id TEXT,
    scopes TEXT,
    expires_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL,
    source_updated_at INTEGER,
    imported_at INTEGER NOT NULL,
    changed_at INTEGER NOT NULL,
    own_hmac TEXT,
    first_seen_at INTEGER,
    last_seen_at INTEGER,
    PRIMARY KEY (adapter, lookup)
);

-- Where an interrupted `authbridge import` resumes: the last lookup value of the last committed
-- batch. `finished_at` is set when a run reaches the end, so the next run starts from the
-- beginning again.
CREATE TABLE legacy_import_cursors (
    adapter TEXT PRIMARY KEY,
    last_lookup TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
