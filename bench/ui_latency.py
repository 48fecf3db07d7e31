"""UI latency: server time per label action and per page load, on 5k- and 20k-line scripts.

    uv run python bench/ui_latency.py [--sizes 5000 20000] [--actions 60]

Prints one JSON object. Each size gets a fresh database with one generated plain-text screenplay,
a model version's predictions for every line (so the queue ranks by margin, as in real use) and a
few hundred labels already given. Measured:
- `label_action_ms`: what a key press costs on the server: `label_cursor.label_current` (store the
  label, check whether a retrain is due, move the cursor to the next claimed line), one key after
  another with no pause (a person is slower, which only gives the background ranking more time);
- `record_plus_next_item_ms`: the same through `session.record_label` + `session.next_item`, which
  re-ranks the whole pool on every call (what the cursor's batching avoids);
- `apptest_action_ms`: a key press end to end in Streamlit's AppTest (callback + the whole page rerun);
- `page_load_ms`: each page's first (cold caches) and second (warm) run in AppTest;
- `after_labeling`: label events in the database and what `store.labels.current_labels` then costs
  (it is what the queue's ranking and the Script page read).
The target is ≤ 150 ms server time per action.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

PAGES = ["scripts", "label", "script_view", "sequences", "models", "export"]
NAMES = ["MARGO", "TIM", "OLD SAILOR", "DR. HALE", "KIT", "BISCUIT"]
PLACES = ["LIGHTHOUSE", "HARBOUR", "CLOCK SHOP", "BEACH", "KITCHEN", "BUS STOP"]


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


def build(tmp: Path, n_lines: int, *, prelabeled: int = 300):
    from labeling.ingest import ingest_path
    from store import labels as label_store
    from store import models as model_store
    from store.db import open_db

    db_path = tmp / f"ui-{n_lines}.db"
    db = open_db(db_path)
    source = tmp / f"generated_{n_lines}.txt"
    source.write_text(screenplay(n_lines))
    result = ingest_path(db, source)
    ids = [int(r[0]) for r in db.execute("SELECT line_id FROM lines WHERE script_id = ?", [result.script_id])]
    proba = np.random.default_rng(0).dirichlet(np.ones(7) * 0.7, len(ids))
    version = model_store.register_version(db, kind="lines", path="bench", metrics={}, n_labels=prelabeled)
    model_store.save_predictions(db, version, ids, proba)
    for line_id in random.Random(1).sample(ids, prelabeled):
        label_store.add_label(db, line_id, "action", annotator="earlier")
    return db, db_path, result


def _summary(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"n": len(samples), "p50": round(statistics.median(samples), 1),
            "p95": round(samples[int(0.95 * (len(samples) - 1))], 1), "max": round(samples[-1], 1),
            "mean": round(statistics.fmean(samples), 1)}


def label_actions(db, db_path: Path, script_id: int, n: int) -> dict:
    from labeling import label_cursor as cursors

    # as on the Label page: with db_path the next batch is ranked in the background
    cursor = cursors.LabelCursor(annotator="bench", script_id=script_id, db_path=str(db_path))
    cursors.advance(db, cursor)
    times = []
    for i in range(n):
        cursors.label_current(db, cursor, "dialogue" if i % 2 else "action", db_path=None, retrain_every=0)
        times.append(cursor.last_action_ms)
    # the retrain check the app runs after every label (not due here: a huge `every`)
    from labeling.training import maybe_retrain

    started = time.perf_counter()
    maybe_retrain(":unused:", every=10**9, db=db)
    check_ms = (time.perf_counter() - started) * 1000
    return {"label_action_ms": _summary(times), "retrain_check_ms": round(check_ms, 1)}


def record_plus_next_item(db, script_id: int, n: int) -> dict:
    from labeling.session import next_item, record_label

    item = next_item(db, script_id=script_id, annotator="bench-raw")
    times = []
    for _ in range(n):
        started = time.perf_counter()
        record_label(db, item.line_id, "action", annotator="bench-raw")
        item = next_item(db, script_id=script_id, annotator="bench-raw")
        times.append((time.perf_counter() - started) * 1000)
    return _summary(times)


def apptest(db_path: Path, n_actions: int) -> dict:
    from streamlit.testing.v1 import AppTest

    os.environ["SCRIPTLABEL_DB"] = str(db_path)
    os.environ["SCRIPTLABEL_SAMPLE"] = "0"
    os.environ["SCRIPTLABEL_RETRAIN_EVERY"] = "0"
    sys.path.insert(0, str(REPO))
    loads = {}
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    at.query_params["annotator"] = "bench-ui"
    at.run()
    for page in PAGES:
        runs = []
        for _ in range(2):
            at.switch_page(f"app_pages/{page}.py")
            started = time.perf_counter()
            at.run()
            runs.append((time.perf_counter() - started) * 1000)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].value}")
        loads[page] = {"cold": round(runs[0], 1), "warm": round(runs[1], 1)}
    at.switch_page("app_pages/label.py")
    at.run()
    times = []
    for i in range(n_actions):
        at.button(key="key_action" if i % 2 else "key_dialogue").click()
        started = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - started) * 1000)
    return {"page_load_ms": loads, "apptest_action_ms": _summary(times)}


def store_reads(db, script_id: int) -> dict:
    """The store reads behind the queue and the Script page, once the run above added its labels.

    Apply-to-all labels whole groups ("CUT TO:", a character's cue) at once, so label events pile up.
    """
    from store import labels as label_store

    events = db["label_events"].count
    started = time.perf_counter()
    label_store.current_labels(db, script_id)
    return {"label_events": events, "current_labels_ms": round((time.perf_counter() - started) * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--actions", type=int, default=60)
    args = parser.parse_args(argv)
    report: dict = {"target_ms_per_action": 150, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            started = time.perf_counter()
            db, db_path, result = build(Path(tmp), size)
            entry: dict = {"lines": result.lines, "pages": result.pages,
                           "setup_s": round(time.perf_counter() - started, 1)}
            entry.update(label_actions(db, db_path, result.script_id, args.actions))
            entry["record_plus_next_item_ms"] = record_plus_next_item(db, result.script_id, max(10, args.actions // 3))
            entry.update(apptest(db_path, max(10, args.actions // 2)))
            entry["after_labeling"] = store_reads(db, result.script_id)
            report["sizes"][str(size)] = entry
            db.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
