-- Lines decoded and flagged, then assembled into records (a quoted field may span lines).

-- `scan` is a line's text, or for bytes that are not UTF-8 an ASCII rendering that keeps every quote and comma
-- where it was (enough to find where records start and end); `bad` marks those lines.
CREATE TEMPORARY TABLE line_text ON COMMIT DROP AS
SELECT
    n,
    coalesce(text, escaped) AS scan,
    text IS NULL AS bad,
    coalesce(text ~ '[\x01-\x08\x0b-\x1f\x7f]', false) AS control,
    strpos(escaped, '"') > 0 AS quoted,
    etl.strip(coalesce(text, escaped)) = '' AS blank
FROM (
    SELECT
        n,
        escaped,
        -- pure ASCII without NUL or backslash is its own escape form: the UTF-8 check is for the others
        CASE WHEN strpos(escaped, '\') = 0 THEN escaped ELSE etl.utf8(raw) END AS text
    FROM (SELECT n, raw, encode(raw, 'escape') AS escaped FROM line) AS encoded
    OFFSET 0  -- a fence: each line is decoded once, not once per reference above
) AS decoded;

-- Continuation lines (every line of a multi-line record but its first) and the record each belongs to. The lines
-- holding a quote are scanned in file order (etl.quote_states); one whose quoted field is still open at its end
-- continues on the following lines, up to the next line with a quote.
CREATE TEMPORARY TABLE continuation ON COMMIT DROP AS
WITH quote_state AS (
    SELECT state.n, state.open_after
    FROM (
        SELECT array_agg(n ORDER BY n) AS numbers, etl.quote_states(array_agg(scan ORDER BY n)) AS states
        FROM line_text
        WHERE quoted
    ) AS quoted_lines,
        unnest(quoted_lines.numbers, quoted_lines.states) AS state (n, open_after)
),
chained AS (
    SELECT
        n,
        open_after,
        lead(n) OVER in_order AS next_quoted,
        coalesce(lag(open_after) OVER in_order, false) AS continues
    FROM quote_state
    WINDOW in_order AS (ORDER BY n)
),
grouped AS (
    SELECT *, count(*) FILTER (WHERE NOT continues) OVER (ORDER BY n) AS chain FROM chained
),
started AS (
    SELECT *, min(n) OVER (PARTITION BY chain) AS record_start FROM grouped
)
SELECT generate_series(n + 1, next_quoted) AS n, record_start
FROM started
WHERE open_after;

-- One row per record, by its first line: single-line records (blank lines are not records), then multi-line ones
-- joined with LF. `lines` counts the physical lines it spans.
CREATE TEMPORARY TABLE record ON COMMIT DROP AS
SELECT line_text.n, line_text.scan AS text, line_text.bad, line_text.control, line_text.quoted, 1 AS lines
FROM line_text
WHERE NOT line_text.blank
    AND NOT EXISTS (SELECT FROM continuation WHERE continuation.n = line_text.n)
    AND NOT EXISTS (SELECT FROM continuation WHERE continuation.record_start = line_text.n)
UNION ALL
SELECT
    members.record_start,
    string_agg(line_text.scan, E'\n' ORDER BY line_text.n),
    bool_or(line_text.bad),
    bool_or(line_text.control),
    true,
    count(*)::integer
FROM (
    SELECT record_start, n FROM continuation
    UNION ALL
    SELECT DISTINCT record_start, record_start FROM continuation
) AS members
JOIN line_text ON line_text.n = members.n
GROUP BY members.record_start;
