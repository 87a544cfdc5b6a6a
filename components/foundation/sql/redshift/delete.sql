-- Orders no longer in curated (retracted deliveries) leave the warehouse too.
DELETE FROM public.orders
WHERE order_id NOT IN (SELECT order_id FROM orders_load)
