"""`python -m tests.support.iam_child ARGV`: `python -m etl_jobs ARGV` with the checks of `tests.support.iam`.

Environment: ETL_TEST_ALLOWED_LIST_PREFIXES (optional: the list-prefix check), ETL_TEST_CALL_LOG (optional: append
one JSON line per S3 call: operation, bucket, key or prefix), ETL_TEST_CRASH_AFTER_WRITE (optional: the process dies
right after the first successful write whose URI contains this text, as a killed task would)."""

from __future__ import annotations

import json
import os
import sys

from etl_jobs import storage
from etl_jobs.cli import main
from tests.support.iam import LIST_ENV, install_list_check, log_calls

if os.environ.get(LIST_ENV):
    install_list_check([(bucket, prefix) for bucket, prefix in json.loads(os.environ[LIST_ENV])])
if os.environ.get("ETL_TEST_CALL_LOG"):
    log_calls(os.environ["ETL_TEST_CALL_LOG"])
crash_after = os.environ.get("ETL_TEST_CRASH_AFTER_WRITE")
if crash_after:
    real_write = storage.write

    def write_then_die(uri: str, data: bytes, **conditions: object) -> storage.ObjectInfo:
        info = real_write(uri, data, **conditions)  # type: ignore[arg-type]
        if crash_after in uri:
            os._exit(137)
        return info

    storage.write = write_then_die  # type: ignore[assignment]
raise SystemExit(main(sys.argv[1:]))
