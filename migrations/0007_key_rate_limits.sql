-- An API key may carry its own request quota, on top of its customer's.
ALTER TABLE api_keys ADD COLUMN rate_limit_per_minute BIGINT;
