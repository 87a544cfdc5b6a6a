-- What changed: per partition date, whether its rows change (a winner arrives there: an incoming row or a restored
-- version; or a row that was there is gone: it lost to a later version, moved away, or its delivery was dropped),
-- and the orders that moved (from the date they were on to the date they are on now). One row per changed date
-- (moved_from NULL), then one per distinct move.
WITH before AS (
    SELECT order_id, order_date FROM loaded WHERE kind IN (0, 1)
),
changed AS (
    SELECT order_date FROM curated WHERE origin <> 0
    UNION
    SELECT before.order_date
    FROM before
    WHERE NOT EXISTS (SELECT FROM curated WHERE curated.order_id = before.order_id AND curated.origin = 0)
)
SELECT NULL::integer AS moved_from, order_date FROM changed
UNION ALL
SELECT DISTINCT before.order_date, curated.order_date
FROM curated
JOIN before USING (order_id)
WHERE curated.origin <> 0 AND before.order_date <> curated.order_date
ORDER BY 1 NULLS FIRST, 2;
