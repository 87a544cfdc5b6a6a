-- Quarantine rate by reason and day: of every row delivered for an order date (UTC), the share quarantined for each
-- reason. A row is either curated (the order's current version) or quarantined (a broken row, or a version that
-- lost to a later one: `superseded`), so the day's rows are the two together. Rows whose timestamp did not parse
-- have no order date and show under a NULL day. `orders` is curated, `quarantine` the quarantined rows.
WITH delivered AS (
    SELECT order_date, COUNT(*) AS rows_delivered
    FROM (
        SELECT order_date FROM orders
        UNION ALL
        SELECT order_date FROM quarantine
    ) AS every_row
    GROUP BY order_date
),
quarantined AS (
    SELECT order_date, reason, COUNT(*) AS rows_quarantined
    FROM quarantine
    GROUP BY order_date, reason
)
SELECT
    quarantined.order_date,
    quarantined.reason,
    quarantined.rows_quarantined,
    delivered.rows_delivered,
    ROUND(CAST(quarantined.rows_quarantined AS DOUBLE) / delivered.rows_delivered, 4) AS quarantine_rate
FROM quarantined
JOIN delivered
    ON quarantined.order_date = delivered.order_date
    OR (quarantined.order_date IS NULL AND delivered.order_date IS NULL)
ORDER BY quarantined.order_date NULLS FIRST, quarantined.reason
