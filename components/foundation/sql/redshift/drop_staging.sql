DROP TABLE orders_load
