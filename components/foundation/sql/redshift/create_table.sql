-- The warehouse's copy of curated: one row per order_id (Redshift chooses distribution and sort keys: AUTO).
CREATE TABLE IF NOT EXISTS public.orders (
    order_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64),
    order_ts TIMESTAMP,
    country VARCHAR(16),
    currency VARCHAR(16),
    amount DECIMAL(18, 2),
    amount_usd DECIMAL(18, 2),
    quantity INTEGER,
    status VARCHAR(32),
    order_date DATE,
    landing_source VARCHAR(64),
    landing_seq BIGINT,
    landing_line BIGINT,
    PRIMARY KEY (order_id)
)
