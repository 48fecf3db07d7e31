"""Query strategies are pure functions over probabilities."""

import random

import numpy as np
import pytest

from labeling.session.strategies import (EmptyPoolError, entropy_scores, least_confidence_scores, margin_scores, mix_random,
                                 score, select)


PROBA = np.array([[0.9, 0.05, 0.05], [0.5, 0.45, 0.05], [0.34, 0.33, 0.33], [0.6, 0.1, 0.3]])


def test_margin_prefers_close_calls():
    assert list(select(margin_scores(PROBA), 4)) == [2, 1, 3, 0]


def test_entropy_and_least_confidence_rank_the_flat_row_first():
    assert select(entropy_scores(PROBA), 1)[0] == 2
    assert select(least_confidence_scores(PROBA), 1)[0] == 2
    assert least_confidence_scores(PROBA)[0] == pytest.approx(0.1)


def test_random_is_seeded_and_unknown_strategy_is_named():
    assert np.array_equal(score(PROBA, "random", seed=1), score(PROBA, "random", seed=1))
    with pytest.raises(Exception, match="unknown strategy 'best'"):
        score(PROBA, "best")


def test_empty_pool_raises_named_error():
    with pytest.raises(EmptyPoolError):
        select(np.array([]), 3)


def test_random_slice_is_mixed_in():
    ranked = np.arange(100)
    out = mix_random(ranked, 100, n=20, random_share=0.1, rng=random.Random(0))
    assert len(out) == 20 and len(set(out)) == 20
    assert len([i for i in out if i >= 18]) == 2  # two items come from outside the top of the ranking


def test_diverse_deals_the_shortlist_out_kind_by_kind():
    from labeling.session.strategies import diverse_select

    scores = np.array([0.9, 0.89, 0.88, 0.87, 0.5, 0.4, 0.01])
    kinds = np.array(["num", "num", "num", "num", "cue", "speech", "cue"], dtype=object)
    # margin alone: four page numbers first; diverse: the best of each kind, then the second round
    assert list(select(scores, 4)) == [0, 1, 2, 3]
    assert list(diverse_select(scores, kinds, 4)) == [0, 4, 5, 1]
    # items past the shortlist keep their score order after it
    assert list(diverse_select(scores, kinds, 7, shortlist=3)) == [0, 1, 2, 3, 4, 5, 6]
    with pytest.raises(EmptyPoolError):
        diverse_select(np.array([]), np.array([], dtype=object), 3)
