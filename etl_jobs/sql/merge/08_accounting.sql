-- Per incoming delivery: its rows now current, and the rows that lost to a later version (superseded), recorded in
-- etl.merge_accounting (whose CHECK refuses counts that do not add up).
INSERT INTO etl.merge_accounting (commit_tag, landing_source, landing_seq, rows_incoming, rows_current, rows_superseded)
SELECT
    %(tag)s,
    incoming.landing_source,
    incoming.landing_seq,
    count(*),
    count(curated.order_id),
    count(*) - count(curated.order_id)
FROM incoming
LEFT JOIN curated
    ON curated.origin = 1
    AND curated.order_id = incoming.order_id
    AND curated.landing_source = incoming.landing_source
    AND curated.landing_seq = incoming.landing_seq
    AND curated.landing_line = incoming.landing_line
GROUP BY incoming.landing_source, incoming.landing_seq
RETURNING landing_source, landing_seq, rows_current, rows_superseded;
