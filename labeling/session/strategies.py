"""Query strategies as pure functions over class probabilities (higher score = ask sooner).

Plain Python over rows of probabilities (lists, tuples or a numpy array's rows): a queue ranks a few
thousand lines at most (labeling.session.queue), and the command line's `queue` starts without numpy.
"""

from __future__ import annotations

import math
import random
from typing import Sequence

from store.types import ScriptlabelError


class EmptyPoolError(ScriptlabelError):
    """Nothing left to ask about: every line in the pool is labeled (or claimed by someone else)."""


def margin_scores(proba) -> list[float]:
    """1 − (p₁ − p₂): small gaps between the two likeliest labels come first."""
    out = []
    for row in proba:
        if len(row) < 2:
            out.append(0.0)
            continue
        first, second = sorted((float(p) for p in row), reverse=True)[:2]
        out.append(1.0 - (first - second))
    return out


def entropy_scores(proba) -> list[float]:
    return [-sum(p * math.log(p) for p in (min(max(float(x), 1e-12), 1.0) for x in row)) for row in proba]


def least_confidence_scores(proba) -> list[float]:
    return [1.0 - max(float(p) for p in row) for row in proba]


def random_scores(proba, *, seed: int | None = None) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(len(proba))]


STRATEGIES = {
    "diverse": margin_scores,  # margin, then one line per kind of line (`diverse_select`)
    "margin": margin_scores,
    "entropy": entropy_scores,
    "least_confidence": least_confidence_scores,
    "random": random_scores,
}


def score(proba, strategy: str = "margin", *, seed: int | None = None) -> list[float]:
    if strategy not in STRATEGIES:
        raise ScriptlabelError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if strategy == "random":
        return random_scores(proba, seed=seed)
    return STRATEGIES[strategy](proba)


def _best_first(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -float(scores[i]))  # sorted() is stable: ties keep order


def select(scores: Sequence[float], n: int) -> list[int]:
    """Indices of the `n` highest scores, best first (stable for ties)."""
    if len(scores) == 0:
        raise EmptyPoolError("every line is labeled: nothing left in the queue")
    return _best_first(scores)[:min(n, len(scores))]


def diverse_select(scores: Sequence[float], kinds: Sequence, n: int, *, shortlist: int | None = None) -> list[int]:
    """The `n` items to ask about: uncertain ones, as many different kinds as possible, best first.

    The `shortlist` (default max(20n, 200)) most uncertain items are dealt out kind by kind — the
    most uncertain item of each kind first (kinds ordered by their most uncertain item), then each
    kind's second, and so on — so a batch holds one line per kind of mistake rather than ten lines
    of the same one, and the retrain between batches learns from each kind. Items past the shortlist
    follow in score order. `kinds` is any label per item (e.g. predicted class × layout level × text
    shape); equal labels are one kind.
    """
    if len(scores) == 0:
        raise EmptyPoolError("every line is labeled: nothing left in the queue")
    n = min(n, len(scores))
    ranked = _best_first(scores)
    top = ranked[: min(len(ranked), shortlist if shortlist is not None else max(20 * n, 200))]
    rounds: dict[object, int] = {}
    keyed = []
    for position, index in enumerate(top):
        kind = kinds[index]
        round_no = rounds.get(kind, 0)
        rounds[kind] = round_no + 1
        keyed.append((round_no, position, index))
    keyed.sort()
    return ([index for _round, _position, index in keyed] + ranked[len(top):])[:n]


def mix_random(ranked: Sequence[int], pool_size: int, *, n: int, random_share: float,
               rng: random.Random) -> list[int]:
    """Replace about `random_share` of a ranked list with uniformly drawn pool items.

    The random slice keeps the labeled set usable for unbiased evaluation.
    """
    n = min(n, pool_size)
    n_random = int(round(n * random_share))
    if n_random == 0 and random_share > 0 and rng.random() < n * random_share:
        n_random = 1
    chosen = [int(i) for i in ranked[: n - n_random]]
    taken = set(chosen)
    randoms: list[int] = []
    while len(randoms) < n_random and len(taken) < pool_size:  # uniform over the pool items not chosen
        item = rng.randrange(pool_size)
        if item not in taken:
            taken.add(item)
            randoms.append(item)
    # Interleave so the random items do not all sit at the end.
    out = chosen[:]
    for k, item in enumerate(randoms):
        out.insert(min(len(out), (k + 1) * max(1, len(chosen) // (n_random + 1))), item)
    return out[:n]
