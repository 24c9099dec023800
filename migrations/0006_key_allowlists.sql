-- An API key may carry its own IP allowlist (JSON list of CIDRs), on top of its customer's.
ALTER TABLE api_keys ADD COLUMN ip_allowlist TEXT NOT NULL DEFAULT '[]';
