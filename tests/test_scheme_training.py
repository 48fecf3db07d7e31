"""A project's classes in the model (the real worker, the real adapter): a new class is learned from labels
given through the CLI, and a merged scheme trains and scores in its own classes."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import SAMPLE_DIR
from store.db import open_db

pytestmark = pytest.mark.slow


@pytest.fixture
def sample(cli):
    [pdf] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.pdf"))
    return pdf


def _export(cli, path) -> pd.DataFrame:
    cli.json_lines("export", "--format", "csv", "--out", str(path))
    return pd.read_csv(path, keep_default_na=False).set_index("line_id")


def test_a_new_class_is_learned_end_to_end(cli, sample, tmp_path):
    """Sound effects (CLICK., CLUNK., TICK.) are action to the shipped model; a project adds `sound`,
    labels five of them through the CLI, retrains, and the others are suggested as sound."""
    before = _export(cli, tmp_path / "before.csv")
    [scheme] = cli.json_lines("scheme", "add", "sound", "--key", "k")
    assert scheme["retrain_needed"]
    db = open_db(cli.db_file)
    sounds = {text: [int(r[0]) for r in db.execute("SELECT line_id FROM lines WHERE text = ? ORDER BY line_no",
                                                    [text])] for text in ("CLICK.", "CLUNK.", "TICK.")}
    assert len(sounds["CLICK."]) == 6 and (before.loc[sounds["CLICK."], "label"] == "action").all()
    taught = sounds["CLICK."][:4] + sounds["CLUNK."]
    for line_id in taught:
        cli.json_lines("label", str(line_id), "sound", "--annotator", "ana")
    [run] = cli.json_lines("train", "--wait", "--timeout", "900")
    assert run["status"] == "done" and run["version"] >= 1
    assert not cli.json_lines("scheme", "show")[0]["retrain_needed"]
    after = _export(cli, tmp_path / "after.csv")
    others = sounds["CLICK."][4:] + sounds["TICK."]
    assert (after.loc[others, "label"] == "sound").all(), after.loc[others, ["label", "confidence"]]
    assert (after.loc[others, "label_source"] == "model").all()
    assert set(after.loc[taught, "label_source"]) == {"human"}
    # the rest of the script keeps its suggestions
    rest = after.index.difference(taught + others)
    changed = (after.loc[rest, "label"] != before.loc[rest, "label"]).mean()
    assert changed <= 0.01, changed
    # the model's classes are the project's: stored with its predictions
    classes = db.execute("SELECT DISTINCT classes FROM predictions WHERE version = ?", [run["version"]]).fetchall()
    assert [c[0] for c in classes] == ['["scene_heading", "action", "character", "dialogue", "parenthetical", '
                                       '"transition", "other", "sound"]']


def test_a_seed_scheme_project_trains_and_scores_in_s_c_d_o(cli, sample, tmp_path):
    cli.json_lines("scheme", "use", "seed")
    items = cli.json_lines("queue", "--n", "12", "--strategy", "random", "--seed", "3")
    assert {i["suggestion"] for i in items} <= {"S", "C", "D", "O"}
    gold = _export(cli, tmp_path / "seed.csv")["label"]
    for item in items:
        cli.json_lines("label", str(item["line_id"]), gold[item["line_id"]], "--annotator", "ana")
    [run] = cli.json_lines("train", "--wait", "--timeout", "900")
    assert run["status"] == "done"
    db = open_db(cli.db_file)
    predicted = {r[0] for r in db.execute("SELECT DISTINCT label FROM predictions WHERE version = ?", [run["version"]])}
    assert predicted <= {"S", "C", "D", "O"} and {"S", "C", "D"} <= predicted
    # people's next labels are scored in the project's classes
    nxt = cli.json_lines("queue", "--n", "5", "--strategy", "random", "--seed", "4")
    for item in nxt:
        cli.json_lines("label", str(item["line_id"]), item["suggestion"], "--annotator", "ana")
    from labeling.training.lines import progressive_metrics

    metrics = progressive_metrics(db)
    assert list(metrics["suggestion_eval"]["project"]["labels"]) == ["S", "C", "D", "O"]
    assert metrics["suggestion_accuracy"] == 1.0 and metrics["suggestion_n"] == 5
