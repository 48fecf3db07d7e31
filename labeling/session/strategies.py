"""Query strategies as pure functions over class probabilities (higher score = ask sooner)."""

from __future__ import annotations

import numpy as np

from store.types import ScriptlabelError


class EmptyPoolError(ScriptlabelError):
    """Nothing left to ask about: every line in the pool is labeled (or claimed by someone else)."""


def margin_scores(proba: np.ndarray) -> np.ndarray:
    """1 − (p₁ − p₂): small gaps between the two likeliest labels come first."""
    proba = np.asarray(proba, dtype=float)
    if proba.shape[1] < 2:
        return np.zeros(len(proba))
    top2 = -np.partition(-proba, 1, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def entropy_scores(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(np.asarray(proba, dtype=float), 1e-12, 1.0)
    return -(proba * np.log(proba)).sum(axis=1)


def least_confidence_scores(proba: np.ndarray) -> np.ndarray:
    return 1.0 - np.asarray(proba, dtype=float).max(axis=1)


def random_scores(proba: np.ndarray, *, seed: int | None = None) -> np.ndarray:
    return np.random.default_rng(seed).random(len(proba))


STRATEGIES = {
    "diverse": margin_scores,  # margin, then one line per kind of line (`diverse_select`)
    "margin": margin_scores,
    "entropy": entropy_scores,
    "least_confidence": least_confidence_scores,
    "random": random_scores,
}


def score(proba: np.ndarray, strategy: str = "margin", *, seed: int | None = None) -> np.ndarray:
    if strategy not in STRATEGIES:
        raise ScriptlabelError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if strategy == "random":
        return random_scores(proba, seed=seed)
    return STRATEGIES[strategy](proba)


def select(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` highest scores, best first (stable for ties)."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        raise EmptyPoolError("every line is labeled: nothing left in the queue")
    n = min(n, len(scores))
    return np.argsort(-scores, kind="stable")[:n]


def diverse_select(scores: np.ndarray, kinds: np.ndarray, n: int, *, shortlist: int | None = None) -> np.ndarray:
    """The `n` items to ask about: uncertain ones, as many different kinds as possible, best first.

    The `shortlist` (default max(20n, 200)) most uncertain items are dealt out kind by kind — the
    most uncertain item of each kind first (kinds ordered by their most uncertain item), then each
    kind's second, and so on — so a batch holds one line per kind of mistake rather than ten lines
    of the same one, and the retrain between batches learns from each kind. Items past the shortlist
    follow in score order. `kinds` is any label per item (e.g. predicted class × layout level × text
    shape); equal labels are one kind.
    """
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        raise EmptyPoolError("every line is labeled: nothing left in the queue")
    n = min(n, len(scores))
    ranked = np.argsort(-scores, kind="stable")
    top = ranked[: min(len(ranked), shortlist if shortlist is not None else max(20 * n, 200))]
    rounds: dict[object, int] = {}
    keyed = []
    for position, index in enumerate(top):
        kind = kinds[index]
        round_no = rounds.get(kind, 0)
        rounds[kind] = round_no + 1
        keyed.append((round_no, position, int(index)))
    keyed.sort()
    order = [index for _round, _position, index in keyed]
    return np.array(order + [int(i) for i in ranked[len(top):]], dtype=int)[:n]


def mix_random(ranked: np.ndarray, pool_size: int, *, n: int, random_share: float,
               rng: np.random.Generator) -> list[int]:
    """Replace about `random_share` of a ranked list with uniformly drawn pool items.

    The random slice keeps the labeled set usable for unbiased evaluation.
    """
    n = min(n, pool_size)
    n_random = int(round(n * random_share))
    if n_random == 0 and random_share > 0 and rng.random() < n * random_share:
        n_random = 1
    chosen = [int(i) for i in ranked[: n - n_random]]
    taken = set(chosen)
    candidates = [i for i in rng.permutation(pool_size) if i not in taken]
    randoms = [int(i) for i in candidates[:n_random]]
    # Interleave so the random items do not all sit at the end.
    out = chosen[:]
    for k, item in enumerate(randoms):
        out.insert(min(len(out), (k + 1) * max(1, len(chosen) // (n_random + 1))), item)
    return out[:n]
