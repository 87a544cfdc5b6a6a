-- Every record after the header split into fields, normalised and judged. `reason` is the first rule a record
-- breaks (NULL for a valid row), in the contract's order (etl_jobs.contract.Reason):
--   structural, where the record cannot be read as fields and its values stay NULL: invalid_utf8,
--   control_character, record_too_long (not even split; a quote-free record is measured in bytes), then
--   unterminated_quote / malformed_quotes (a record holding a quote is read as strict RFC 4180), then
--   too_many_fields / too_few_fields against the header's width;
--   then field_too_long (after trimming), missing_order_id / missing_customer_id (empty after trimming),
--   invalid_order_ts, invalid_country, unknown_currency, no_usd_rate, invalid_amount, invalid_quantity,
--   invalid_status.
-- Codes are taken as given when exact, else trimmed and case-folded with full Unicode case mapping (ICU).
-- order_ts is in microseconds since the epoch (UTC), order_date in days since 1970-01-01.
-- Parameters: the header's line and width, the 1-based position of each contract column, the length limits, the
-- reference data (country codes; currency codes with their USD rate, NULL for none; statuses) and the first USD
-- amount the contract's Decimal(18, 2) cannot hold.
CREATE TEMPORARY TABLE staged ON COMMIT DROP AS
WITH judged AS MATERIALIZED (
    SELECT
        n,
        quoted,
        text,
        CASE
            WHEN bad THEN 'invalid_utf8'
            WHEN control THEN 'control_character'
            WHEN NOT quoted AND octet_length(text) > %(record_max)s THEN 'record_too_long'
            WHEN quoted AND char_length(text) > %(record_max)s THEN 'record_too_long'
        END AS early_reason
    FROM record
    WHERE n > %(header_line)s
),
split AS MATERIALIZED (
    SELECT judged.n, judged.early_reason, coalesce(csv.fields, plain.fields) AS fields, csv.fault
    FROM judged
    LEFT JOIN LATERAL etl.csv_fields(
        CASE WHEN judged.quoted AND judged.early_reason IS NULL THEN judged.text END
    ) AS csv ON true
    CROSS JOIN LATERAL (
        SELECT CASE WHEN NOT judged.quoted AND judged.early_reason IS NULL
            THEN string_to_array(judged.text, ',') END AS fields
    ) AS plain
),
structure AS MATERIALIZED (
    SELECT
        n,
        coalesce(
            early_reason,
            fault,
            CASE
                WHEN cardinality(fields) > %(width)s THEN 'too_many_fields'
                WHEN cardinality(fields) < %(width)s THEN 'too_few_fields'
            END
        ) AS structural_reason,
        fields
    FROM split
),
field AS MATERIALIZED (
    SELECT
        n,
        structural_reason,
        CASE WHEN structural_reason IS NULL THEN fields[%(order_id)s] END AS order_id,
        CASE WHEN structural_reason IS NULL THEN fields[%(customer_id)s] END AS customer_id,
        CASE WHEN structural_reason IS NULL THEN fields[%(order_ts)s] END AS order_ts,
        CASE WHEN structural_reason IS NULL THEN fields[%(country)s] END AS country,
        CASE WHEN structural_reason IS NULL THEN fields[%(currency)s] END AS currency,
        CASE WHEN structural_reason IS NULL THEN fields[%(amount)s] END AS amount,
        CASE WHEN structural_reason IS NULL THEN fields[%(quantity)s] END AS quantity,
        CASE WHEN structural_reason IS NULL THEN fields[%(status)s] END AS status
    FROM structure
),
common_ts AS MATERIALIZED (
    -- order_ts in the common exact form YYYY-MM-DDTHH:MM:SSZ is decoded without a regular expression
    SELECT
        field.*,
        order_ts LIKE '____-__-__T__:__:__Z' AND btrim(order_ts, '0123456789-:TZ') = ''
        AND substr(order_ts, 5, 1) = '-' AND substr(order_ts, 8, 1) = '-'
        AND substr(order_ts, 14, 1) = ':' AND substr(order_ts, 17, 1) = ':'
        AND btrim(substr(order_ts, 1, 4) || substr(order_ts, 6, 2) || substr(order_ts, 9, 2)
                  || substr(order_ts, 12, 2) || substr(order_ts, 15, 2) || substr(order_ts, 18, 2),
                  '0123456789') = '' AS common
    FROM field
),
trimmed AS MATERIALIZED (
    SELECT
        n,
        structural_reason,
        order_id,
        customer_id,
        order_ts,
        country,
        currency,
        status,
        etl.strip(order_id) AS order_id_trimmed,
        etl.strip(customer_id) AS customer_id_trimmed,
        etl.strip(amount) AS amount_trimmed,
        etl.strip(quantity) AS quantity_trimmed,
        -- longer than its limit after trimming (only a value longer in bytes can be: the cheap test first)
        (octet_length(order_id) > %(max_order_id)s AND char_length(etl.strip(order_id)) > %(max_order_id)s)
        OR (octet_length(customer_id) > %(max_customer_id)s
            AND char_length(etl.strip(customer_id)) > %(max_customer_id)s)
        OR (octet_length(order_ts) > %(max_order_ts)s AND char_length(etl.strip(order_ts)) > %(max_order_ts)s)
        OR (octet_length(country) > %(max_country)s AND char_length(etl.strip(country)) > %(max_country)s)
        OR (octet_length(currency) > %(max_currency)s AND char_length(etl.strip(currency)) > %(max_currency)s)
        OR (octet_length(amount) > %(max_amount)s AND char_length(etl.strip(amount)) > %(max_amount)s)
        OR (octet_length(quantity) > %(max_quantity)s AND char_length(etl.strip(quantity)) > %(max_quantity)s)
        OR (octet_length(status) > %(max_status)s AND char_length(etl.strip(status)) > %(max_status)s)
            AS too_long,
        CASE WHEN common THEN
            etl.civil_micros(substr(order_ts, 1, 4)::integer, substr(order_ts, 6, 2)::integer,
                             substr(order_ts, 9, 2)::integer, substr(order_ts, 12, 2)::integer,
                             substr(order_ts, 15, 2)::integer, substr(order_ts, 18, 2)::integer)
        END AS order_ts_common
    FROM common_ts
),
currency_rate AS (
    SELECT * FROM unnest(%(currencies)s::text[], %(usd_rates)s::numeric[]) AS rate (code, usd_per_unit)
),
normalised AS MATERIALIZED (
    SELECT
        n,
        structural_reason,
        too_long,
        order_id_trimmed AS order_id,
        customer_id_trimmed AS customer_id,
        coalesce(order_ts_common, etl.order_ts_micros(order_ts)) AS order_ts,
        CASE
            WHEN country IN (SELECT unnest(%(countries)s::text[])) THEN country
            WHEN upper(etl.strip(country) COLLATE "und-x-icu") IN (SELECT unnest(%(countries)s::text[]))
            THEN upper(etl.strip(country) COLLATE "und-x-icu") COLLATE "default"
        END AS country,
        CASE
            WHEN currency IN (SELECT code FROM currency_rate) THEN currency
            WHEN upper(etl.strip(currency) COLLATE "und-x-icu") IN (SELECT code FROM currency_rate)
            THEN upper(etl.strip(currency) COLLATE "und-x-icu") COLLATE "default"
        END AS currency,
        etl.amount(amount_trimmed) AS amount,
        etl.quantity(quantity_trimmed) AS quantity,
        CASE
            WHEN status IN (SELECT unnest(%(statuses)s::text[])) THEN status
            WHEN lower(etl.strip(status) COLLATE "und-x-icu") IN (SELECT unnest(%(statuses)s::text[]))
            THEN lower(etl.strip(status) COLLATE "und-x-icu") COLLATE "default"
        END AS status
    FROM trimmed
),
enriched AS MATERIALIZED (
    SELECT normalised.*, currency_rate.usd_per_unit, etl.round_cents(amount * currency_rate.usd_per_unit) AS amount_usd
    FROM normalised
    LEFT JOIN currency_rate ON currency_rate.code = normalised.currency
)
SELECT
    n,
    CASE
        WHEN structural_reason IS NOT NULL THEN structural_reason
        WHEN too_long THEN 'field_too_long'
        WHEN coalesce(octet_length(order_id), 0) = 0 THEN 'missing_order_id'
        WHEN coalesce(octet_length(customer_id), 0) = 0 THEN 'missing_customer_id'
        -- a timestamp whose UTC date is outside the contract's years (ORDER_YEARS) is not a usable order time
        WHEN order_ts IS NULL OR order_ts < %(order_ts_min)s OR order_ts >= %(order_ts_end)s THEN 'invalid_order_ts'
        WHEN country IS NULL THEN 'invalid_country'
        WHEN currency IS NULL THEN 'unknown_currency'
        WHEN usd_per_unit IS NULL THEN 'no_usd_rate'
        -- an amount whose USD value does not fit the contract's Decimal(18, 2) is not a usable amount either
        WHEN amount IS NULL OR amount_usd >= %(amount_max)s THEN 'invalid_amount'
        WHEN quantity IS NULL THEN 'invalid_quantity'
        WHEN status IS NULL THEN 'invalid_status'
    END AS reason,
    order_id,
    customer_id,
    order_ts,
    floor(order_ts::numeric / 86400000000)::integer AS order_date,
    country,
    currency,
    amount,
    CASE WHEN amount_usd < %(amount_max)s THEN amount_usd END AS amount_usd,
    quantity,
    status
FROM enriched;
