-- Indexes for the migration progress report, which aggregates audit events by time, by adapter
-- and by source, and joins replacement links by credential fingerprint.

CREATE INDEX audit_events_adapter_time ON audit_events (adapter, occurred_at);
CREATE INDEX audit_events_source_time ON audit_events (source, occurred_at);
CREATE INDEX legacy_links_tenant_id ON legacy_links (tenant_id);
