"""ETL job code for the orders dataset: one contract, one pipeline, run by every architecture. Never imports Pulumi.

Modules: `contract` (columns, rules, reason codes, reference tables), `engine` (the single-node Polars engine),
`pipeline` (stage functions extract/transform/validate/load and `run`), `zones`, `storage` (local/S3 bytes),
`cli` (`python -m etl_jobs`), `sample` (fault-injecting data generator).

Layout inside the zones (D = run date, YYYY-MM-DD; S = source name, e.g. `orders`):
    raw         <landing prefix>S/<file>                    where files land (prefix ETL_LANDING_PREFIX, default
                                                            `landing/`); extract without an input copies them all
                run_date=D/S/<file>                         the source, copied unchanged by extract
    staged      run_date=D/source=S/part.parquet            one part per source, written by `transform --source S`
                                                            (or by `transform`, once per source): S's records,
                                                            normalised, with `_file`, `_line`, `_reason` (null =
                                                            valid so far) and `_raw` (only when rejected); not
                                                            deduped. `run` keeps the parts in memory
                run_date=D/_stages/transform/source=S.json  what S's transform did; re-transforming S replaces only
                                                            S's part and record, and deletes the validate record
                run_date=D/_stages/validate.json            what validate did, with the ids of the transforms it saw
    quarantine  run_date=D/quarantine.parquet               rejected rows: run_date, source_file, line, reason,
                                                            raw_line, then the normalised columns
                _manifests/run_date=D/manifest.json         the run's manifest (also written when the run fails)
    curated     order_date=YYYY-MM-DD/part-D.parquet        published rows; one file per partition per run date
                _loads/run_date=D.json                      the files run date D published (a re-run replaces them)
Parallel per-source transforms (the orchestrated pipeline's Map) therefore never write the same object.

Dedupe by `order_id` (latest `order_ts` wins, the others are quarantined as `superseded`) happens in validate, over
every staged part of the run date, so duplicates across sources are found whatever order the sources were transformed
in; load applies the same deterministic dedupe to the same parts (it checks their transform ids against validate's).
A superseded row is a valid row that lost: like `batch_rejected` rows it is quarantined normalised (`raw_line` null;
`source_file` and `line` point at its bytes in the raw zone). validate and load always cover every source of the date
and refuse (StageInputError) while a source with raw files has no staged part.
With `--output PREFIX` the zones are PREFIX/raw/, PREFIX/staged/, PREFIX/curated/, PREFIX/quarantine/ and the run's
manifest is also written to PREFIX/manifest.json. Paths starting with `_` are skipped by Spark, Hive and PyArrow
dataset readers, so the curated zone reads as a plain `order_date`-partitioned Parquet dataset.

Records and accounting: a record is one CSV row (it may span lines inside quotes); blank or whitespace-only lines are
not records and are counted as `blank_lines`. rows_in = rows_curated + rows_quarantined, always: a row breaking a
row rule is quarantined with its reason and raw text; when a batch rule fails, the rows that passed are quarantined
too as `batch_rejected` (normalised) and curated is left untouched.
"""
