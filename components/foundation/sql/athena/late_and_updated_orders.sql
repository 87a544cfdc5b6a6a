-- Late and updated orders: each curated order that arrived late, was updated, or both.
--   updated: earlier versions of it were delivered and lost to the current one (quarantined as `superseded`);
--   late:    its current version came in a later delivery of its source than the first delivery that carried any
--            row for its order date (the day was already published when it arrived).
-- `orders` is curated, `quarantine` the quarantined rows.
WITH every_version AS (
    SELECT landing_source, landing_seq, order_date FROM orders
    UNION ALL
    SELECT landing_source, landing_seq, order_date FROM quarantine WHERE reason = 'superseded'
),
first_delivery AS (
    SELECT landing_source, order_date, MIN(landing_seq) AS first_seq
    FROM every_version
    GROUP BY landing_source, order_date
),
earlier_versions AS (
    SELECT order_id, COUNT(*) AS superseded_versions
    FROM quarantine
    WHERE reason = 'superseded'
    GROUP BY order_id
),
flagged AS (
    SELECT
        orders.order_id,
        orders.order_date,
        orders.landing_source,
        orders.landing_seq,
        first_delivery.first_seq AS first_seq_of_day,
        COALESCE(earlier_versions.superseded_versions, 0) AS superseded_versions,
        orders.landing_seq > first_delivery.first_seq AS is_late,
        earlier_versions.order_id IS NOT NULL AS is_updated
    FROM orders
    JOIN first_delivery
        ON orders.landing_source = first_delivery.landing_source
        AND orders.order_date = first_delivery.order_date
    LEFT JOIN earlier_versions
        ON orders.order_id = earlier_versions.order_id
)
SELECT *
FROM flagged
WHERE is_late OR is_updated
ORDER BY order_id
