-- The working tables of one `merge` call: temporary, private to its connection, dropped at commit. Rows carry the
-- contract's curated columns and lineage; order_ts in microseconds since the epoch (UTC), order_date in days since
-- 1970-01-01; text compared byte-wise (COLLATE "C"), as the version order needs.

SET LOCAL jit = off;

CREATE TEMPORARY TABLE incoming (
    order_id text COLLATE "C" NOT NULL,
    customer_id text NOT NULL,
    order_ts bigint NOT NULL,
    country text NOT NULL,
    currency text NOT NULL,
    amount numeric(18, 2) NOT NULL,
    amount_usd numeric(18, 2) NOT NULL,
    quantity integer NOT NULL,
    status text NOT NULL,
    order_date integer NOT NULL,
    landing_source text COLLATE "C" NOT NULL,
    landing_seq bigint NOT NULL,
    landing_line bigint NOT NULL,
    ordinal bigint NOT NULL  -- position among the rows loaded with it: the last tie-break, as in every engine
) ON COMMIT DROP;

-- Rows read from the lake: kind 0 the touched partitions as they are now (the "before" of the merge), kind 1 a
-- partition read late (a restored version lives on a date nothing else touched), kind 2 history (earlier versions
-- of orders whose current version leaves with a dropped delivery).
CREATE TEMPORARY TABLE loaded (LIKE incoming, kind smallint NOT NULL) ON COMMIT DROP;

-- Which orders, from which deliveries, each partition holds (the per-partition index objects).
CREATE TEMPORARY TABLE partition_index (
    order_id text COLLATE "C" NOT NULL,
    landing_source text COLLATE "C" NOT NULL,
    landing_seq bigint NOT NULL,
    order_date integer NOT NULL
) ON COMMIT DROP;

-- Deliveries whose rows leave curated (a retraction, or an earlier generation being replaced).
CREATE TEMPORARY TABLE dropped (
    landing_source text COLLATE "C" NOT NULL,
    landing_seq bigint NOT NULL,
    PRIMARY KEY (landing_source, landing_seq)
) ON COMMIT DROP;

-- The curated table of the touched partitions, keyed by order_id: the rows that were there, then the merge's
-- winners. origin: 0 a row that was there, 1 an incoming row, 2 an earlier version restored from history.
CREATE TEMPORARY TABLE curated (
    LIKE incoming,
    origin smallint NOT NULL,
    PRIMARY KEY (order_id)
) ON COMMIT DROP;
