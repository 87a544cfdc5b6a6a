-- The file's accounting, recorded in etl.stage_accounting (whose CHECK constraints refuse counts that do not add
-- up: every physical line is the header, a record, a continuation or blank; rows_in = valid + rejected); returns
-- the quarantine counts by reason.
INSERT INTO etl.stage_accounting (
    landing_source, landing_seq, generation, source_file, lines, header_lines, blank_lines, continuation_lines,
    rows_in, rows_valid, rows_rejected, reasons
)
SELECT
    %(source)s, %(seq)s, %(gen)s, %(file)s, %(lines)s, %(header_lines)s, %(blank_lines)s, %(continuation_lines)s,
    count(*), count(*) FILTER (WHERE reason IS NULL), count(*) FILTER (WHERE reason IS NOT NULL),
    coalesce(
        (SELECT jsonb_object_agg(reason, rows) FROM (
            SELECT reason, count(*) AS rows FROM staged WHERE reason IS NOT NULL GROUP BY reason) AS by_reason),
        '{}'::jsonb
    )
FROM staged
RETURNING rows_in, rows_valid, reasons;
