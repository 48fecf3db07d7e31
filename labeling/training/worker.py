"""The training worker process: `python -m labeling.training.worker --db PATH --run ID`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from labeling.settings import process_defaults

    process_defaults()  # before anything imports xgboost or keras
    parser = argparse.ArgumentParser(description="Execute one queued scriptlabel training run.")
    parser.add_argument("--db", required=True)
    parser.add_argument("--run", type=int, required=True)
    args = parser.parse_args(argv)

    from labeling.settings import Settings
    from labeling.training.runs import execute_run, serve_warm
    from store.db import open_db

    try:
        settings = Settings.from_env(os.environ, db_path=Path(args.db))
        db = open_db(settings.db_path)
        run = execute_run(db, args.run, auto_complexity_models=settings.auto_complexity_models)
    except Exception as exc:  # already recorded on the run row; the exit code tells the log reader
        print(f"training run {args.run} failed: {exc}", file=sys.stderr)
        return 1
    if run["kind"] == "lines" and settings.warm_worker_s > 0:
        # Models loaded, imports done: the next line run starts here in a tenth of a second instead of
        # a fresh process's seconds (labeling.training.runs.serve_warm).
        return serve_warm(db, run["run_id"], idle_s=settings.warm_worker_s,
                          auto_complexity_models=settings.auto_complexity_models)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
