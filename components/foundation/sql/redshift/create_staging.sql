-- The run's staging table: the columns of the curated Parquet files, in their order (COPY maps them by position);
-- order_date lives in the partition path, not in the files.
CREATE TEMP TABLE orders_load (
    order_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64),
    order_ts TIMESTAMP,
    country VARCHAR(16),
    currency VARCHAR(16),
    amount DECIMAL(18, 2),
    amount_usd DECIMAL(18, 2),
    quantity INTEGER,
    status VARCHAR(32),
    landing_source VARCHAR(64),
    landing_seq BIGINT,
    landing_line BIGINT
)
