"""ETL job code for the orders dataset: one contract, engines that compute it, and the engine-neutral machinery that
makes every engine exactly-once. Never imports Pulumi.

Modules:
- `contract`: columns, row rules and reason codes, file reasons, field limits, reference tables;
- `engines`: the engine protocol and registry (`--engine NAME`); `engines.polars_engine` is the single-node engine;
- `layout`: where everything lives in the zones (the prefixes `access` declares); `zones`: the zone roots;
- `storage`: bytes in and out of local paths and s3:// URIs, S3 errors with their meaning, conditional writes;
- `ledger`: exactly-once claims of landed files (landing sequence, content hash, duplicates), reprocess marks;
- `table`: the curated table's commit protocol (optimistic, conditional writes, crash roll-forward);
- `pipeline`: the stages extract / transform / validate / load, `run`, and the corrections retract / reprocess;
- `access`: what each command reads, lists, writes and deletes (every IAM policy is generated from it);
- `cli` (`python -m etl_jobs`), `handlers` (Lambda), `sample` (fault-injecting data generator).

How a file moves (see `layout` for every path and docs/operations.md for the procedures): a file dropped under
`raw/landing/<source>/` is claimed by extract (raw copy `raw/deliveries/...`, ledger entry, removed from landing),
staged by transform (valid and rejected rows, or the whole file quarantined when it breaks the contract), judged by
validate (the quality gate, per file), and committed by load into `curated/order_date=D/part-00000.parquet`, one
object per partition, holding each order_id once across every run, pipeline and partition. Every commit writes a
manifest whose counts add up per file and in total: rows_in = rows_curated + rows_quarantined.
"""
