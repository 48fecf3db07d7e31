"""A studio's library on one machine: the loop's costs at millions of lines.

    uv run python bench/scale.py [--lines 5000000] [--data ../shared/data]

Prints one JSON object. How the library is built (say it, since it is not 1,000 real screenplays):
a real studio PDF from `../shared/data/studio_pdfs` is ingested as a user would (text layer, the
shipped model's suggestions, sequences); the rest of the library is copies of it (lines and the
shipped model's predictions, `store.scripts.clone_script`) as further scripts, so queue, pages and
exports read a table of `--lines` lines. Then measured:
- ingest throughput (pages/s) of the same PDF into the empty and into the full database;
- `queue --n 20` over every script and for one script, against the same on a one-script database;
- a label key's server time (`label_sync.sync` with one event), p50/p95;
- Scripts page, Script view and Sequences page loads (AppTest, warm);
- export of everything as CSV and Parquet (`scriptlabel export` in a subprocess): time and peak memory;
- retrain → re-ranked current script: a new line model version from 200 labels, the current script
  re-predicted, its queue ranked (the rest of the library re-predicts afterwards, in the background);
- database size per line.
Targets at 5M lines on 2 cores: queue ≤ 2× the one-script cost; key press ≤ 30 ms p95; each page ≤ 1 s;
full export ≤ 60 s in ≤ 1 GB; retrain → re-ranked current script ≤ 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads


PDF = "studio_pdfs/pdf/suits-pilot.pdf"


def _ms(fn, runs: int = 5) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50": round(statistics.median(times), 1), "p95": round(times[int(0.95 * (len(times) - 1))], 1),
            "max": round(times[-1], 1)}


def ingest_pdf(db, pdf: Path) -> dict:
    from labeling.ingest.pipeline import ingest_path

    started = time.perf_counter()
    result = ingest_path(db, pdf, allow_duplicate=True)
    seconds = time.perf_counter() - started
    return {"script_id": result.script_id, "pages": result.pages, "lines": result.lines,
            "seconds": round(seconds, 2), "pages_per_s": round(result.pages / seconds, 1)}


def fill(db, source_script: int, total_lines: int) -> dict:
    """Copies of one script (with its predictions) as further scripts until the library holds `total_lines`."""
    from store import scripts as script_store

    started = time.perf_counter()
    db.execute("PRAGMA synchronous=OFF")  # set-up only: the copies are filler
    have = script_store.count_lines(db)
    per_copy = script_store.count_lines(db, source_script)
    copies = 0
    while have < total_lines:
        script_store.clone_script(db, source_script, title=f"Library copy {copies + 1}")
        copies += 1
        have += per_copy
    db.execute("PRAGMA synchronous=FULL")
    return {"copies": copies, "lines": have, "seconds": round(time.perf_counter() - started, 1)}


def queue_costs(db, script_id: int) -> dict:
    from labeling.session.queue import build_queue

    return {"all_scripts_ms": _ms(lambda: build_queue(db, n=20), runs=3),
            "one_script_ms": _ms(lambda: build_queue(db, script_id=script_id, n=20), runs=3)}


def key_press(db, script_id: int, n: int = 60) -> dict:
    from labeling.session import sync as label_sync

    first = label_sync.sync(db, label_sync.SyncRequest.parse(
        {"annotator": "scale", "tab": "scale-tab-1", "script_id": script_id, "want": n}))
    ids = [item["line_id"] for item in first["items"]]
    times = []
    for i, line_id in enumerate(ids):
        request = label_sync.SyncRequest.parse({
            "annotator": "scale", "tab": "scale-tab-1", "script_id": script_id, "held": ids[i + 1:],
            "events": [{"client_event_id": uuid.uuid4().hex, "line_id": line_id, "action": "label",
                        "label": "action"}]})
        started = time.perf_counter()
        label_sync.sync(db, request)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"n": len(times), "p50": round(statistics.median(times), 1),
            "p95": round(times[int(0.95 * (len(times) - 1))], 1), "max": round(times[-1], 1)}


def page_loads(db_path: Path, script_id: int) -> dict:
    from streamlit.testing.v1 import AppTest

    os.environ.update(SCRIPTLABEL_DB=str(db_path), SCRIPTLABEL_SAMPLE="0", SCRIPTLABEL_RETRAIN_EVERY="0")
    out = {}
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=600)
    at.query_params.update({"annotator": "scale", "script": str(script_id)})
    at.run()
    for page in ("scripts", "script_view", "sequences"):
        runs = []
        for _ in range(2):
            at.switch_page(f"app_pages/{page}.py")
            started = time.perf_counter()
            at.run()
            runs.append(round((time.perf_counter() - started) * 1000, 1))
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].value}")
        out[page] = {"cold_ms": runs[0], "warm_ms": runs[1]}
    return out


def export_cost(db_path: Path, fmt: str, out_dir: Path) -> dict:
    out = out_dir / f"library.{fmt}"
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "labeling.cli", "--db", str(db_path),
                           "export", "--format", fmt, "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    rows = json.loads(done.stdout.strip().splitlines()[-1])["rows"]
    size = out.stat().st_size
    out.unlink()
    return {"rows": rows, "seconds": round(seconds, 1), "peak_mb": round(peak_kb / 1024), "mb": round(size / 2**20)}


def retrain_cost(db, script_id: int) -> dict:
    from labeling.training.lines import train_line_version
    from labeling.session.queue import build_queue
    from store import labels as label_store
    from store import scripts as script_store

    lines = script_store.lines_frame(db, script_id)
    suggestion = dict(db.execute(
        "SELECT p.line_id, p.label FROM predictions p JOIN lines l USING (line_id) WHERE l.script_id = ?",
        [script_id]).fetchall())
    for line_id in random.Random(3).sample(list(lines["line_id"]), 200):
        label_store.add_label(db, int(line_id), suggestion.get(int(line_id), "action"), annotator="scale")
    started = time.perf_counter()
    version, _, _ = train_line_version(db, predict_all=False)
    trained = time.perf_counter() - started
    build_queue(db, script_id=script_id, n=20)
    return {"version": version, "train_and_predict_current_s": round(trained, 2),
            "to_reranked_queue_s": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--folder", default=None, help="keep the database here (default: a temporary folder)")
    args = parser.parse_args(argv)
    pdf = Path(args.data) / PDF
    if not pdf.exists():
        print(f"error: {pdf} not found; pass --data pointing at the shared data folder", file=sys.stderr)
        return 2
    from store.db import open_db

    report: dict = {"target_lines": args.lines, "source": PDF}
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        small_path = folder / "one.db"
        small = open_db(small_path)
        report["ingest_empty"] = ingest_pdf(small, pdf)
        small_queue = queue_costs(small, report["ingest_empty"]["script_id"])
        small.close()
        db_path = folder / "library.db"
        db = open_db(db_path)
        first = ingest_pdf(db, pdf)
        report["fill"] = fill(db, first["script_id"], args.lines)
        print(json.dumps({"built": report["fill"]}), file=sys.stderr, flush=True)
        report["ingest_full"] = ingest_pdf(db, pdf)
        current = report["ingest_full"]["script_id"]
        big_queue = queue_costs(db, current)
        report["queue"] = {"one_script_db": small_queue, "library": big_queue,
                           "all_scripts_ratio": round(big_queue["all_scripts_ms"]["p50"]
                                                      / max(small_queue["all_scripts_ms"]["p50"], 1e-3), 2)}
        report["key_press_ms"] = key_press(db, current)
        print(json.dumps({"queue": report["queue"], "key": report["key_press_ms"]}), file=sys.stderr, flush=True)
        report["pages"] = page_loads(db_path, current)
        report["retrain"] = retrain_cost(db, current)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        lines = db.execute("SELECT COUNT(*) FROM lines").fetchone()[0]
        db.close()
        report["export"] = {fmt: export_cost(db_path, fmt, folder) for fmt in ("csv", "parquet")}
        report["db_bytes_per_line"] = round(db_path.stat().st_size / lines)
        report["lines"] = lines
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
