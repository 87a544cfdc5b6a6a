"""etlctl: tooling around the etl-platform program: offline preview, config schema, Automation API drivers."""
