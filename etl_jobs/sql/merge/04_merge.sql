-- The merge: curated starts as the touched partitions without the dropped deliveries' rows; the latest candidate
-- of each order (incoming rows, and restored versions of orders whose current version was dropped) then replaces
-- the curated row when it is at least as late in the version order: later order_ts, then higher landing_seq, then
-- source name, then later line (then the later candidate, which only an exact tie reaches).
INSERT INTO curated
SELECT
    order_id, customer_id, order_ts, country, currency, amount, amount_usd, quantity, status, order_date,
    landing_source, landing_seq, landing_line, ordinal, 0
FROM loaded
WHERE kind = 0
    AND (landing_source, landing_seq) NOT IN (SELECT landing_source, landing_seq FROM dropped);

MERGE INTO curated
USING (
    SELECT DISTINCT ON (order_id) *
    FROM (
        SELECT incoming.*, 1 AS origin FROM incoming
        UNION ALL
        SELECT
            order_id, customer_id, order_ts, country, currency, amount, amount_usd, quantity, status, order_date,
            landing_source, landing_seq, landing_line, ordinal, 2
        FROM loaded
        WHERE kind = 2
            AND order_id IN (
                SELECT loaded.order_id FROM loaded JOIN dropped USING (landing_source, landing_seq)
                WHERE loaded.kind = 0)
            AND (landing_source, landing_seq) NOT IN (SELECT landing_source, landing_seq FROM dropped)
    ) AS candidate
    ORDER BY order_id, order_ts DESC, landing_seq DESC, landing_source DESC, landing_line DESC, origin DESC,
        ordinal DESC
) AS latest
ON curated.order_id = latest.order_id
WHEN MATCHED AND (latest.order_ts, latest.landing_seq, latest.landing_source, latest.landing_line)
        >= (curated.order_ts, curated.landing_seq, curated.landing_source, curated.landing_line) THEN
    UPDATE SET
        customer_id = latest.customer_id, order_ts = latest.order_ts, country = latest.country,
        currency = latest.currency, amount = latest.amount, amount_usd = latest.amount_usd,
        quantity = latest.quantity, status = latest.status, order_date = latest.order_date,
        landing_source = latest.landing_source, landing_seq = latest.landing_seq,
        landing_line = latest.landing_line, ordinal = latest.ordinal, origin = latest.origin
WHEN NOT MATCHED THEN
    INSERT VALUES (
        latest.order_id, latest.customer_id, latest.order_ts, latest.country, latest.currency, latest.amount,
        latest.amount_usd, latest.quantity, latest.status, latest.order_date, latest.landing_source,
        latest.landing_seq, latest.landing_line, latest.ordinal, latest.origin
    );
