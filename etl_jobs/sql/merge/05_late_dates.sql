-- Dates a winner now lives on that no partition read covers (an earlier version restored onto another date): the
-- caller loads those partitions (kind 1) before the result is read.
SELECT DISTINCT order_date
FROM curated
WHERE order_date NOT IN (SELECT order_date FROM loaded WHERE kind = 0 UNION SELECT order_date FROM incoming)
ORDER BY 1;
