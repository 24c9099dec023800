-- Webhook endpoints, the event outbox, deliveries and their attempts; email notifications.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- Space-separated event names.
    events TEXT NOT NULL,
    -- JSON object of custom headers, wrapped by the master key (may carry receivers' tokens).
    headers_wrapped TEXT NOT NULL,
    secret_wrapped TEXT NOT NULL,
    previous_secret_wrapped TEXT,
    previous_secret_expires_at TEXT,
    timeout_seconds BIGINT NOT NULL,
    max_retries BIGINT NOT NULL,
    backoff_seconds BIGINT NOT NULL,
    batch_max_events BIGINT NOT NULL,
    batch_max_wait_seconds BIGINT NOT NULL,
    rate_limit_per_second BIGINT,
    progress_interval_seconds BIGINT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    -- closed | open | half_open; while not closed, circuit_retry_at is when the next probe may go.
    circuit_state TEXT NOT NULL DEFAULT 'closed',
    circuit_retry_at TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    failing_since TEXT,
    -- Rate limit: the earliest time the next call may start (GCRA theoretical arrival time).
    next_send_at TEXT,
    last_progress_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_customer ON webhook_endpoints (customer_id, created_at);

CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    -- NULL for platform events sent to every customer (system.maintenance).
    customer_id TEXT,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES webhook_events (id),
    event_type TEXT NOT NULL,
    is_test BIGINT NOT NULL DEFAULT 0,
    -- pending | sending | retrying | succeeded | dead
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_owner TEXT,
    lease_expires_at TEXT,
    last_http_status BIGINT,
    last_latency_ms BIGINT,
    last_error TEXT,
    last_response TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_customer ON webhook_deliveries (customer_id, status, created_at);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    -- The id of the call when several deliveries went in one batch.
    call_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    succeeded BIGINT NOT NULL,
    http_status BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    response_excerpt TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, started_at);

CREATE TABLE email_settings (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    -- Space-separated addresses and event names.
    recipients TEXT NOT NULL,
    events TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL
);

CREATE TABLE email_outbox (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES webhook_events (id),
    event_type TEXT NOT NULL,
    recipients TEXT NOT NULL,
    -- pending | sending | sent | failed
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_expires_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);
