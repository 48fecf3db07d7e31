"""What overlap costs where people wait: a person's queue and the agreement report; prints JSON on stdout.

On the bundled sample screenplay (1,147 lines) with the overlap on every line (share 1, N people), every
line labeled by `--people` made-up annotators (each agreeing with a reference label `--agree` of the time):
- `queue_ms`: `build_queue(annotator=...)` for a new person (every line waits for them), overlap off vs on;
- `agreement_s`: `line_agreement` (κ per pair and class with 1000 bootstrap resamples, α with 200), which
  the Team page recomputes once per change of the labels.

    uv run python bench/team.py [--people 3] [--agree 0.8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _best_ms(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(1000 * min(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--agree", type=float, default=0.8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import numpy as np

    from labeling.accounts.access import single_user
    from labeling.ingest.pipeline import ingest_path
    from labeling.session.queue import build_queue
    from labeling.team.agreement import line_agreement
    from labeling.team.overlap import set_overlap
    from store import labels as label_store
    from store import scripts as script_store
    from store.db import open_db
    from store.types import LABELS

    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "team.db")
        script_id = ingest_path(db, REPO / "sample_scripts" / "tim_time.pdf").script_id
        ids = [int(i) for i in script_store.lines_frame(db, script_id)["line_id"]]
        rng = np.random.default_rng(0)
        truth = rng.choice(LABELS, len(ids))
        lead = single_user("bench")
        off_ms = _best_ms(lambda: build_queue(db, n=20, annotator="new", strategy="margin"), args.repeat)
        set_overlap(db, lead, share=1.0, annotators=args.people + 1)
        for person in range(args.people):
            given = np.where(rng.random(len(ids)) < args.agree, truth, rng.choice(LABELS, len(ids)))
            for label in LABELS:
                chosen = [i for i, g in zip(ids, given) if g == label]
                if chosen:
                    label_store.add_labels(db, chosen, label, annotator=f"p{person}")
        on_ms = _best_ms(lambda: build_queue(db, n=20, annotator="new", strategy="margin"), args.repeat)
        start = time.perf_counter()
        report = line_agreement(db)
        seconds = time.perf_counter() - start
        print(json.dumps({"lines": len(ids), "people": args.people, "agree": args.agree,
                          "queue_ms": {"overlap_off": off_ms, "overlap_on_all_lines_waiting": on_ms},
                          "agreement_s": round(seconds, 2), "lines_overlapped": report.lines_overlapped,
                          "kappa": report.kappa, "alpha": report.alpha,
                          "alpha_ci95": report.alpha_ci95}))


if __name__ == "__main__":
    main()
