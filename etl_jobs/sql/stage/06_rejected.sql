-- The rejected rows with their reason and their exact bytes (the lines of a multi-line record joined with LF), in
-- line order: the quarantine of this file.
WITH rejected AS (
    SELECT * FROM staged WHERE reason IS NOT NULL
),
members AS (
    SELECT n AS record_start, n FROM rejected
    UNION ALL
    SELECT continuation.record_start, continuation.n
    FROM continuation
    JOIN rejected ON rejected.n = continuation.record_start
),
bytes AS (
    SELECT members.record_start, string_agg(line.raw, '\x0a'::bytea ORDER BY line.n) AS raw
    FROM members
    JOIN line ON line.n = members.n
    GROUP BY members.record_start
)
SELECT
    rejected.n,
    rejected.reason,
    bytes.raw,
    rejected.order_id,
    rejected.customer_id,
    rejected.order_ts,
    rejected.country,
    rejected.currency,
    rejected.amount::text,
    rejected.amount_usd::text,
    rejected.quantity,
    rejected.status,
    rejected.order_date
FROM rejected
JOIN bytes ON bytes.record_start = rejected.n
ORDER BY rejected.n;
