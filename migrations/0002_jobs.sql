-- Background extraction jobs: the queue, their progress and their stored file.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    procedure_name TEXT NOT NULL,
    status TEXT NOT NULL,
    -- The extraction parameters as given (name/value pairs, JSON), re-validated when run.
    request TEXT NOT NULL,
    output_format TEXT NOT NULL,
    compression TEXT NOT NULL,
    metadata TEXT NOT NULL,
    progress_percent BIGINT NOT NULL DEFAULT 0,
    rows_processed BIGINT NOT NULL DEFAULT 0,
    estimated_rows BIGINT,
    estimated_completion_seconds BIGINT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    execution_time_ms BIGINT,
    file_size_bytes BIGINT,
    object_key TEXT,
    sha256 TEXT,
    key_id TEXT,
    expires_at TEXT,
    error_message TEXT,
    retry_count BIGINT NOT NULL DEFAULT 0,
    run_after TEXT NOT NULL,
    lease_owner TEXT,
    lease_expires_at TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    request_hash TEXT
);
CREATE INDEX jobs_customer_created ON jobs (customer_id, created_at);
CREATE INDEX jobs_status_run_after ON jobs (status, run_after);
CREATE UNIQUE INDEX jobs_customer_idempotency ON jobs (customer_id, idempotency_key);
