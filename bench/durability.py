"""Durability costs: the AUTOINCREMENT migration of an old database, `PRAGMA quick_check`, opening a
database (roll-back check and media sweep included), rolling back a killed ingest's fragment.

    uv run python bench/durability.py [--lines 1000000]

Prints one JSON object. Builds its databases in a temporary folder through the store API.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads

from sqlite_utils import Database  # noqa: E402

from store import jobs as job_store  # noqa: E402
from store import scripts as script_store  # noqa: E402
from store.db import check_integrity, open_db  # noqa: E402
from store.schema import migrations  # noqa: E402
from store.types import Line, PageInfo  # noqa: E402

LINES_PER_PAGE = 50
PAGES_PER_SCRIPT = 100


def _fill(db: Database, n_lines: int, *, job_id: int | None = None, status_ready: bool = True,
          pages_per_script: int = PAGES_PER_SCRIPT) -> int:
    """Scripts of `pages_per_script` pages × 50 lines until `n_lines` are stored; returns the last script id."""
    script_id = 0
    stored = 0
    while stored < n_lines:
        script_id = script_store.create_script(db, title=f"Bench {stored}", format="txt", source_name="bench.txt",
                                               sha256=f"{stored}-{time.time()}", job_id=job_id)
        for page in range(1, pages_per_script + 1):
            lines = [Line(line_no=i, page=page, text=f"Line {i} of page {page}: some screenplay text here",
                          x0=0, y0=i, x1=60, y1=i + 1, indent=10, gap_before=1) for i in range(1, LINES_PER_PAGE + 1)]
            script_store.add_page(db, script_id, PageInfo(page=page, width=85, height=66, image_path=None, dpi=None,
                                                          text_source="text"), lines)
            stored += LINES_PER_PAGE
            if stored >= n_lines:
                break
        if status_ready:
            script_store.finish_script(db, script_id)
    return script_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="lines in the big database")
    args = parser.parse_args()
    out: dict = {"lines": args.lines}
    with tempfile.TemporaryDirectory() as tmp:
        old_path = Path(tmp) / "old.db"
        import sqlite3

        conn = sqlite3.connect(old_path)
        conn.execute("PRAGMA journal_mode=WAL")
        old = Database(conn)
        migrations.apply(old, stop_before=["0200_ingest_jobs", "0200_model_pins", "0200_autoincrement_ids"])
        _fill(old, args.lines)
        conn.close()
        out["db_mb"] = round(old_path.stat().st_size / 1e6, 1)

        start = time.perf_counter()
        db = open_db(old_path, check=False)
        out["migrate_to_autoincrement_s"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        check_integrity(db, old_path)
        out["quick_check_s"] = round(time.perf_counter() - start, 3)
        db.close()
        start = time.perf_counter()
        open_db(old_path, check=False).close()
        out["open_s"] = round(time.perf_counter() - start, 4)

        db = open_db(old_path, check=False)
        job_id = job_store.create_job(db, file_name="killed.pdf", pid=_dead_pid())
        job_store.start_job(db, job_id, pid=_dead_pid())
        _fill(db, 300 * LINES_PER_PAGE, job_id=job_id, status_ready=False, pages_per_script=300)
        start = time.perf_counter()
        deleted = job_store.roll_back_interrupted(db)
        out["roll_back_fragment"] = {"scripts": len(deleted), "pages": 300, "lines": 300 * LINES_PER_PAGE}
        out["roll_back_s"] = round(time.perf_counter() - start, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
