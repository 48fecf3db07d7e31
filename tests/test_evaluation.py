import json

import numpy as np
import pytest

from models.evaluation import (
    EvaluationError,
    LineEvaluation,
    evaluate_lines,
    fold_assignment,
    grouped_folds,
    scores_from_confusion,
)
from store.types import LABELS


def test_scores_from_a_known_confusion_matrix():
    # true a: 8 right, 2 called b; true b: 1 called a, 4 right; class c absent.
    matrix = np.array([[8, 2, 0], [1, 4, 0], [0, 0, 0]])
    scores = scores_from_confusion(matrix, ("a", "b", "c"), scheme="toy")
    assert scores.n == 15
    assert scores.accuracy == pytest.approx(12 / 15)
    a, b, c = scores.per_class
    assert a.precision == pytest.approx(8 / 9) and a.recall == pytest.approx(8 / 10)
    assert b.precision == pytest.approx(4 / 6) and b.recall == pytest.approx(4 / 5)
    f1_a = 2 * (8 / 9) * 0.8 / (8 / 9 + 0.8)
    f1_b = 2 * (4 / 6) * 0.8 / (4 / 6 + 0.8)
    assert a.f1 == pytest.approx(f1_a) and b.f1 == pytest.approx(f1_b)
    assert c.support == 0 and c.f1 == 0.0
    # macro-F1 averages the classes that occur in the truth only
    assert scores.macro_f1 == pytest.approx((f1_a + f1_b) / 2)


def test_evaluate_lines_full_and_seed_scheme():
    y_true = ["scene_heading", "action", "character", "dialogue", "parenthetical", "transition", "other", "action"]
    y_pred = ["action", "action", "character", "parenthetical", "parenthetical", "transition", "other", "dialogue"]
    result = evaluate_lines(y_true, y_pred)
    assert result.full.accuracy == pytest.approx(5 / 8)
    # seed scheme: heading/action/transition are S, parenthetical is D → only the action→dialogue error stays
    assert result.seed.accuracy == pytest.approx(7 / 8)
    assert result.seed.labels == ("S", "C", "D", "O")
    assert np.array(result.full.confusion).sum() == 8


def test_evaluation_accepts_class_indices_and_serializes():
    result = evaluate_lines([0, 1, 2, 3], np.array([0, 1, 2, 2]))
    assert isinstance(result, LineEvaluation)
    data = json.loads(result.to_json())
    assert data["full"]["accuracy"] == pytest.approx(0.75)
    assert data["full"]["labels"] == list(LABELS)


def test_evaluation_errors_are_named():
    with pytest.raises(EvaluationError, match="unknown label"):
        evaluate_lines(["dialog"], ["dialogue"])
    with pytest.raises(EvaluationError, match="no lines"):
        evaluate_lines([], [])
    with pytest.raises(EvaluationError, match="predictions"):
        evaluate_lines(["action"], ["action", "action"])


def test_grouped_folds_never_split_a_script():
    groups = np.repeat([f"s{i}" for i in range(7)], [5, 30, 12, 8, 40, 3, 20])
    seen = set()
    for train, test in grouped_folds(groups, 3, seed=1):
        assert not set(groups[train]) & set(groups[test])
        seen |= set(test.tolist())
    assert seen == set(range(len(groups)))
    folds = fold_assignment(groups, 3)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1


def test_grouped_folds_need_two_scripts():
    with pytest.raises(EvaluationError, match="at least 2 scripts"):
        list(grouped_folds(["only"] * 5, 5))
