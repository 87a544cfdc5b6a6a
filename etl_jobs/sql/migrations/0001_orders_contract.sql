-- The orders contract's building blocks in PostgreSQL: text functions that reproduce the contract's parsing rules
-- exactly as the single-node engine applies them, and the accounting tables. Working data never lives here: every
-- engine call computes in temporary tables of its own transaction (etl_jobs/sql/stage, etl_jobs/sql/merge), so the
-- database holds no copy of the lake that could drift from it.
--
-- Applied by `python -m etl_jobs migrate --engine postgres` (etl_jobs.engines.postgres_migrations) inside one
-- transaction that also records it in etl.schema_migrations; never edited once released (add 0002_... instead).

DO $$
BEGIN
    -- The contract's text rules (UTF-8 validity, case folding of codes) assume a UTF-8 database with ICU.
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'the etl schema needs a UTF8 database; this one is %', current_setting('server_encoding')
            USING HINT = 'create the database with ENCODING ''UTF8''';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_collation WHERE collname = 'und-x-icu') THEN
        RAISE EXCEPTION 'the etl schema needs the ICU collation "und-x-icu" (PostgreSQL built with ICU)';
    END IF;
END $$;

-- Unicode White_Space, the set the contract trims (Rust's str::trim, which the single-node engine uses).
CREATE FUNCTION etl.strip(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN btrim(value, E' \t\n\u000b\f\r\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000');

-- Python's str.strip() set (White_Space plus the information separators U+001C-U+001F): header names are trimmed
-- with it, as the contract reads a header through Python's csv module.
CREATE FUNCTION etl.strip_header(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN btrim(value, E' \t\n\u000b\f\r\u001c\u001d\u001e\u001f\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000');

-- One physical line's bytes as text, or NULL when they are not UTF-8. A NUL byte (which text cannot hold) reads as
-- U+0001, so the line keeps its length and is quarantined as `control_character`; its exact bytes stay in bytea.
CREATE FUNCTION etl.utf8(raw bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    at integer := position('\x00'::bytea IN raw);
BEGIN
    WHILE at > 0 LOOP
        raw := overlay(raw PLACING '\x01'::bytea FROM at FOR 1);
        at := position('\x00'::bytea IN raw);
    END LOOP;
    RETURN convert_from(raw, 'UTF8');
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
    RETURN NULL;
END $$;

-- Per line of a file that holds a double quote (in file order): is a quoted field still open at its end, so that the
-- record goes on to the next line? A quote opens a field only at the start of a field; inside, "" is a literal
-- quote and a lone " closes it. A quote still open at end of file ends its record at its own line and the scan
-- resumes after it, so one stray quote cannot swallow the rest of the file.
CREATE FUNCTION etl.quote_states(lines text[]) RETURNS boolean[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    total integer := coalesce(array_length(lines, 1), 0);
    open_after boolean[] := array_fill(false, ARRAY[total]);
    field constant text := '(?:"(?:[^"]|"")*"(?!")[^,]*|[^",][^,]*|)';
    closes_from_outside constant text := '^' || field || '(?:,' || field || ')*$';
    closes_from_inside constant text := '^(?:[^"]|"")*"(?!")[^,]*(?:,' || field || ')*$';
    start integer := 1;
    in_quotes boolean;
    was_open boolean;
    opened_at integer;
BEGIN
    LOOP
        in_quotes := false;
        opened_at := 0;
        FOR k IN start..total LOOP
            was_open := in_quotes;
            IF in_quotes THEN
                in_quotes := lines[k] !~ closes_from_inside;
            ELSE
                in_quotes := lines[k] !~ closes_from_outside;
            END IF;
            IF in_quotes AND NOT was_open THEN
                opened_at := k;
            END IF;
            open_after[k] := in_quotes;
        END LOOP;
        EXIT WHEN NOT in_quotes;
        open_after[opened_at] := false;
        start := opened_at + 1;
    END LOOP;
    RETURN open_after;
END $$;

-- The fields of one record read as RFC 4180 strictly (Python's csv module with strict=True, as the contract reads a
-- header and every record that holds a double quote): `fault` is 'unterminated_quote' when a quoted field never
-- closes, 'malformed_quotes' for anything else that is not valid CSV (a character after a closing quote, text after
-- a line break outside quotes); fields are NULL then.
CREATE FUNCTION etl.csv_fields(record text, OUT fields text[], OUT fault text)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    rest text := record;
    found text[];
BEGIN
    fields := '{}';
    LOOP
        IF left(rest, 1) = '"' THEN
            found := regexp_match(rest, '^"((?:[^"]|"")*)"(,|\r|\n|$)');
            IF found IS NULL THEN
                fault := CASE WHEN rest ~ '^"(?:[^"]|"")*$' THEN 'unterminated_quote' ELSE 'malformed_quotes' END;
                fields := NULL;
                RETURN;
            END IF;
            fields := fields || replace(found[1], '""', '"');
            rest := substr(rest, length(found[1]) + 3 + length(found[2]));
        ELSE
            found := regexp_match(rest, '^([^,\r\n]*)(,|\r|\n|$)');
            fields := fields || found[1];
            rest := substr(rest, length(found[1]) + 1 + length(found[2]));
        END IF;
        IF found[2] IN (E'\r', E'\n') THEN
            -- a line break outside quotes ends the record: csv refuses anything after it but more line breaks
            IF btrim(rest, E'\r\n') <> '' THEN
                fault := 'malformed_quotes';
                fields := NULL;
            END IF;
            RETURN;
        END IF;
        EXIT WHEN found[2] = '';
    END LOOP;
END $$;

-- Days from 1970-01-01 of a proleptic Gregorian date (any year, 0 and negative included: year 0 is 1 BC).
CREATE FUNCTION etl.days_from_civil(y bigint, m integer, d integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (floor((y - (m <= 2)::integer)::numeric / 400)::bigint) * 146097
    + ((y - (m <= 2)::integer) - floor((y - (m <= 2)::integer)::numeric / 400)::bigint * 400) * 365
    + ((y - (m <= 2)::integer) - floor((y - (m <= 2)::integer)::numeric / 400)::bigint * 400) / 4
    - ((y - (m <= 2)::integer) - floor((y - (m <= 2)::integer)::numeric / 400)::bigint * 400) / 100
    + (153 * (m + CASE WHEN m > 2 THEN -3 ELSE 9 END) + 2) / 5 + d - 1
    - 719468;

-- The same for years 0..9999 in integer arithmetic (the common case, kept cheap).
CREATE FUNCTION etl.days_from_civil_0_9999(y integer, m integer, d integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (y + 400 - (m <= 2)::integer) / 400 * 146097
    + ((y + 400 - (m <= 2)::integer) - (y + 400 - (m <= 2)::integer) / 400 * 400) * 365
    + ((y + 400 - (m <= 2)::integer) - (y + 400 - (m <= 2)::integer) / 400 * 400) / 4
    - ((y + 400 - (m <= 2)::integer) - (y + 400 - (m <= 2)::integer) / 400 * 400) / 100
    + (153 * (m + CASE WHEN m > 2 THEN -3 ELSE 9 END) + 2) / 5 + d - 1
    - 719468 - 146097;

CREATE FUNCTION etl.days_in_month(y bigint, m integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN m = 2 THEN CASE WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0 THEN 29 ELSE 28 END
    WHEN m IN (4, 6, 9, 11) THEN 30
    ELSE 31
END;

-- Microseconds since the epoch (UTC) of a timestamp given by its parts, or NULL when the parts are not a valid time:
-- years -262143..262142 (the range the single-node engine's parser accepts), second 60 a leap second (it reads as the
-- next minute's first second), fraction digits beyond microseconds truncated, the offset under 24 hours.
CREATE FUNCTION etl.timestamp_micros(
    y numeric, mo integer, d integer, h integer, mi integer, s integer,
    fraction text, offset_sign integer, offset_hours integer, offset_minutes integer
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN y NOT BETWEEN -262143 AND 262142 OR mo NOT BETWEEN 1 AND 12 OR d < 1
        OR d > etl.days_in_month(y::bigint, mo) OR h > 23 OR mi > 59 OR s > 60 OR offset_hours > 23
    THEN NULL
    ELSE ((etl.days_from_civil(y::bigint, mo, d) * 86400 + h * 3600 + mi * 60 + s
           - offset_sign * (offset_hours * 3600 + offset_minutes * 60)) * 1000000
          + coalesce(rpad(left(fraction, 6), 6, '0')::bigint, 0))
END;

-- Microseconds since the epoch of YYYY-MM-DD HH:MM:SS UTC for years 0..9999, or NULL when it is not a valid time.
CREATE FUNCTION etl.civil_micros(y integer, mo integer, d integer, h integer, mi integer, s integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN mo NOT BETWEEN 1 AND 12 OR d < 1 OR d > etl.days_in_month(y, mo) OR h > 23 OR mi > 59 OR s > 60 THEN NULL
    ELSE (etl.days_from_civil_0_9999(y, mo, d)::bigint * 86400 + h * 3600 + mi * 60 + s) * 1000000
END;

-- order_ts as the contract reads it, in microseconds since the epoch (UTC), NULL when it is not a timestamp. Two
-- forms, tried in this order: `YYYY-MM-DDTHH:MM:SSZ` as given, then the trimmed value with its first space read as
-- 'T', with an optional fraction and an optional offset (Z, or +/-HH with optional [:]MM). Numbers may be preceded
-- by white space and take 1-2 digits (the year 1-4, or any with a sign), as the single-node engine's parser accepts.
-- (stage/06_staged.sql decodes the common exact form YYYY-MM-DDTHH:MM:SSZ itself, without a regular expression.)
CREATE FUNCTION etl.order_ts_micros(value text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    ws constant text := '[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*';
    date_time constant text := ws || '([+-][0-9]+|[0-9]{1,4})-' || ws || '([0-9]{1,2})-' || ws || '([0-9]{1,2})T'
        || ws || '([0-9]{1,2}):' || ws || '([0-9]{1,2}):' || ws || '([0-9]{1,2})';
    parts text[];
    result bigint;
BEGIN
    parts := regexp_match(value, '^' || date_time || 'Z$');
    IF parts IS NOT NULL THEN
        result := etl.timestamp_micros(parts[1]::numeric, parts[2]::integer, parts[3]::integer, parts[4]::integer,
                                       parts[5]::integer, parts[6]::integer, NULL, 0, 0, 0);
        IF result IS NOT NULL THEN
            RETURN result;
        END IF;
    END IF;
    parts := regexp_match(
        regexp_replace(etl.strip(value), ' ', 'T'),
        '^' || date_time || '(?:\.([0-9]+))?(?:' || ws
            || '(?:([Zz])|([-+\u2212])([0-9]{2})[:\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([0-5][0-9])?))?$'
    );
    IF parts IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN etl.timestamp_micros(
        parts[1]::numeric, parts[2]::integer, parts[3]::integer, parts[4]::integer, parts[5]::integer,
        parts[6]::integer, left(parts[7], 9), CASE WHEN parts[9] = '+' THEN 1 WHEN parts[9] IS NULL THEN 0 ELSE -1 END,
        coalesce(parts[10]::integer, 0), coalesce(parts[11]::integer, 0)
    );
END $$;

-- An amount as the contract reads it (1-16 digits, optionally '.' and 1-2 digits), or NULL. `value` is trimmed.
CREATE FUNCTION etl.amount(value text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN btrim(value, '0123456789.') <> '' OR value = '' THEN NULL
    WHEN strpos(value, '.') = 0 THEN CASE WHEN length(value) <= 16 THEN value::numeric(18, 2) END
    WHEN strpos(value, '.') BETWEEN 2 AND 17 AND length(value) - strpos(value, '.') IN (1, 2)
        AND strpos(substr(value, strpos(value, '.') + 1), '.') = 0
    THEN value::numeric(18, 2)
END;

-- A quantity as the contract reads it (an optional '+' and digits, 1..2^31-1), or NULL. `value` is trimmed.
CREATE FUNCTION etl.quantity(value text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN btrim(ltrim(value, '+'), '0123456789') <> '' OR ltrim(value, '+') = ''
        OR length(value) - length(ltrim(value, '+')) > 1
    THEN NULL
    WHEN ltrim(value, '+')::numeric BETWEEN 1 AND 2147483647 THEN ltrim(value, '+')::integer
END;

-- Rounding to cents, half to even (the single-node engine's decimal rounding), of a non-negative amount.
CREATE FUNCTION etl.round_cents(value numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN value - trunc(value, 2) = 0.005 AND trunc(value * 100) % 2 = 0 THEN trunc(value, 2)
    ELSE round(value, 2)
END;

-- What each engine call computed: one row per file staged and per merge, written in the call's transaction. The
-- CHECK constraints are the contract's accounting: a call whose counts do not add up fails instead of committing.
CREATE TABLE etl.stage_accounting (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staged_at timestamptz NOT NULL DEFAULT now(),
    landing_source text NOT NULL,
    landing_seq bigint NOT NULL,
    generation integer NOT NULL,
    source_file text NOT NULL,
    lines bigint NOT NULL,
    header_lines integer NOT NULL,
    blank_lines bigint NOT NULL,
    continuation_lines bigint NOT NULL,
    rows_in bigint NOT NULL,
    rows_valid bigint NOT NULL,
    rows_rejected bigint NOT NULL,
    reasons jsonb NOT NULL,
    -- every physical line is a header, a record's first line, a continuation of a record, or blank
    CONSTRAINT every_line_accounted CHECK (lines = header_lines + rows_in + continuation_lines + blank_lines),
    CONSTRAINT rows_add_up CHECK (rows_in = rows_valid + rows_rejected)
);

CREATE TABLE etl.merge_accounting (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merged_at timestamptz NOT NULL DEFAULT now(),
    commit_tag text NOT NULL,
    landing_source text NOT NULL,
    landing_seq bigint NOT NULL,
    rows_incoming bigint NOT NULL,
    rows_current bigint NOT NULL,
    rows_superseded bigint NOT NULL,
    CONSTRAINT rows_add_up CHECK (rows_incoming = rows_current + rows_superseded)
);
