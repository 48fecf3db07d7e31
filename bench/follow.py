"""Does the model follow a team's convention? (issue 21) Consistent corrections vs sparse dissent.

    uv run python bench/follow.py [--work DIR] [--seed 0] [--ks 5 10 20]

Scripts: TRIPOD screenplays (../shared/data/tripod, plain text, IMSDb style), which the shipped base
model never saw (its manifest lists MovieParse, the studio PDFs and the Fountain samples only). Each
is ingested once through the product's ingest (`ingest_path`, version-0 suggestions included) into a
template database; every scenario then runs on a fresh copy of it.

A *convention shift* is a kind of line (a text pattern, among the lines the shipped model suggests
one class for) that a team labels otherwise: wrylies → dialogue, shot lines → scene_heading,
(MORE)/(CONT'D)/CONTINUED → dialogue (the shipped model already calls every such line of these
scripts `other`, the issue's direction, so the bench runs the reverse: a team keeping them with the
speech they continue), transitions → action, and shot lines as a new class `shot`.
For k = 5, 10, 20 the team relabels k random lines of the kind and confirms 10 random other lines
(`record_label`, what `scriptlabel label` does), then one retrain runs (`train_line_version`, what
the worker runs after `train` or the automatic trigger) and the stored suggestions are read back:

- `follow`: share of the kind's remaining (unlabeled) lines now suggested as the team's class;
- `others_changed`: share of every other unlabeled line of the script whose suggestion changed;
- `others_changed_by_labels`: the same against an adapter with no trees (the base's probabilities
  through the adapter's calibration, a temperature, where version 0 shows them through the base's own
  calibration, which moves a few near-ties on any first retrain whatever the labels);
- `promotion`: whether the new version became current.

The control labels 10 lines of the kind, 8 as the shipped model suggests and 2 the team's way:
`control_flips` is the share of the kind's remaining lines that changed to the team's class.
The new class goes through the adapter's class-set API directly (`fit_adapter(scheme=...)` on the
product's own training snapshot) until the store accepts a project's classes (i21-scheme); `f1` is
the new class's F1 on the script's remaining lines. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()

import numpy as np  # noqa: E402

from labeling.ingest.pipeline import ingest_path  # noqa: E402
from labeling.session.record import record_label  # noqa: E402
from labeling.training import lines as line_training  # noqa: E402
from models.lines.classifier import ClassScheme, fit_adapter  # noqa: E402
from store import models as model_store  # noqa: E402
from store import scripts as script_store  # noqa: E402
from store.connection import data_dir  # noqa: E402
from store.db import open_db  # noqa: E402
from store.types import LABELS  # noqa: E402

DATA = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
TRIPOD = DATA / "tripod" / "screenplays"
SCRIPTS = {"twins": "Twins (1988 film)", "lambs": "The Silence of the Lambs (film)",
           "time-machine": "The Time Machine (1960 film)"}
MORE = re.compile(r"^(\((MORE|CONT'D|CONTINUED)\)|CONTINUED:?|\(CONTINUED\):?)$")


@dataclass(frozen=True)
class Shift:
    name: str
    script: str
    target: str
    pattern: str  # what lines of the kind look like (for the report)
    new_class: bool = False

    def of_kind(self, text: str, suggested: str) -> bool:
        text = text.strip()
        if self.name == "wrylies_to_dialogue":
            return suggested == "parenthetical" and text.startswith("(") and not MORE.match(text)
        if self.name in ("shots_to_scene_heading", "shot_new_class"):
            # in this script every short all-capitals line the model calls action is a shot heading
            # ("ANGLE ON THE OFFICE DOOR", "HER POV", "CLARICE", "IN FLASHBACK")
            letters = re.sub(r"[^A-Za-z]", "", text)
            return suggested == "action" and letters.isupper() and len(text) <= 60
        if self.name == "more_contd_to_dialogue":
            return bool(MORE.match(text)) and suggested != "dialogue"
        if self.name == "transitions_to_action":
            return suggested == "transition"
        raise ValueError(self.name)


SHIFTS = [
    Shift("wrylies_to_dialogue", "twins", "dialogue", "(wryly) lines the model calls parenthetical"),
    Shift("shots_to_scene_heading", "lambs", "scene_heading", "shot headings: short all-capitals lines called action (ANGLE ON ..., HER POV, CLARICE)"),
    Shift("more_contd_to_dialogue", "twins", "dialogue", "(MORE) / (CONT'D) / CONTINUED lines"),
    Shift("transitions_to_action", "lambs", "action", "lines the model calls transition"),
    Shift("shot_new_class", "lambs", "shot", "the same shot headings as a new class `shot`",
          new_class=True),
]


def prepare(work: Path) -> tuple[Path, dict[str, int]]:
    """The template database: the scripts ingested once, with the shipped model's suggestions."""
    path = work / "template" / "scriptlabel.db"
    ids_file = work / "template" / "scripts.json"
    if ids_file.exists():
        return path, json.loads(ids_file.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    db = open_db(path)
    ids = {}
    for slug, folder in SCRIPTS.items():
        source = TRIPOD / folder / f"{folder}_script.txt"
        if not source.exists():
            sys.exit(f"{source} is missing: this bench needs ../shared/data/tripod (set SCRIPTLABEL_SHARED_DATA)")
        result = ingest_path(db, source, title=slug, ocr="never")
        ids[slug] = int(result.script_id)
    db.conn.close()
    ids_file.write_text(json.dumps(ids))
    return path, ids


def fresh_copy(template: Path, work: Path, name: str):
    target = work / name / "scriptlabel.db"
    if target.parent.exists():
        shutil.rmtree(target.parent)
    target.parent.mkdir(parents=True)
    shutil.copy(template, target)
    media = Path(str(template) + "-media")
    if media.exists():
        shutil.copytree(media, Path(str(target) + "-media"))
    return open_db(target)


def suggestions(db, script_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = script_store.lines_frame(db, script_id)
    latest = model_store.latest_predictions(db, script_id).set_index("line_id")
    ids = frame["line_id"].to_numpy()
    return ids, frame["text"].astype(str).to_numpy(), latest.loc[ids, "label"].to_numpy(dtype=object)


def no_tree_suggestions(db, script_id: int, ids: np.ndarray) -> np.ndarray:
    """What a version with no trees suggests: the base through the adapter's calibration."""
    from models.lines.classifier import AdapterConfig, BoosterParams

    script = line_training.script_frame(db, script_id)
    outputs = line_training.base_outputs(db, script)
    y = np.array(["dialogue"] + [None] * (len(script) - 1), dtype=object)
    adapter = fit_adapter(line_training.load_base(), script, y, outputs=outputs,
                          config=AdapterConfig(booster=BoosterParams(n_estimators=0)))
    proba = line_training.CurrentLineModel(version=1, adapter=adapter).proba_from_outputs(script, outputs)
    pred = np.array(LABELS, dtype=object)[proba.argmax(axis=1)]
    position = {int(i): n for n, i in enumerate(script["line_id"].to_numpy())}
    return np.array([pred[position[int(i)]] for i in ids], dtype=object)


def run_scenario(template: Path, work: Path, script_id: int, shift: Shift, *, corrections: list[int],
                 confirmations: list[int], agreeing: list[int], name: str, before: np.ndarray,
                 ids: np.ndarray, kind: np.ndarray, no_trees: np.ndarray) -> dict:
    db = fresh_copy(template, work, name)
    position = {int(i): n for n, i in enumerate(ids)}
    for line_id in confirmations + agreeing:
        record_label(db, line_id, str(before[position[line_id]]), annotator="bench")
    stored_target = "scene_heading" if shift.new_class else shift.target  # the store speaks built-in labels
    for line_id in corrections:
        record_label(db, line_id, stored_target, annotator="bench")
    started = time.perf_counter()
    if shift.new_class:
        after, promotion = _new_class_version(db, script_id, corrections, ids)
    else:
        version, _, metrics = line_training.train_line_version(db, predict_all=False)
        promotion = metrics.get("promotion", {}).get("decision")
        _, _, after = suggestions(db, script_id)
    seconds = time.perf_counter() - started
    labeled = np.isin(ids, corrections + confirmations + agreeing)
    remaining = kind & ~labeled
    others = ~kind & ~labeled
    out = {"labels": int(labeled.sum()), "remaining_of_kind": int(remaining.sum()),
           "follow": round(float((after[remaining] == shift.target).mean()), 4),
           "others_changed": round(float((after[others] != before[others]).mean()), 5),
           "others_changed_by_labels": round(float((after[others] != no_trees[others]).mean()), 5),
           "promotion": promotion, "retrain_s": round(seconds, 2)}
    if shift.new_class:
        truth, pred = kind[~labeled], after[~labeled] == shift.target
        tp = float((truth & pred).sum())
        out["f1"] = round(2 * tp / max(truth.sum() + pred.sum(), 1), 4)
    db.conn.close()
    shutil.rmtree(work / name, ignore_errors=True)
    return out


def _new_class_version(db, script_id: int, corrections: list[int], ids: np.ndarray) -> tuple[np.ndarray, str]:
    """A version over the built-in labels plus `shot`, trained on the product's snapshot with the
    corrected lines labeled `shot` (the store cannot hold a project class until i21-scheme lands)."""
    frame, y, _ = line_training.labeled_snapshot(db)
    y = y.copy()
    y[np.isin(frame["line_id"].to_numpy(), corrections)] = "shot"
    scheme = ClassScheme(classes=LABELS + ("shot",))
    outputs = line_training._outputs_for(db, frame)
    adapter = fit_adapter(line_training.load_base(), frame, y, outputs=outputs, current_script=script_id,
                          scheme=scheme)
    model = line_training.CurrentLineModel(version=1, adapter=adapter)
    script = line_training.script_frame(db, script_id)
    proba = model.predict_proba(db, script)
    position = {int(i): n for n, i in enumerate(script["line_id"].to_numpy())}
    pred = np.array(model.classes, dtype=object)[proba.argmax(axis=1)]
    return np.array([pred[position[int(i)]] for i in ids], dtype=object), "n/a (adapter API)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the databases (kept: the template is reused)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--shifts", nargs="+", default=[s.name for s in SHIFTS])
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="follow-"))
    template, script_ids = prepare(work)
    db = open_db(template)
    results = []
    for shift in [s for s in SHIFTS if s.name in args.shifts]:
        sid = script_ids[shift.script]
        ids, texts, before = suggestions(db, sid)
        kind = np.array([shift.of_kind(t, s) for t, s in zip(texts, before)])
        no_trees = no_tree_suggestions(db, sid, ids)
        rng = np.random.default_rng(args.seed)
        members = rng.permutation(np.flatnonzero(kind))
        outsiders = rng.permutation(np.flatnonzero(~kind))
        confirm = [int(ids[i]) for i in outsiders[:10]]
        row = {"shift": shift.name, "script": shift.script, "kind": shift.pattern, "target": shift.target,
               "lines_of_kind": int(kind.sum()), "script_lines": int(len(ids)), "by_k": {}}
        for k in args.ks:
            if len(members) < k + 5:
                row["by_k"][str(k)] = {"skipped": f"only {len(members)} lines of this kind"}
                continue
            row["by_k"][str(k)] = run_scenario(
                template, work, sid, shift, corrections=[int(ids[i]) for i in members[:k]], confirmations=confirm,
                agreeing=[], name=f"{shift.name}-{k}", before=before, ids=ids, kind=kind,
                no_trees=no_trees)
        if not shift.new_class and len(members) >= 15:
            control = run_scenario(
                template, work, sid, shift, corrections=[int(ids[i]) for i in members[:2]], confirmations=[],
                agreeing=[int(ids[i]) for i in members[2:10]], name=f"{shift.name}-control", before=before,
                ids=ids, kind=kind, no_trees=no_trees)
            control["control_flips"] = control.pop("follow")
            row["control_2_of_10"] = control
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    summary = _summary(results)
    print(json.dumps({"scripts": {k: SCRIPTS[k] for k in SCRIPTS}, "base": str(line_training.base_dir()),
                      "seed": args.seed, "shifts": results, "summary": summary}, indent=1))


def _summary(results: list[dict]) -> dict:
    def pick(k: str, key: str) -> list[float]:
        return [r["by_k"][k][key] for r in results if k in r["by_k"] and key in r["by_k"][k]]

    out = {}
    for k in ("5", "10", "20"):
        follow = pick(k, "follow")
        if follow:
            out[f"follow_after_{k}"] = {"min": min(follow), "mean": round(float(np.mean(follow)), 4)}
            out[f"others_changed_after_{k}"] = {"max": max(pick(k, "others_changed")),
                                                "by_labels_max": max(pick(k, "others_changed_by_labels"))}
    flips = [r["control_2_of_10"]["control_flips"] for r in results if "control_2_of_10" in r]
    if flips:
        out["control_flips"] = {"max": max(flips), "mean": round(float(np.mean(flips)), 4)}
    f1 = [r["by_k"]["20"]["f1"] for r in results if "20" in r["by_k"] and "f1" in r["by_k"]["20"]]
    if f1:
        out["new_class_f1_after_20"] = min(f1)
    out["targets"] = {"follow_after_10": 0.9, "follow_after_5": 0.7, "others_changed": 0.005,
                      "control_flips": 0.1, "new_class_f1_after_20": 0.9}
    return out


if __name__ == "__main__":
    main()
