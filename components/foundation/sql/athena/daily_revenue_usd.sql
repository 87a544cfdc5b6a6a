-- Daily revenue in USD by country: every curated order that was not cancelled or refunded, summed at the contract's
-- reference rate (amount_usd), per order date (UTC) and country. Written in the SQL that Athena (Trino) and DuckDB
-- share; `orders` is the curated table (the workgroup's database).
SELECT
    order_date,
    country,
    COUNT(*) AS orders,
    SUM(amount_usd) AS revenue_usd
FROM orders
WHERE status NOT IN ('cancelled', 'refunded')
GROUP BY order_date, country
ORDER BY order_date, country
