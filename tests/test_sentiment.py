"""The sentiment and affect block (models/complexity/sentiment.py) and the models that take it."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from models.complexity import sentiment
from models.complexity.baselines import TfidfLogisticClassifier
from models.complexity.data import SequenceDoc, docs_from_labeled_lines
from models.complexity.evaluation import compare_models, default_factories
from models.complexity.sentiment import (
    SENTIMENT_KEYS, nrc_counts, sentiment_features, sentiment_matrix, vader_scores,
)


@pytest.mark.parametrize("line, sign", [
    ("I love you. This is the happiest day of my life!", 1),
    ("What a wonderful, beautiful surprise. Thank you!", 1),
    ("I hate you. You killed him, you horrible monster.", -1),
    ("She is dead. Everything is ruined and it is my fault.", -1),
])
def test_vader_gives_clear_lines_their_sign(line, sign):
    scores = vader_scores(line)
    assert np.sign(scores["compound"]) == sign and abs(scores["compound"]) > 0.5
    assert scores["pos" if sign > 0 else "neg"] > scores["neg" if sign > 0 else "pos"]
    assert scores["pos"] + scores["neg"] + scores["neu"] == pytest.approx(1.0, abs=0.01)


def test_nrc_counts_the_affects_of_lexicon_words():
    counts = nrc_counts("Murder! The screams of terror.")
    # murder: anger, disgust, fear, negative, sadness, surprise; terror: fear, negative; scream(s) likewise
    assert counts["fear"] >= 3 and counts["negative"] >= 3 and counts["anger"] >= 1
    assert counts["joy"] == 0 and counts["trust"] == 0
    assert nrc_counts("table chair window") == {a: 0 for a in sentiment.NRC_AFFECTS}
    happy = nrc_counts("joy and love and a beautiful wedding")
    assert happy["joy"] >= 3 and happy["positive"] >= 3 and happy["negative"] == 0


def test_the_block_reads_components_and_their_trajectory():
    doc = SequenceDoc(1, descriptions=["A quiet garden.", "Children laugh and play in the sun.",
                                       "A scream. Blood on the grass.", "The murdered body of a child."],
                      dialogue=["Thank you, I love it!", "Wonderful.", "No... he is dead. Why?"],
                      characters=["ANNA", "BEN"])
    values = sentiment_features(doc)
    assert list(values) == list(SENTIMENT_KEYS) and len(values) == 38
    assert values["descriptions_compound_first"] > 0 > values["descriptions_compound_last"]
    assert values["descriptions_compound_slope"] < 0 and values["dialogue_compound_slope"] < 0
    assert values["descriptions_nrc_fear"] > 0 and values["dialogue_nrc_joy"] > 0
    assert values["descriptions_polarity_last"] < values["descriptions_polarity_first"]
    empty = sentiment_features(SequenceDoc(2, descriptions=["INT. ROOM - DAY"], dialogue=[], characters=[]))
    assert all(v == 0 for k, v in empty.items() if k.startswith("dialogue_"))


def test_the_block_computes_with_the_network_unavailable(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network unavailable in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for cached in (sentiment._vader, sentiment._nrc_lexicon, sentiment._line_row):
        cached.cache_clear()  # load both lexicons again, now with no network
    block = sentiment_matrix([SequenceDoc(1, ["The monster attacks."], ["I love you."], ["ANNA"])])
    assert block.shape == (1, len(SENTIMENT_KEYS)) and np.abs(block).sum() > 0


# -- a planted signal only the block carries ----------------------------------------------------
_UP = ["Everything is lost and I am afraid.", "It hurts, it is terrible.",
       "Wait. Maybe there is hope.", "We did it! This is wonderful, I love you."]


def _trajectory_docs(n: int, seed: int = 0) -> tuple[list[SequenceDoc], np.ndarray]:
    """Scenes whose rating is the direction of their mood: the same lines, in a different order.

    Every scene says the same four lines plus neutral filler; a rising scene (sad to happy) is rated 1,
    a falling one (happy to sad) 5, one whose lines are shuffled 3. Word counts cannot tell them apart:
    only the order of the feelings, which the block's trajectory measures.
    """
    rng = np.random.default_rng(seed)
    filler = ["He opens the door.", "They walk to the car.", "The clock on the wall.", "She sits down."]
    rows, ratings = [], []
    for seq in range(n):
        kind = seq % 3
        lines = list(_UP) if kind == 0 else list(reversed(_UP)) if kind == 2 else list(rng.permutation(_UP))
        rows.append((seq, "scene_heading", f"INT. HOUSE {seq} - DAY", 1))
        for line in lines:
            rows.append((seq, "action", str(rng.choice(filler)), 1))
            rows.append((seq, "character", "ANNA", 1))
            rows.append((seq, "dialogue", line, 1))
        ratings.append((1, 3, 5)[kind])
    return docs_from_labeled_lines(rows), np.array(ratings)


def test_a_signal_in_the_mood_is_learned_with_the_block_and_not_without():
    docs, y = _trajectory_docs(60)
    factories = {"logistic": TfidfLogisticClassifier,
                 "logistic+sentiment": lambda: TfidfLogisticClassifier(use_sentiment=True)}
    result = compare_models(docs, y, factories, n_splits=3, n_boot=200)
    qwk = {name: s.metrics["qwk"] for name, s in result.cv.items()}
    assert qwk["logistic+sentiment"] >= qwk["majority"] + 0.5, qwk
    assert qwk["logistic+sentiment"] >= qwk["logistic"] + 0.3, qwk
    assert result.winner == "logistic+sentiment", result.verdict


def test_the_model_set_lists_each_capable_model_with_and_without_the_block():
    both = default_factories()
    assert {"logistic", "logistic+sentiment", "xgboost", "xgboost+sentiment", "ordinal_logistic",
            "ordinal_logistic+sentiment", "bilstm_combined", "bilstm_combined+sentiment",
            "bilstm_descriptions", "majority"} <= set(both)
    assert not any(name.endswith("+sentiment") for name in default_factories(sentiment="without"))
    only = default_factories(nets=False, sentiment="with")
    assert set(only) == {"majority", "logistic+sentiment", "xgboost+sentiment", "ordinal_logistic+sentiment"}
    assert only["logistic+sentiment"]().use_sentiment and not both["logistic"]().use_sentiment
    with pytest.raises(ValueError, match="sentiment must be one of"):
        default_factories(sentiment="maybe")


@pytest.mark.slow
def test_the_combined_bilstm_takes_the_block_and_saves_it(tmp_path):
    nets = pytest.importorskip("models.complexity.nets")
    docs, y = _trajectory_docs(24)
    model = default_factories(net_params={"epochs": 2, "max_tokens": 32})["bilstm_combined+sentiment"]()
    assert model.use_sentiment
    model.fit(docs, y)
    assert "sentiment" in [i.name for i in model.model_.inputs]
    before = model.predict_proba(docs)
    path = model.save(tmp_path / "overall.keras")
    state = json.loads((tmp_path / "overall.vocab.json").read_text())
    assert len(state["sentiment_mean"]) == len(SENTIMENT_KEYS) and state["params"]["use_sentiment"]
    loaded = nets.load_model(path)
    assert loaded.use_sentiment and np.allclose(loaded.predict_proba(docs), before, atol=1e-6)


# -- through the product: a real store, the CLI, the training worker ------------------------------
@pytest.fixture
def rated_store(cli):
    from conftest import SAMPLE_DIR

    cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    from labeling.training.complexity import sequence_docs
    from store.db import open_db

    for doc in sequence_docs(open_db(cli.db_file)):
        chars = doc.counts["distinct_characters"]
        value = 1 if chars == 0 else 2 if chars == 1 else 3 if chars == 2 else 4
        cli.json_lines("rate", str(doc.sequence_id), str(value), "--department", "fx", "--annotator", "lead")
    return cli


def test_train_complexity_lists_every_model_with_and_without_the_block(rated_store):
    cli = rated_store
    [out] = cli.json_lines("train", "--target", "complexity", "--department", "fx", "--models", "baselines",
                           "--wait", "--timeout", "600")
    assert out["status"] == "done" and out["n_sequences"] >= 20
    for name in ("logistic", "xgboost", "ordinal_logistic"):
        assert name in out["cv"] and f"{name}+sentiment" in out["cv"], sorted(out["cv"])
        scores = out["cv"][f"{name}+sentiment"]
        assert {"accuracy", "mae", "qwk", "ci95"} <= set(scores)
        assert scores["ci95"]["qwk"][0] <= scores["qwk"] <= scores["ci95"]["qwk"][1]
    assert "majority" in out["cv"] and "majority+sentiment" not in out["cv"]

    [without] = cli.json_lines("train", "--target", "complexity", "--department", "fx", "--models", "baselines",
                               "--sentiment", "without", "--wait", "--timeout", "600")
    assert without["status"] == "done" and "logistic" in without["cv"]
    # Only the current version's family may come back (it is always compared with the new candidates).
    assert {n for n in without["cv"] if n.endswith("+sentiment")} <= {out["winner"]}, sorted(without["cv"])


def test_a_baseline_with_the_block_saves_and_loads_through_the_trusted_path(tmp_path):
    from labeling.training.complexity import _save, load_complexity_model

    docs, y = _trajectory_docs(30)
    model = TfidfLogisticClassifier(ordinal=True, use_sentiment=True).fit(docs, y)
    loaded = load_complexity_model(_save(model, tmp_path / "fx"))
    assert loaded.use_sentiment and np.allclose(loaded.predict_proba(docs), model.predict_proba(docs))
