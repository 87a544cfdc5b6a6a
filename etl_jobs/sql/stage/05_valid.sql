-- The valid rows, in line order, as CSV for the engine's Parquet writer (identifiers quoted: "" is not NULL).
COPY (
    SELECT order_id, customer_id, order_ts, country, currency, amount, amount_usd, quantity, status, order_date, n
    FROM staged
    WHERE reason IS NULL
    ORDER BY n
) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE (order_id, customer_id))
