-- The incoming rows that lost to a later version, as CSV (they go to quarantine as `superseded`).
COPY (
    SELECT
        incoming.order_id, incoming.customer_id, incoming.order_ts, incoming.country, incoming.currency,
        incoming.amount, incoming.amount_usd, incoming.quantity, incoming.status, incoming.order_date,
        incoming.landing_source, incoming.landing_seq, incoming.landing_line
    FROM incoming
    WHERE NOT EXISTS (
        SELECT FROM curated
        WHERE curated.origin = 1
            AND curated.order_id = incoming.order_id
            AND curated.landing_source = incoming.landing_source
            AND curated.landing_seq = incoming.landing_seq
            AND curated.landing_line = incoming.landing_line)
    ORDER BY incoming.landing_source, incoming.landing_seq, incoming.landing_line
) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE (order_id, customer_id, landing_source))
