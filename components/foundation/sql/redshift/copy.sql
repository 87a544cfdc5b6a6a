-- engine-only (Redshift): every published partition of curated (objects under `order_date=`; the `_`-prefixed
-- bookkeeping folders are not under that prefix), with the namespace's default IAM role.
COPY orders_load
FROM '$curated_partitions'
IAM_ROLE default
FORMAT AS PARQUET
