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
    from labeling.training.runs import execute_run
    from store.db import open_db

    try:
        settings = Settings.from_env(os.environ, db_path=Path(args.db))
        execute_run(open_db(settings.db_path), args.run, auto_complexity_models=settings.auto_complexity_models)
    except Exception as exc:  # already recorded on the run row; the exit code tells the log reader
        print(f"training run {args.run} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
