"""Labeling latency in a real browser: key press → next line painted, and server time per event batch.

    uv run python bench/ui_latency.py [--keys 200] [--delay-ms 60] [--big-lines 1000000] [--skip-big]

Prints one JSON object. Two databases are built in a temporary folder:
- `5k`: one generated plain-text screenplay of about 5,000 lines, ingested as a user would (the
  shipped model's suggestions), 300 lines already labeled;
- `1M`: the same plus copies of it as further scripts up to `--big-lines` lines, each with a model
  version's predictions (so the queue ranks by margin over a million-line table).
On each, the app runs as `scriptlabel serve` does (`streamlit run app_server.py`) and headless Debian
Chromium (Playwright) opens `/label?annotator=…&script=ID` and presses `--keys` label keys
`--delay-ms` apart, as a fluent annotator does. Measured:
- `paint_ms`: from the key event's timestamp to the frame that shows the next line (the view records
  it with requestAnimationFrame; painting never waits for the server), p50/p95/max;
- `sync_roundtrip_ms`: the browser's own timing of each `/api/label/sync` request (events stored +
  batch topped up), p50/p95/max;
- `server_sync_ms`: `labeling.session.sync.sync` in-process on the same database for a batch of 10
  events plus 30 new lines, one script and all scripts, p50/p95/max;
- `stored`: label events in SQLite after the run, which must equal the keys pressed.
Target: paint p95 ≤ 50 ms (Label Studio measured here: 301 ms median per annotate-and-next).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads

import numpy as np  # noqa: E402

NAMES = ["MARGO", "TIM", "OLD SAILOR", "DR. HALE", "KIT", "BISCUIT"]
PLACES = ["LIGHTHOUSE", "HARBOUR", "CLOCK SHOP", "BEACH", "KITCHEN", "BUS STOP"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KEYS = "acdhpto"


def screenplay(n_lines: int, *, seed: int = 0) -> str:
    """A plain-text screenplay of about `n_lines` non-blank lines, laid out with the usual indents."""
    rng = random.Random(seed)
    out: list[str] = []
    n = scene = 0
    while n < n_lines:
        scene += 1
        out += [f"{rng.choice(['INT.', 'EXT.'])} {rng.choice(PLACES)} {scene} - {rng.choice(['DAY', 'NIGHT'])}", ""]
        n += 1
        for _ in range(rng.randint(3, 8)):
            who = rng.choice(NAMES)
            out += [f"Waves crash as {who.title()} counts {rng.randint(1, 999)} ticking clocks.", ""]
            out.append(" " * 22 + who + (" (V.O.)" if rng.random() < 0.1 else ""))
            n += 2
            if rng.random() < 0.2:
                out.append(" " * 16 + rng.choice(["(quietly)", "(beat)", "(to Tim)"]))
                n += 1
            out += [" " * 10 + f"The clocks stopped at {rng.randint(1, 12)}, the {n}th time today.", ""]
            n += 1
        out += [" " * 50 + "CUT TO:", ""]
        n += 1
        if scene % 6 == 0:
            out.append("\f")
    return "\n".join(out) + "\n"


def build(folder: Path, *, total_lines: int, prelabeled: int = 300) -> tuple[Path, int]:
    """A database with a ~5k-line script ingested for real, plus copies up to `total_lines` lines."""
    from labeling.ingest.pipeline import ingest_path
    from store import labels as label_store
    from store import models as model_store
    from store import scripts as script_store
    from store.db import open_db
    from store.types import Line, PageInfo

    db_path = folder / "scriptlabel.db"
    db = open_db(db_path)
    source = folder / "generated_5k.txt"
    source.write_text(screenplay(5000))
    script_id = ingest_path(db, source).script_id
    lines = script_store.lines_frame(db, script_id)
    rng = random.Random(1)
    for line_id in rng.sample(list(lines["line_id"]), prelabeled):
        label_store.add_label(db, int(line_id), "action", annotator="earlier")
    copies = max(0, total_lines // len(lines) - 1)
    if copies:
        db.execute("PRAGMA synchronous=OFF")  # set-up only: the copies are filler, their durability is moot
        by_page = [(page, [Line(line_no=0, page=page, text=r.text, x0=r.x0, y0=r.y0, x1=r.x1, y1=r.y1,
                                indent=r.indent, gap_before=r.gap_before) for r in group.itertuples()])
                   for page, group in lines.groupby("page")]
        for copy in range(copies):
            sid = script_store.create_script(db, title=f"Copy {copy + 1}", format="txt", source_name="copy.txt",
                                             sha256=uuid.uuid4().hex)
            for page, page_lines in by_page:
                script_store.add_page(db, sid, PageInfo(page=page, width=0, height=0, image_path=None, dpi=None,
                                                        text_source="text"), page_lines)
            script_store.finish_script(db, sid)
        ids = [r[0] for r in db.execute("SELECT line_id FROM lines WHERE script_id != ?", [script_id])]
        version = model_store.register_version(db, kind="lines", path="bench", metrics={}, n_labels=prelabeled)
        proba = np.random.default_rng(0).dirichlet(np.ones(7) * 0.7, len(ids))
        model_store.save_predictions(db, version, ids, proba)
        db.execute("PRAGMA synchronous=FULL")
    db.close()
    return db_path, script_id


def _summary(samples: list[float]) -> dict:
    samples = sorted(samples)
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "p50": round(statistics.median(samples), 1),
            "p95": round(samples[int(0.95 * (len(samples) - 1))], 1), "max": round(samples[-1], 1)}


def server_sync(db_path: Path, script_id: int | None, runs: int = 20) -> dict:
    """`label_sync.sync` in-process: 10 label events and 30 new lines per call, as a fast tab sends them."""
    from labeling.session import sync as label_sync
    from store.db import open_db

    db = open_db(db_path)
    times = []
    held: list[int] = []
    for _ in range(runs):
        events = [{"client_event_id": uuid.uuid4().hex, "line_id": line_id, "action": "label", "label": "action"}
                  for line_id in held[:10]]
        request = label_sync.SyncRequest.parse({"annotator": "bench-server", "tab": "bench-tab-1", "script_id": script_id,
                                                "events": events, "held": held[10:], "want": 30})
        started = time.perf_counter()
        response = label_sync.sync(db, request)
        times.append((time.perf_counter() - started) * 1000)
        held = held[10:] + [item["line_id"] for item in response["items"]]
    label_sync.release_tab(db, annotator="bench-server", tab="bench-tab-1")
    db.close()
    return _summary(times[1:])  # the first call warms the page cache


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_run(db_path: Path, script_id: int, *, keys: int, delay_ms: int, log: Path) -> dict:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = dict(os.environ, SCRIPTLABEL_DB=str(db_path), SCRIPTLABEL_SAMPLE="0", SCRIPTLABEL_RETRAIN_EVERY="0")
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app_server.py"), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start; see {log}")
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            started = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/label?annotator=bench&script={script_id}")
            page.wait_for_function("() => window.__scriptlabelView && window.__scriptlabelView.current",
                                   timeout=120_000)
            first_line_s = time.perf_counter() - started
            page.wait_for_timeout(1000)
            for i in range(keys):
                page.keyboard.press(KEYS[i % len(KEYS)])
                page.wait_for_timeout(delay_ms)
            page.wait_for_function("() => window.__scriptlabelView.pending.length === 0", timeout=120_000)
            paints = page.evaluate("window.__scriptlabelPaints")
            shown = page.evaluate("window.__scriptlabelShown.length")
            syncs = page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.includes("
                                  "'/api/label/sync')).map(e => e.duration)")
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    import sqlite3

    conn = sqlite3.connect(db_path)
    stored = conn.execute("SELECT COUNT(*) FROM label_events WHERE annotator = 'bench'").fetchone()[0]
    conn.close()
    return {"first_line_s": round(first_line_s, 2), "keys": keys, "delay_ms": delay_ms, "shown": shown,
            "stored": stored, "paint_ms": _summary(paints), "sync_roundtrip_ms": _summary(syncs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--delay-ms", type=int, default=60)
    parser.add_argument("--big-lines", type=int, default=1_000_000)
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args(argv)
    report: dict = {"target_paint_p95_ms": 50, "databases": {}}
    sizes = [("5k", 5000)] + ([] if args.skip_big else [("1M", args.big_lines)])
    with tempfile.TemporaryDirectory() as tmp:
        for name, total in sizes:
            folder = Path(tmp) / name
            folder.mkdir()
            started = time.perf_counter()
            db_path, script_id = build(folder, total_lines=total)
            import sqlite3

            conn = sqlite3.connect(db_path)
            n_lines = conn.execute("SELECT COUNT(*) FROM lines").fetchone()[0]
            conn.close()
            entry = {"lines": n_lines, "setup_s": round(time.perf_counter() - started, 1)}
            entry["browser"] = browser_run(db_path, script_id, keys=args.keys, delay_ms=args.delay_ms,
                                           log=folder / "app.log")
            entry["server_sync_ms"] = {"one_script": server_sync(db_path, script_id),
                                       "all_scripts": server_sync(db_path, None, runs=6)}
            report["databases"][name] = entry
            print(json.dumps({name: entry}), file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
