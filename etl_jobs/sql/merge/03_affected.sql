-- Orders whose current version belongs to a dropped delivery: their earlier versions are looked up in history.
SELECT DISTINCT loaded.order_id
FROM loaded
JOIN dropped USING (landing_source, landing_seq)
WHERE loaded.kind = 0
ORDER BY 1;
