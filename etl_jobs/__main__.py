"""`python -m etl_jobs ...`: see etl_jobs.cli."""

from etl_jobs.cli import main

raise SystemExit(main())
