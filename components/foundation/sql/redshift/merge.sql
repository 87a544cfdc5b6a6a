-- Curated's current version of every order into the warehouse: updated where it is there, inserted where not.
-- order_date is the UTC date of order_ts, as the contract defines the partition.
MERGE INTO public.orders AS target
USING orders_load AS source
ON target.order_id = source.order_id
WHEN MATCHED THEN UPDATE SET
    customer_id = source.customer_id,
    order_ts = source.order_ts,
    country = source.country,
    currency = source.currency,
    amount = source.amount,
    amount_usd = source.amount_usd,
    quantity = source.quantity,
    status = source.status,
    order_date = CAST(source.order_ts AS DATE),
    landing_source = source.landing_source,
    landing_seq = source.landing_seq,
    landing_line = source.landing_line
WHEN NOT MATCHED THEN INSERT (
    order_id, customer_id, order_ts, country, currency, amount, amount_usd, quantity, status, order_date,
    landing_source, landing_seq, landing_line
) VALUES (
    source.order_id, source.customer_id, source.order_ts, source.country, source.currency, source.amount,
    source.amount_usd, source.quantity, source.status, CAST(source.order_ts AS DATE), source.landing_source,
    source.landing_seq, source.landing_line
)
