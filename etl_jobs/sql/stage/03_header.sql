-- The file's counts and its header (the first record) as the contract reads it: fields by RFC 4180 (strict), each
-- trimmed and lower-cased. One row; the header columns are NULL when the file holds no record at all.
SELECT
    counts.rows_in,
    counts.lines,
    counts.blank_lines,
    counts.continuation_lines,
    header.n,
    header.bad,
    parsed.fault,
    ARRAY(
        SELECT lower(etl.strip_header(name) COLLATE "und-x-icu")
        FROM unnest(parsed.fields) WITH ORDINALITY AS field (name, position)
        ORDER BY position
    ) AS names
FROM (
    SELECT
        greatest((SELECT count(*) FROM record) - 1, 0) AS rows_in,
        (SELECT count(*) FROM line) AS lines,
        (SELECT count(*) FROM line_text
         WHERE blank AND NOT EXISTS (SELECT FROM continuation WHERE continuation.n = line_text.n)) AS blank_lines,
        (SELECT count(*) FROM continuation) AS continuation_lines
) AS counts
LEFT JOIN LATERAL (SELECT * FROM record ORDER BY n LIMIT 1) AS header ON true
LEFT JOIN LATERAL etl.csv_fields(header.text) AS parsed ON true;
