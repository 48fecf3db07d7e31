"""Complexity training from the database: ratings in, compared models and stored predictions out."""

from __future__ import annotations

import pytest

from conftest import SAMPLE_DIR, db_dump


@pytest.fixture
def rated(cli):
    [script] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    sequences = cli.json_lines("sequences", "--script", str(script["script_id"]))
    assert len(sequences) >= 20
    from store.db import open_db
    from labeling.training.complexity import sequence_docs

    docs = {d.sequence_id: d for d in sequence_docs(open_db(cli.db_file))}
    # Planted signal: complexity grows with the number of distinct characters on screen.
    for seq in sequences:
        chars = docs[seq["sequence_id"]].counts["distinct_characters"]
        value = 1 if chars == 0 else 2 if chars == 1 else 3 if chars == 2 else 4
        cli.json_lines("rate", str(seq["sequence_id"]), str(value), "--department", "fx", "--annotator", "lead")
    return script, sequences


def test_train_complexity_prints_every_model_and_stores_predictions(cli, rated):
    script, sequences = rated
    [out] = cli.json_lines("train", "--target", "complexity", "--department", "fx", "--models", "baselines",
                           "--wait", "--timeout", "300")
    assert out["status"] == "done" and out["department"] == "fx" and out["n_sequences"] == len(sequences)
    assert {"majority", "logistic", "ordinal_logistic", "xgboost"} <= set(out["cv"])
    for scores in out["cv"].values():
        assert {"accuracy", "mae", "qwk", "ci95"} <= set(scores)
        lo, hi = scores["ci95"]["accuracy"]
        assert lo <= scores["accuracy"] <= hi
    assert out["cv"]["majority"]["qwk"] == pytest.approx(0.0, abs=1e-9)
    # the planted signal (ratings follow the characters on screen) must be found: the winner beats the
    # majority baseline clearly, and the verdict says so
    assert out["winner"] != "majority" and "beats the majority baseline" in out["verdict"], out["verdict"]
    assert out["cv"][out["winner"]]["qwk"] >= 0.3, out["cv"]
    assert out["cv"][out["winner"]]["accuracy"] > out["cv"]["majority"]["accuracy"], out["cv"]
    from store.db import open_db
    from store.sequences import latest_sequence_predictions

    preds = latest_sequence_predictions(open_db(cli.db_file), department="fx")
    assert len(preds) == len(sequences)
    assert preds["uncertainty"].between(0, 1).all() and preds["value"].between(1, 5).all()


def test_too_few_ratings_fail_the_run_with_a_message(cli):
    [script] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    seq = cli.json_lines("sequences")[0]
    cli.json_lines("rate", str(seq["sequence_id"]), "3")
    result = cli("train", "--target", "complexity", "--models", "baselines", "--wait", "--timeout", "120")
    assert result.exit_code == 1 and "failed" in result.stderr and "rat" in result.stderr.lower()


@pytest.mark.parametrize("args, message", [
    (["7"], "between 1 and 5"),
    (["3", "--department", "sound"], "unknown department"),
])
def test_bad_ratings_are_refused(cli, args, message):
    cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    seq = cli.json_lines("sequences")[0]
    before = db_dump(cli.db_file)
    result = cli("rate", str(seq["sequence_id"]), *args)
    assert result.exit_code == 1 and message in result.stderr
    assert db_dump(cli.db_file) == before


def test_unknown_sequence_is_refused(cli):
    cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    result = cli("rate", "99999", "3")
    assert result.exit_code == 1 and "no sequence with id 99999" in result.stderr


def test_tags_train_one_vs_rest_and_predict_every_sequence(cli):
    cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    sequences = cli.json_lines("sequences")
    from store.db import open_db
    from labeling.training.complexity import sequence_docs

    docs = {d.sequence_id: d for d in sequence_docs(open_db(cli.db_file))}
    for seq in sequences:
        text = " ".join(docs[seq["sequence_id"]].descriptions).lower()
        present = [t for t, words in (("water", ("water", "rain", "pool", "sea")), ("crowd", ("crowd", "everyone")))
                   if any(w in text for w in words)]
        if present:
            cli.json_lines("tag", str(seq["sequence_id"]), *present)
        absent = [t for t in ("water", "crowd") if t not in present]
        if absent:
            cli.json_lines("tag", str(seq["sequence_id"]), *absent, "--absent")
    [out] = cli.json_lines("train", "--target", "tags", "--models", "baselines", "--wait", "--timeout", "300")
    assert out["status"] == "done" and out["n_sequences"] == len(sequences)
    assert "roc_auc" in out["cv"]["logistic"] and out["winner"] in out["cv"]
    from store.sequences import latest_sequence_predictions

    for tag_name in out["tags"]:
        preds = latest_sequence_predictions(open_db(cli.db_file), department=f"tag:{tag_name}")
        assert len(preds) == len(sequences) and preds["expected"].between(0, 1).all()


def test_ratings_through_the_cli_start_the_departments_retrain_as_the_page_does(db_path):
    """`rate` does what a rating on the Sequences page does: once a department has enough new ratings (here
    every 5, and at least 8 with two values to learn from) its complexity models retrain in the background."""
    from conftest import Cli
    from labeling.training.runs import wait_for_run
    from store.db import open_db

    cli = Cli(db_path, rate_retrain_every=5)
    [script] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    sequences = cli.json_lines("sequences", "--script", str(script["script_id"]))[:8]
    printed = [cli.json_lines("rate", str(seq["sequence_id"]), str(1 + i % 3), "--department", "fx")[0]
               for i, seq in enumerate(sequences)]
    # 5 new ratings, but too few to learn from until the 8th: no run that could only fail
    assert [p["retrain_run"] for p in printed[:7]] == [None] * 7
    run_id = printed[7]["retrain_run"]
    assert isinstance(run_id, int)
    run = wait_for_run(open_db(db_path), run_id, timeout_s=300)
    assert run["status"] == "done" and run["department"] == "fx" and run["trigger"] == "auto-ratings"


@pytest.mark.parametrize("signal", [True, False], ids=["planted signal", "ratings unrelated to the text"])
def test_the_sequences_page_says_when_predictions_are_no_better_than_the_usual_rating(cli, db_path, monkeypatch,
                                                                                      signal):
    """The current version is the CV winner either way; when it does not reliably beat always answering the
    commonest rating, the page a lead rates on says so beside the predicted rating."""
    from streamlit.testing.v1 import AppTest

    from conftest import REPO
    from labeling.training.complexity import sequence_docs
    from store.db import open_db

    [script] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    sequences = cli.json_lines("sequences", "--script", str(script["script_id"]))
    docs = {d.sequence_id: d for d in sequence_docs(open_db(cli.db_file))}
    for i, seq in enumerate(sequences):
        chars = docs[seq["sequence_id"]].counts["distinct_characters"]
        value = (1 if chars == 0 else 2 if chars == 1 else 3 if chars == 2 else 4) if signal else 2 + (i * 7 % 3 == 0)
        cli.json_lines("rate", str(seq["sequence_id"]), str(value), "--annotator", "lead")
    [out] = cli.json_lines("train", "--target", "complexity", "--models", "baselines", "--wait", "--timeout", "300")
    assert out["beats_majority"] is signal, out["verdict"]
    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.query_params["annotator"] = "lead"
    at.run()
    at.switch_page("app_pages/sequences.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m for m in at.metric if m.label == "Predicted"][0].value != "—"
    caveats = [c.value for c in at.caption if "better than always guessing" in c.value]
    assert bool(caveats) is not signal, caveats
