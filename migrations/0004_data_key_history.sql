-- Every data key a customer has had. The current one is also on the customer row;
-- retired keys stay listed so files encrypted before a rotation keep their key id.
CREATE TABLE data_keys (
    key_id TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    created_at TEXT NOT NULL,
    retired_at TEXT,
    PRIMARY KEY (customer_id, key_id)
);
INSERT INTO data_keys (key_id, customer_id, created_at) SELECT data_key_id, id, created_at FROM customers;
