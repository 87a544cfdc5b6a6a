-- The partitions read late join curated as they are (their orders are not among the merged ones).
INSERT INTO curated
SELECT
    order_id, customer_id, order_ts, country, currency, amount, amount_usd, quantity, status, order_date,
    landing_source, landing_seq, landing_line, ordinal, 0
FROM loaded
WHERE kind = 1;
