-- Customers, their API keys and the audit trail. Portable between SQLite and
-- PostgreSQL: ids are text, times are RFC 3339 UTC text (sortable), counts BIGINT.
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source_url_wrapped TEXT NOT NULL,
    ip_allowlist TEXT NOT NULL DEFAULT '[]',
    rate_limit_per_minute BIGINT,
    data_key_wrapped TEXT NOT NULL,
    data_key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_keys_customer ON api_keys (customer_id);

CREATE TABLE audit_entries (
    id TEXT PRIMARY KEY,
    customer_id TEXT,
    key_id TEXT,
    action TEXT NOT NULL,
    method TEXT,
    path TEXT,
    status BIGINT,
    duration_ms BIGINT,
    ip TEXT,
    request_id TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX audit_entries_customer_time ON audit_entries (customer_id, created_at);
