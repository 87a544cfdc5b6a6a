-- Curated's current version of every order into the warehouse: updated where it is there, inserted where not.
-- order_date is the UTC date of order_ts, as the contract defines the partition.
MERGE INTO public.orders AS warehouse_orders
USING orders_load AS loaded
ON warehouse_orders.order_id = loaded.order_id
WHEN MATCHED THEN UPDATE SET
    customer_id = loaded.customer_id,
    order_ts = loaded.order_ts,
    country = loaded.country,
    currency = loaded.currency,
    amount = loaded.amount,
    amount_usd = loaded.amount_usd,
    quantity = loaded.quantity,
    status = loaded.status,
    order_date = CAST(loaded.order_ts AS DATE),
    landing_source = loaded.landing_source,
    landing_seq = loaded.landing_seq,
    landing_line = loaded.landing_line
WHEN NOT MATCHED THEN INSERT (
    order_id, customer_id, order_ts, country, currency, amount, amount_usd, quantity, status, order_date,
    landing_source, landing_seq, landing_line
) VALUES (
    loaded.order_id, loaded.customer_id, loaded.order_ts, loaded.country, loaded.currency, loaded.amount,
    loaded.amount_usd, loaded.quantity, loaded.status, CAST(loaded.order_ts AS DATE), loaded.landing_source,
    loaded.landing_seq, loaded.landing_line
)
