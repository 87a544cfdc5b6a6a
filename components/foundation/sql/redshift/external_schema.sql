-- engine-only (Redshift): the Data Catalog database of curated as an external schema (Redshift Spectrum), read
-- with the namespace's default IAM role. Its own statement: it runs outside the load's transaction.
CREATE EXTERNAL SCHEMA IF NOT EXISTS $external_schema
FROM DATA CATALOG DATABASE '$catalog_database'
IAM_ROLE default
