"""The line model in the loop: suggestions at first start, retrain from labels, bad states handled."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from conftest import SAMPLE_DIR, db_dump
from store.db import open_db


@pytest.fixture
def sample(cli):
    [pdf] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.pdf"))
    return pdf


def _gold(cli):
    """The sample's true labels, from its own Fountain source, keyed by line text (for a simulated annotator)."""
    from labeling.ingest.formats.fountain import parse_fountain

    return {line.text: line.imported_label for line in parse_fountain((SAMPLE_DIR / "tim_time.fountain").read_text())}


def test_sample_has_suggestions_before_any_label(cli, sample, tmp_path):
    out = tmp_path / "s.csv"
    cli("export", "--format", "csv", "--out", str(out))
    import pandas as pd

    frame = pd.read_csv(out)
    assert set(frame["label_source"]) == {"model", "rule"}  # nobody labeled: INT./EXT. by rule, the rest the model
    assert (frame.loc[frame["label_source"] == "rule", "label"] == "scene_heading").all()
    gold = _gold(cli)
    known = frame[frame["text"].isin(gold)]
    accuracy = (known["label"] == known["text"].map(gold)).mean()
    assert len(known) > 300 and accuracy > 0.9, accuracy


def test_queue_ranks_uncertain_lines_first(cli, sample):
    items = cli.json_lines("queue", "--n", "30", "--random-share", "0", "--strategy", "least_confidence")
    confidences = [i["confidence"] for i in items]
    assert all(c is not None for c in confidences)
    assert confidences == sorted(confidences) or confidences[0] <= min(confidences[1:]) + 1e-6
    assert len({i["line_id"] for i in items}) == 30


def test_label_then_train_makes_a_new_current_version(cli, sample):
    gold = _gold(cli)
    items = cli.json_lines("queue", "--n", "15", "--seed", "0")
    labeled = 0
    for item in items:
        if item["text"] in gold:
            cli.json_lines("label", str(item["line_id"]), gold[item["text"]], "--annotator", "ana")
            labeled += 1
    assert labeled >= 5
    [run] = cli.json_lines("train", "--wait", "--timeout", "600")
    assert run["status"] == "done" and run["version"] >= 1
    assert run["n_labels"] == labeled and run["n_labeled_lines"] >= labeled
    assert 0 <= run["suggestion_accuracy"] <= 1 and run["suggestion_n"] == labeled
    db = open_db(cli.db_file)
    versions = {r[0] for r in db.execute("SELECT DISTINCT version FROM predictions")}
    assert run["version"] in versions
    # every human label is still there and wins over the model in the export
    assert db.execute("SELECT COUNT(*) FROM label_events WHERE source='human'").fetchone()[0] == labeled


def test_training_without_labels_fails_clearly_and_one_labeled_class_is_enough(cli, sample):
    result = cli("train", "--wait", "--timeout", "300")
    assert result.exit_code == 1 and "no labeled lines" in result.stderr
    db = open_db(cli.db_file)
    assert db.execute("SELECT COUNT(*) FROM model_versions").fetchone()[0] == 0
    # A person who only confirms dialogue: the base supplies every other class, so the retrain runs.
    gold = _gold(cli)
    items = cli.json_lines("queue", "--n", "400", "--strategy", "random", "--seed", "1")
    dialogue = [i["line_id"] for i in items if gold.get(i["text"]) == "dialogue"][:6]
    assert len(dialogue) == 6
    for line_id in dialogue:
        cli.json_lines("label", str(line_id), "dialogue")
    result = cli("train", "--wait", "--timeout", "300")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["version"] == 1
    predicted = {r[0] for r in db.execute(
        "SELECT label FROM predictions WHERE version = 1").fetchall()}
    assert {"dialogue", "character", "action", "scene_heading"} <= predicted


def test_corrupt_model_file_keeps_previous_version(cli, sample):
    items = cli.json_lines("queue", "--n", "12", "--seed", "2")
    gold = _gold(cli)
    for item in items:
        cli.json_lines("label", str(item["line_id"]), gold.get(item["text"], "other"))
    [run] = cli.json_lines("train", "--wait")
    db = open_db(cli.db_file)
    path = db.execute("SELECT path FROM model_versions WHERE version = ?", [run["version"]]).fetchone()[0]
    (open(os.path.join(path, "adapter.ubj"), "wb")).write(b"\x00garbage")
    [row] = cli.json_lines("predict")
    assert row["version"] == 0 and "could not be loaded" in row["warning"]


def test_killed_training_run_keeps_model_and_labels(cli, sample):
    items = cli.json_lines("queue", "--n", "12", "--seed", "3")
    gold = _gold(cli)
    for item in items:
        cli.json_lines("label", str(item["line_id"]), gold.get(item["text"], "other"))
    before_labels = db_dump(cli.db_file)
    before_labels = [r for r in before_labels if "label_events" in r]
    [queued] = cli.json_lines("train")
    db = open_db(cli.db_file)
    deadline = time.monotonic() + 30
    pid = None
    while time.monotonic() < deadline and not pid:
        pid = db.execute("SELECT pid FROM training_runs WHERE run_id = ?", [queued["run_id"]]).fetchone()[0]
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    from labeling.training.runs import TrainingError, wait_for_run

    with pytest.raises(TrainingError, match="stopped before finishing|failed"):
        wait_for_run(db, queued["run_id"], timeout_s=60)
    assert db.execute("SELECT COUNT(*) FROM model_versions").fetchone()[0] == 0
    after = [r for r in db_dump(cli.db_file) if "label_events" in r]
    assert after == before_labels


def test_evaluate_splits_by_script(cli, sample):
    cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))  # imported labels: a second labeled script
    gold = _gold(cli)
    for item in cli.json_lines("queue", "--script", str(sample["script_id"]), "--n", "20", "--seed", "4"):
        if item["text"] in gold:
            cli.json_lines("label", str(item["line_id"]), gold[item["text"]])
    [report] = cli.json_lines("evaluate")
    assert report["split"] == "by script" and report["scripts"] == 2
    for key in ("base", "adapted"):
        assert {"S", "C", "D", "O"} <= {c["label"] for c in report[key]["seed"]["per_class"]}
        # more than shapes: the models must beat always answering the most common label, by far
        support = [c["support"] for c in report[key]["full"]["per_class"]]
        majority = max(support) / sum(support)
        assert report[key]["full"]["accuracy"] > majority + 0.3, (key, report[key]["full"]["accuracy"], majority)


def test_cached_base_outputs_of_another_base_model_are_removed(cli, sample, tmp_path):
    from store.db import data_dir

    db = open_db(cli.db_file)
    cache = data_dir(db) / "cache"
    current = sorted(cache.glob("base-*.npz"))
    assert current  # ingest cached the shipped model's outputs for the sample
    stale = cache / "base-000000000000-0123456789abcdef.npz"
    stale.write_bytes(b"outputs of a base model replaced since")
    for path in current:
        path.unlink()  # force a recompute, as a changed script would
    cli.json_lines("predict")
    assert not stale.exists()
    assert sorted(cache.glob("base-*.npz")) == current


def test_after_a_retrain_the_labeled_script_first_then_the_library_until_superseded(cli, sample, tmp_path):
    from conftest import make_text_pdf
    from labeling.training.lines import repredict_library, train_line_version
    from store import labels as label_store
    from store import models as model_store

    [other] = cli.json_lines("ingest", str(make_text_pdf(tmp_path / "other.pdf", pages=2)))
    gold = _gold(cli)
    db = open_db(cli.db_file)
    for item in cli.json_lines("queue", "--script", str(sample["script_id"]), "--n", "15", "--seed", "0"):
        if item["text"] in gold:
            label_store.add_label(db, item["line_id"], gold[item["text"]], annotator="ana")
    version, _, _ = train_line_version(db, predict_all=False)

    def versions_of(script_id):
        return {r[0] for r in db.execute("SELECT DISTINCT p.version FROM predictions p JOIN lines l USING (line_id) "
                                         "WHERE l.script_id = ?", [script_id])}

    assert version in versions_of(sample["script_id"])  # the script being labeled: at once
    assert version not in versions_of(other["script_id"])  # the rest: in the background
    assert model_store.stale_prediction_scripts(db, version) == [other["script_id"]]
    seen = []
    result = repredict_library(db, version, progress=lambda done, total: seen.append((done, total)))
    assert result == {"done": 1, "total": 1, "superseded": False} and seen == [(1, 1)]
    assert version in versions_of(other["script_id"])
    newer, _, _ = train_line_version(db, predict_all=False)
    assert repredict_library(db, version)["superseded"] is True  # a newer model takes over
    assert newer != version
