-- The partitions the merge must read: the dates of the incoming rows, and the dates where the index holds an
-- incoming order (its current version may live on another date) or a row of a dropped delivery.
SELECT order_date FROM incoming
UNION
SELECT partition_index.order_date
FROM partition_index
WHERE partition_index.order_id IN (SELECT order_id FROM incoming)
    OR (partition_index.landing_source, partition_index.landing_seq) IN (
        SELECT landing_source, landing_seq FROM dropped)
ORDER BY 1;
