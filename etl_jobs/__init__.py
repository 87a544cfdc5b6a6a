"""ETL job code for the orders dataset: one contract, one pipeline, run by every architecture. Never imports Pulumi.

Modules: `contract` (columns, rules, reason codes, reference tables), `engine` (the single-node Polars engine),
`pipeline` (stage functions extract/transform/validate/load and `run`), `zones`, `storage` (local/S3 bytes),
`cli` (`python -m etl_jobs`), `sample` (fault-injecting data generator).

Layout inside the zones (D = run date, YYYY-MM-DD):
    raw         run_date=D/<source>/<file>                  the source, copied unchanged by extract; transform reads
                                                            every file under run_date=D/
    staged      run_date=D/orders.parquet                   every record, normalised, with `_file`, `_line`,
                                                            `_reason` (null = valid) and `_raw` (only when rejected);
                                                            written by the transform stage, not by `run`, which keeps
                                                            it in memory
                run_date=D/_stages/<stage>.json             what transform / validate did (the next stage reads it)
    quarantine  run_date=D/quarantine.parquet               rejected rows: run_date, source_file, line, reason,
                                                            raw_line, then the normalised columns
                _manifests/run_date=D/manifest.json         the run's manifest (also written when the run fails)
    curated     order_date=YYYY-MM-DD/part-D.parquet        published rows; one file per partition per run date
                _loads/run_date=D.json                      the files run date D published (a re-run replaces them)
With `--output PREFIX` the zones are PREFIX/raw/, PREFIX/staged/, PREFIX/curated/, PREFIX/quarantine/ and the run's
manifest is also written to PREFIX/manifest.json. Paths starting with `_` are skipped by Spark, Hive and PyArrow
dataset readers, so the curated zone reads as a plain `order_date`-partitioned Parquet dataset.

Records and accounting: a record is one CSV row (it may span lines inside quotes); blank or whitespace-only lines are
not records and are counted as `blank_lines`. rows_in = rows_curated + rows_quarantined, always: a row breaking a
row rule is quarantined with its reason and raw text; when a batch rule fails, the rows that passed are quarantined
too as `batch_rejected` (normalised) and curated is left untouched.
"""
