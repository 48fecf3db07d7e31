"""Where SQLite ends: many annotators writing at once, each through its own connection and process.

    uv run python bench/annotators.py [--annotators 1 2 4 8 16 32] [--labels 150]

Prints one JSON object. A database holds one generated 5k-line screenplay; each annotator is a
process that asks for a batch (`label_sync.sync`, as its browser tab does) and then sends one label
event per sync, as fast as it can (a fluent person sends about 4 per second). Measured per count:
labels stored per second over all annotators, and the p50/p95/max time of one write (a sync that
stores one event). SQLite takes one writer at a time (WAL, busy timeout): writes queue up, reads don't.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
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


def annotator(db_path: str, name: str, labels: int, start, out) -> None:
    sys.path.insert(0, str(REPO))
    from labeling.session import sync as label_sync
    from store.db import open_db

    db = open_db(db_path, check=False)
    first = label_sync.sync(db, label_sync.SyncRequest.parse({"annotator": name, "tab": f"tab-{name}-0000",
                                                              "want": labels}))
    ids = [item["line_id"] for item in first["items"]]
    start.wait()
    times = []
    for i, line_id in enumerate(ids):
        request = label_sync.SyncRequest.parse({
            "annotator": name, "tab": f"tab-{name}-0000", "held": ids[i + 1:],
            "events": [{"client_event_id": uuid.uuid4().hex, "line_id": line_id, "action": "label",
                        "label": "action"}]})
        started = time.perf_counter()
        label_sync.sync(db, request)
        times.append((time.perf_counter() - started) * 1000)
    out.put(times)


def run(db_path: Path, count: int, labels: int) -> dict:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(count + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=annotator, args=(str(db_path), f"a{count}x{i}", labels, start, out))
             for i in range(count)]
    for proc in procs:
        proc.start()
    start.wait()
    began = time.perf_counter()
    times = [t for _ in procs for t in out.get()]
    elapsed = time.perf_counter() - began
    for proc in procs:
        proc.join()
    times.sort()
    return {"annotators": count, "labels": len(times), "labels_per_s": round(len(times) / elapsed, 1),
            "write_ms": {"p50": round(statistics.median(times), 1),
                         "p95": round(times[int(0.95 * (len(times) - 1))], 1), "max": round(times[-1], 1)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--labels", type=int, default=150)
    args = parser.parse_args(argv)
    from bench.ui_latency import screenplay
    from labeling.ingest.pipeline import ingest_path
    from store.db import open_db

    report = {"runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.annotators:
            db_path = Path(tmp) / f"team-{count}.db"
            source = Path(tmp) / "generated.txt"
            source.write_text(screenplay(5000))
            db = open_db(db_path)
            ingest_path(db, source)
            db.close()
            report["runs"].append(run(db_path, count, args.labels))
            print(json.dumps(report["runs"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
