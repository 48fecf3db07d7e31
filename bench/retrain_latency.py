"""Labeling-loop latency of the line model; prints JSON.

- adapter retrain time vs labeled lines (1k, 5k, 20k, 50k): `fit_adapter` over cached base outputs
  (what the loop does after each batch of human labels), p50/p90 over `--runs` runs;
- the same at the largest size while a long script is being labeled (20 of its lines labeled), the
  adapter's anchors on and off (`with_a_script_being_labeled`);
- predict + re-rank a 5k-line script: adapter probabilities over the script's cached base outputs,
  margin scores and argsort (the loop's step), and, for reference, the same from raw lines
  (features + base model + adapter: what happens once per script or after a base-model change).

- end to end in the product: a real SQLite database holding studio PDFs ingested through the app's
  path with their (projected) labels stored as human labels; `train_line_version` in-process
  (snapshot from SQLite → cached base outputs → adapter fit → saved → made current → every labeled
  script re-predicted and its sequences re-derived), and `train --wait`'s path (a worker process).

- under contention: the 20k-label adapter fit in a fresh process while another 2-thread XGBoost job
  runs on the same cores, with libgomp's default spin count (300,000) and with ours (10,000; see
  `models/__init__.py`).

- key → new suggestion shown (`--key-to-shown`, only that): a ~5k-line plain-text script (the
  generated one of bench/ui_latency.py) ingested as a user would; the Label view's server calls
  (`labeling.session.sync.sync`, retrain every 10) in-process, the retrain in the real worker process:
  from the sync that carries the 10th label of a batch, polling every 0.4 s as the view does while a
  retrain runs, to the re-rank sync whose prefetched lines carry the new version's suggestions.
  Reported per run with the worker's own step timings (`metrics.timings`) and its start-up delay.

Base model: `models/pretrained/lines` if present, else a small one trained here on MovieParse gold.
Lines: the shared corpus (MovieParse scripts, studio PDFs when the PDF reader is there), repeated
to reach the sizes; without the shared data, synthetic lines (said so in the output).

    uv run python bench/retrain_latency.py [--runs 5] [--sizes 1000,5000,20000,50000] [--db-sizes 5000,20000]
                                           [--no-contention]
    uv run python bench/retrain_latency.py --key-to-shown [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads

from labeling.session.strategies import margin_scores  # noqa: E402
from models.lines.classifier import (  # noqa: E402
    AdapterConfig,
    BaseOutputs,
    BoosterParams,
    LineClassifier,
    LineModelConfig,
    default_n_jobs,
    fit_adapter,
    fit_base,
)
from store.types import LABELS  # noqa: E402

PRETRAINED = Path(__file__).resolve().parents[1] / "models" / "pretrained" / "lines"


def corpus_lines() -> tuple[pd.DataFrame, np.ndarray, str]:
    from labeling.corpus.sources import CorpusUnavailableError, concat_scripts, load_movieparse, load_studio_pdfs

    try:
        scripts = load_movieparse()
    except CorpusUnavailableError as exc:
        X, y = synthetic_lines(60_000)
        return X, y, f"synthetic ({exc})"
    source = "movieparse"
    try:
        scripts += load_studio_pdfs()
        source += "+studio_pdfs"
    except CorpusUnavailableError:
        pass
    X, y = concat_scripts(scripts)
    return X, y, source


def synthetic_lines(n: int) -> tuple[pd.DataFrame, np.ndarray]:
    scene = [("INT. ROOM - DAY", "scene_heading", 15), ("Someone walks in and looks around.", "action", 15),
             ("ANNA", "character", 37), ("(quietly)", "parenthetical", 30), ("Who is there?", "dialogue", 25),
             ("CUT TO:", "transition", 60), ("12.", "other", 70)]
    rows, labels = [], []
    for i in range(n):
        text, label, indent = scene[i % len(scene)]
        rows.append(dict(script_id=f"syn{i // 3000}", line_no=i % 3000 + 1, page=1 + (i % 3000) // 50, text=text,
                         indent=float(indent), gap_before=1.0, x0=indent * 7.2, y0=float(i % 50) * 12,
                         x1=(indent + len(text)) * 7.2, y1=float(i % 50) * 12 + 12))
        labels.append(label)
    return pd.DataFrame(rows), np.array(labels, dtype=object)


def base_model(X: pd.DataFrame, y: np.ndarray, directory: Path = PRETRAINED) -> tuple[LineClassifier, str]:
    if (directory / "config.json").exists():
        return LineClassifier.load(directory), str(directory)
    movieparse = X["script_id"].astype(str).str.startswith("movieparse/").to_numpy()
    keep = movieparse if movieparse.any() else np.ones(len(X), bool)
    small = LineModelConfig(stage1=BoosterParams(n_estimators=100), stage2=BoosterParams(n_estimators=60, max_depth=5))
    return fit_base(X[keep].reset_index(drop=True), y[keep], config=small), "trained here (small, MovieParse gold)"


def tile(X: pd.DataFrame, y: np.ndarray, out: BaseOutputs, n: int):
    """The first n labeled lines (repeating the corpus as needed), with their scripts' context."""
    labeled = np.flatnonzero(np.array([v is not None for v in y]))
    reps = int(np.ceil(n / len(labeled)))
    frames, labels = [], []
    for r in range(reps):
        f = X.copy()
        f["script_id"] = f["script_id"].astype(str) + f"~{r}"
        frames.append(f)
        labels.append(y)
    Xr = pd.concat(frames, ignore_index=True)
    yr = np.concatenate(labels)
    positions = np.flatnonzero(np.array([v is not None for v in yr]))
    cut = positions[n - 1] + 1
    yr = yr[:cut]
    # keep only scripts that hold labels, like the loop's snapshot of labeled scripts
    outputs = BaseOutputs.concat([out] * reps).take(slice(0, cut))
    return Xr.iloc[:cut].reset_index(drop=True), yr, outputs


def five_k_script(X: pd.DataFrame) -> pd.DataFrame:
    sizes = X.groupby("script_id").size().sort_values(ascending=False)
    parts, total = [], 0
    for sid in sizes.index:
        part = X[X["script_id"] == sid]
        parts.append(part)
        total += len(part)
        if total >= 5000:
            break
    script = pd.concat(parts, ignore_index=True).iloc[:5000].copy()
    script["script_id"] = "bench-5k"
    script["line_no"] = np.arange(1, len(script) + 1)
    return script.reset_index(drop=True)


def product_path(sizes: list[int], runs: int) -> dict:
    """Retrain through the product on a real database with `n` human labels (studio PDFs, text layer)."""
    import tempfile

    from labeling.corpus.sources import CorpusUnavailableError, _resolve, load_studio_pdfs
    from labeling.ingest.pipeline import ingest_path
    from labeling.training.lines import train_line_version
    from labeling.training.runs import request_training, wait_for_run
    from store import labels as label_store
    from store.db import open_db

    try:
        studio = load_studio_pdfs()
        pdf_dir = _resolve(None, "studio_pdfs") / "pdf"
    except CorpusUnavailableError as exc:
        return {"skipped": str(exc)}
    out = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            db_path = Path(tmp) / "bench.db"
            db = open_db(db_path)
            given = 0
            for script in studio:
                if given >= n:
                    break
                result = ingest_path(db, pdf_dir / f"{script.script_id.split('/')[-1]}.pdf")
                rows = db.execute("SELECT line_id, text FROM lines WHERE script_id = ? ORDER BY line_no",
                                  [result.script_id]).fetchall()
                if [r[1] for r in rows] != list(script.lines["text"]):
                    continue  # the corpus reader and the ingest path disagree on this file's lines: skip it
                by_label: dict[str, list[int]] = {}
                for (line_id, _), label in zip(rows, script.labels):
                    if label is not None and given < n:
                        by_label.setdefault(label, []).append(line_id)
                        given += 1
                for label, ids in by_label.items():
                    label_store.add_labels(db, ids, label, annotator="bench")
            in_process, worker = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                train_line_version(db)
                in_process.append(time.perf_counter() - t0)
            for _ in range(max(1, runs // 2)):
                t0 = time.perf_counter()
                run_id = request_training(db_path, kind="lines", trigger="bench")
                wait_for_run(db, run_id, poll_s=0.05)
                worker.append(time.perf_counter() - t0)
            lines = db.execute("SELECT COUNT(*) FROM lines").fetchone()[0]
            out[str(n)] = {"human_labels": given, "lines_in_db": int(lines),
                           "train_line_version_in_process": stats(in_process),
                           "worker_process_train_wait": stats(worker)}
    return out


def key_to_shown(runs: int, *, poll_s: float = 0.4, every: int = 10) -> dict:
    """Key completing a retrain batch → the view's prefetched lines showing the new version (see docstring)."""
    import datetime as dt
    import tempfile
    import uuid as uuid_

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ui_latency import screenplay

    from labeling.ingest.pipeline import ingest_path
    from labeling.session.sync import ClientEvent, SyncRequest, sync
    from store import models as model_store
    from store.db import open_db

    def stamp(s: str) -> dt.datetime:
        return dt.datetime.fromisoformat(s)

    out: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "scriptlabel.db"
        db = open_db(db_path)
        source = Path(tmp) / "generated_5k.txt"
        source.write_text(screenplay(5000))
        script_id = ingest_path(db, source).script_id

        def call(events=(), held=(), want=0):
            request = SyncRequest(annotator="bench", tab="bench-tab-0001", script_id=script_id, strategy="margin",
                                  events=list(events), held=list(held), want=want)
            return sync(db, request, db_path=db_path, retrain_every=every)

        batch = call(want=60)["items"]
        for _ in range(runs):
            version = model_store.current_version(db)
            version = version.version if version else 0
            events = []
            for item in batch[:every]:
                label = "dialogue" if item["suggestion"] == "parenthetical" else (item["suggestion"] or "action")
                events.append(ClientEvent(client_event_id=uuid_.uuid4().hex, line_id=item["line_id"],
                                          action="label", label=label))
            held = [i["line_id"] for i in batch[every:]]
            call(events=events[:-1], held=held)
            t0 = time.perf_counter()
            resp = call(events=events[-1:], held=held)
            polls = 0
            while resp["model"]["version"] == version:
                if resp["model"]["run"] and resp["model"]["run"]["status"] == "failed":
                    raise SystemExit(f"the retrain failed: {resp['model']['run']['error']}")
                time.sleep(poll_s)
                polls += 1
                resp = call(held=held)
            new = resp["model"]["version"]
            resp = call(held=held[:1], want=60)  # the view's re-rank: prefetched lines replaced
            shown = time.perf_counter() - t0
            batch = resp["items"]
            run = model_store.list_runs(db, kind="lines", limit=1)[0]
            full = model_store.get_run(db, run["run_id"])
            out.append({"seconds": round(shown, 2), "version": new, "polls": polls,
                        "items_of_new_version": sum(i["model_version"] == new for i in batch), "items": len(batch),
                        "worker_start_s": round((stamp(full["started_at"]) - stamp(full["requested_at"])).total_seconds(), 2),
                        "timings": (full["metrics"] or {}).get("timings"),
                        "changed": (full["metrics"] or {}).get("changed")})
            deadline = time.monotonic() + 120  # the library re-prediction after the run, before the next batch
            while model_store.active_runs(db, "lines") and time.monotonic() < deadline:
                time.sleep(0.2)
    times = [r["seconds"] for r in out]
    return {"lines": 5000, "poll_s": poll_s, "retrain_every": every, **stats(times), "each": out,
            "target_s": 3.0}


_BUSY = """
import time, numpy as np, xgboost as xgb
d = xgb.DMatrix(np.random.rand(200000, 50).astype(np.float32), label=np.random.randint(0, 7, 200000))
end = time.time() + {seconds}
while time.time() < end:
    xgb.train({{"objective": "multi:softprob", "num_class": 7, "nthread": 2, "tree_method": "hist"}}, d, 5)
"""

_FIT = """
import json, sys, time
sys.path.insert(0, {bench!r})
import numpy as np
from retrain_latency import base_model, corpus_lines, tile
from models.lines.classifier import fit_adapter
X, y, _ = corpus_lines()
base, _ = base_model(X, y)
Xn, yn, out = tile(X, y, base.base_outputs(X), 20000)
times = []
for _ in range({runs}):
    t0 = time.perf_counter(); fit_adapter(base, Xn, yn, outputs=out); times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def contention(runs: int) -> dict:
    """The 20k adapter fit beside a busy 2-thread XGBoost job, per libgomp spin count (fresh processes)."""
    import subprocess

    bench = str(Path(__file__).resolve().parent)
    out = {}
    for spins in ("300000", "10000"):
        env = dict(os.environ, GOMP_SPINCOUNT=spins)
        busy = subprocess.Popen([sys.executable, "-c", _BUSY.format(seconds=600)], env=env)
        try:
            time.sleep(3)
            done = subprocess.run([sys.executable, "-c", _FIT.format(bench=bench, runs=runs)], env=env,
                                  capture_output=True, text=True, check=True)
        finally:
            busy.kill()
            busy.wait()
        out[f"gomp_spincount_{spins}"] = stats(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def compare_bases(base: LineClassifier, other: LineClassifier, X: pd.DataFrame, y: np.ndarray,
                  outputs: BaseOutputs, n: int, runs: int) -> dict:
    """The adapter retrain at n labels over two bases, alternating (ours, other, ours, other), so both
    see the same contention."""
    other_outputs = other.base_outputs(X)
    result: dict = {"ours_p50_s": [], "other_p50_s": []}
    for _ in range(2):
        for key, b, out in (("ours_p50_s", base, outputs), ("other_p50_s", other, other_outputs)):
            Xn, yn, outn = tile(X, y, out, n)
            current = Xn["script_id"].iloc[-1]
            times, adapter = timed(lambda: fit_adapter(b, Xn, yn, outputs=outn, current_script=current), runs)
            result[key].append(stats(times)["p50_s"])
            result[key.replace("p50_s", "columns")] = len(adapter.feature_names_)
    return result


def sequence_latency(base: LineClassifier, directory: Path, script: pd.DataFrame, runs: int) -> dict | str:
    """The sequence labeler alone over a 5k-line script (its inputs computed beforehand): load, the
    first call in a process (JAX compiles the network for its batch shape), and the calls after it."""
    if getattr(base, "sequence_", None) is None:
        return "the base model has no sequence labeler"
    from models.lines.features import dense_features, script_order
    from models.lines.sequence import SequenceLabeler

    dense = dense_features(script, base.features)
    s1 = base.base_outputs(script).stage1
    inputs = base._sequence_input(dense, s1 if base.sequence_mode == "replace" else None)
    texts, groups = script["text"].to_numpy(), script_order(script)
    model, loaded_s = base.sequence_, None
    if (directory / "sequence.keras").exists():
        t0 = time.perf_counter()
        model = SequenceLabeler.load(directory)  # fresh: nothing compiled yet for it
        loaded_s = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    model.predict_proba(inputs, texts, groups)
    first_s = time.perf_counter() - t0
    times, _ = timed(lambda: model.predict_proba(inputs, texts, groups), runs)
    return {"load_s": loaded_s, "first_call_s": round(first_s, 3), "warm": stats(times), "lines": int(len(script))}


def timed(fn, runs: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def open_script_retrain(base: LineClassifier, X: pd.DataFrame, y: np.ndarray, outputs: BaseOutputs, n: int,
                        runs: int) -> dict:
    """The retrain at `n` labels while a long script is being labeled (its first 20 lines labeled, the
    rest unlabeled): the adapter's anchors (unlabeled lines the base is sure of) are most numerous
    here. With and without anchors, alternating."""
    from models.lines.classifier import AdapterConfig

    Xn, yn, outn = tile(X, y, outputs, n)
    sizes = X.groupby("script_id").size().sort_values(ascending=False)
    sid = sizes.index[0]
    idx = np.flatnonzero(X["script_id"].to_numpy() == sid)
    current = X.iloc[idx].copy()
    current["script_id"] = "being-labeled"
    yc = np.array([v if k < 20 else None for k, v in enumerate(y[idx])], dtype=object)
    Xa = pd.concat([Xn, current], ignore_index=True)
    ya = np.concatenate([yn, yc])
    outa = BaseOutputs.concat([outn, outputs.take(idx)])
    anchored, plain = [], []
    for _ in range(runs):
        for config, times in ((AdapterConfig(), anchored), (AdapterConfig(anchor_weight=0.0), plain)):
            t0 = time.perf_counter()
            fit_adapter(base, Xa, ya, outputs=outa, current_script="being-labeled", config=config)
            times.append(time.perf_counter() - t0)
    return {"labeled_lines": int(sum(v is not None for v in ya)), "script_lines": int(len(idx)),
            "anchors_on": stats(anchored), "anchors_off": stats(plain)}


def stats(times: list[float]) -> dict:
    return {"p50_s": round(float(np.median(times)), 4), "p90_s": round(float(np.percentile(times, 90)), 4),
            "min_s": round(min(times), 4), "runs": len(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1000,5000,20000,50000")
    parser.add_argument("--db-sizes", default="5000,20000", help="human labels in the end-to-end database runs")
    parser.add_argument("--no-contention", action="store_true", help="skip the run beside a busy XGBoost job")
    parser.add_argument("--base", default=str(PRETRAINED), help="base model folder (default: the shipped one)")
    parser.add_argument("--compare-base", default=None, metavar="DIR",
                        help="also time the adapter retrain at the largest size over this base, alternating with ours")
    parser.add_argument("--key-to-shown", action="store_true",
                        help="only: key completing a retrain batch → new suggestions in the view (5k-line script)")
    args = parser.parse_args(argv)
    if args.key_to_shown:
        print(json.dumps({"key_to_new_suggestion_shown": key_to_shown(args.runs)}, indent=2))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    db_sizes = [int(s) for s in args.db_sizes.split(",") if s]

    X, y, source = corpus_lines()
    base, base_source = base_model(X, y, Path(args.base))
    t0 = time.perf_counter()
    outputs = base.base_outputs(X)
    base_outputs_s = time.perf_counter() - t0

    retrain = {}
    for n in sizes:
        Xn, yn, outn = tile(X, y, outputs, n)
        current = Xn["script_id"].iloc[-1]
        times, _ = timed(lambda: fit_adapter(base, Xn, yn, outputs=outn, current_script=current), args.runs)
        retrain[str(n)] = {**stats(times), "lines_in_snapshot": int(len(Xn))}

    if sizes:
        retrain["with_a_script_being_labeled"] = open_script_retrain(base, X, y, outputs, max(sizes), args.runs)
    if sizes:
        # Issue 21's adapter (per-kind agreement, hessian floor, tempered follow kinds) against issue 10's
        # (the configuration adapters saved before it load with), alternating in the same conditions.
        n = max(sizes)
        Xn, yn, outn = tile(X, y, outputs, n)
        current = Xn["script_id"].iloc[-1]
        before = AdapterConfig(follow_temperature=1.0, hessian_floor=0.0, agreement=False)
        today_t, before_t = [], []
        for _ in range(args.runs):
            today_t += timed(lambda: fit_adapter(base, Xn, yn, outputs=outn, current_script=current), 1)[0]
            before_t += timed(lambda: fit_adapter(base, Xn, yn, outputs=outn, current_script=current,
                                                  config=before), 1)[0]
        retrain["issue21_vs_issue10_adapter_at_largest_size"] = {"today": stats(today_t),
                                                                  "issue10_config": stats(before_t)}
    if args.compare_base:
        retrain["compared_at_largest_size"] = compare_bases(base, LineClassifier.load(args.compare_base), X, y,
                                                            outputs, max(sizes), args.runs)
    script = five_k_script(X)
    labeled_X, labeled_y, labeled_out = tile(X, y, outputs, min(20_000, max(sizes)))
    adapter = fit_adapter(base, labeled_X, labeled_y, outputs=labeled_out)
    cached = base.base_outputs(script)

    def rerank():
        proba = adapter.predict_proba(script, outputs=cached)
        return np.argsort(-np.asarray(margin_scores(proba)), kind="stable")

    def full():
        proba = adapter.predict_proba(script)
        return np.argsort(-np.asarray(margin_scores(proba)), kind="stable")

    rerank_times, order = timed(rerank, args.runs)
    full_times, _ = timed(full, max(1, args.runs // 2))
    base_times, _ = timed(lambda: base.base_outputs(script), max(1, args.runs // 2))
    report = {
        "machine": {"cpus": os.cpu_count(), "threads_used": default_n_jobs(), "python": platform.python_version()},
        "lines_source": source,
        "base_model": base_source,
        "base_outputs_for_corpus_s": round(base_outputs_s, 2),
        "corpus_lines": int(len(X)),
        "adapter_retrain_vs_labeled_lines": retrain,
        "predict_rerank_5k_lines": {
            "cached_base_outputs": stats(rerank_times),
            "from_raw_lines_features_base_adapter": stats(full_times),
            "lines": int(len(script)),
            "ranked": int(len(order)),
            "base_outputs_features_and_base": stats(base_times),
            "sequence_labeler": sequence_latency(base, Path(args.base), script, args.runs),
        },
        "end_to_end_retrain_in_product": product_path(db_sizes, args.runs) if db_sizes else "skipped",
        "adapter_retrain_20k_beside_a_busy_xgboost_job": "skipped" if args.no_contention else contention(args.runs),
        "targets": {"retrain_p50_at_20k_s": 2.0, "predict_rerank_5k_s": 0.3},
        "labels": list(LABELS),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
