-- Recurring extractions, and which schedule (if any) made a job.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    name TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    procedure_name TEXT NOT NULL,
    request TEXT NOT NULL,
    run_window TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    next_run_at TEXT,
    last_run_at TEXT,
    last_job_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX schedules_customer ON schedules (customer_id, created_at);
CREATE INDEX schedules_due ON schedules (enabled, next_run_at);

ALTER TABLE jobs ADD COLUMN schedule_id TEXT;
CREATE INDEX jobs_schedule ON jobs (schedule_id);
