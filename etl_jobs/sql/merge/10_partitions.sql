-- The new content of the changed partitions (their dates are the parameter), by date and order_id, as CSV.
COPY (
    SELECT
        curated.order_id, curated.customer_id, curated.order_ts, curated.country, curated.currency,
        curated.amount, curated.amount_usd, curated.quantity, curated.status, curated.order_date,
        curated.landing_source, curated.landing_seq, curated.landing_line
    FROM curated
    WHERE curated.order_date = ANY (%(dates)s::integer[])
    ORDER BY curated.order_date, curated.order_id
) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE (order_id, customer_id, landing_source))
