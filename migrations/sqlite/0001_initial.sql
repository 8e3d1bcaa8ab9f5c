-- Initial schema of the daemon's own store (SQLite). Times are Unix seconds; JSON is text.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    parent_id TEXT REFERENCES tenants (id),
    name TEXT NOT NULL,
    inherit_roles INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX tenants_parent_id ON tenants (parent_id);

CREATE TABLE machines (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT,
    jwks TEXT,
    roles TEXT NOT NULL,
    scopes TEXT NOT NULL,
    audiences TEXT NOT NULL,
    claims TEXT NOT NULL,
    mode TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX machines_tenant_id ON machines (tenant_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT,
    role TEXT NOT NULL,
    mode TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    replaced_by TEXT
);
CREATE INDEX api_keys_tenant_id ON api_keys (tenant_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL,
    status TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at INTEGER
);

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);

CREATE TABLE assertion_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
