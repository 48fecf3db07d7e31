"""How people label each *kind* of line: the statistics that let a convention win over the base.

A line's kind is what the base thought of it plus its shape: the base's class, whether it is all
capitals, whether it opens a bracket, whether it opens like a slug line (INT. / EXT. / I/E) and
whether it ends with a colon. Wrylies are (parenthetical, lower case, bracket); shot lines (action,
capitals) and the slug lines the base calls headings (scene_heading, capitals, slug) stay apart even
where the base calls a shot line a heading. Indent is left to the trees (they read the line's layout features):
in a typed script a kind's lines wander over several columns, which split ten labels into kinds of
three or four.

From the labeled lines of each kind (across every script) come, for every class, the share of
people's labels — smoothed towards the base's own class by `prior` pseudo-labels — and whether the
kind *follows a convention*: at least `min_follow` of its labels disagree with the base and they are
at least `min_share` of its labels. Only such a kind's shares reach the adapter as features (other
kinds read the base's class as share 1), and only its anchors are dropped. So ten consistent
corrections make every line of that kind carry "people call this dialogue", while two dissenting
labels among ten (or three labels on a one-off notice) leave the kind's features and anchors as the
base has them. A labeled line's own label is left out of its statistics (leave-one-out), so the
trees can only learn "lines of a kind people relabel follow them" from the *other* labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_SLUG = r"(?i)^(?:\d+[A-Z]?\.?\s+)?(?:INT|EXT|I/E|INT\.?/EXT|EXT\.?/INT|EST)[./\s]"


def kind_keys(X: pd.DataFrame, base_codes: np.ndarray) -> np.ndarray:
    """One integer per line naming its kind: base class, capitals, bracket, slug opening, final colon."""
    text = X["text"].astype(str).str.strip()
    caps = (text == text.str.upper()) & (text != text.str.lower())  # has letters, none lower case
    bits = [caps, text.str.startswith("("), text.str.match(_SLUG), text.str.endswith(":")]
    key = np.asarray(base_codes, dtype=np.int64) * (1 << len(bits))
    for i, bit in enumerate(bits):
        key += bit.to_numpy().astype(np.int64) << i
    return key


@dataclass(frozen=True)
class KindAgreement:
    """Label counts per kind (kind key → counts per class), learned at fit and saved with the adapter."""

    counts: dict[int, np.ndarray]
    n_classes: int
    prior: float = 3.0
    min_follow: int = 4
    min_share: float = 0.5

    @classmethod
    def fit(cls, keys: np.ndarray, codes: np.ndarray, n_classes: int, **params) -> "KindAgreement":
        labeled = codes >= 0
        counts: dict[int, np.ndarray] = {}
        for key, code in zip(keys[labeled].tolist(), codes[labeled].tolist()):
            counts.setdefault(int(key), np.zeros(n_classes))[code] += 1
        return cls(counts=counts, n_classes=n_classes, **params)

    def _table(self, keys: np.ndarray) -> np.ndarray:
        table = np.zeros((len(keys), self.n_classes))
        for i, key in enumerate(keys.tolist()):
            found = self.counts.get(int(key))
            if found is not None:
                table[i] = found
        return table

    def features(self, keys: np.ndarray, base_target: np.ndarray, codes: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(shares (n, n_classes), follows (n,)): each line's kind's smoothed label shares where the kind
        follows a convention (else the base's class at 1), leaving a labeled line's own label out when
        `codes` is given."""
        counts = self._table(keys)
        if codes is not None:
            own = np.flatnonzero(codes >= 0)
            counts[own, codes[own]] -= 1
        n = counts.sum(axis=1)
        agree = counts[np.arange(len(keys)), base_target]
        disagree = n - agree
        follows = (disagree >= self.min_follow) & (disagree >= self.min_share * np.maximum(n, 1))
        onehot = np.zeros_like(counts)
        onehot[np.arange(len(keys)), base_target] = 1.0
        shares = (counts + self.prior * onehot) / (n + self.prior)[:, None]
        return np.where(follows[:, None], shares, onehot).astype(np.float32), follows

    def label_weights(self, keys: np.ndarray, codes: np.ndarray, *, least: float = 0.2) -> np.ndarray:
        """A weight factor per line: for a labeled line of a kind with at least `min_follow` other labels,
        the share of those that say the same, over `min_share` (clipped to [least, 1]); else 1.

        Sparse dissent — a label most people's labels of its kind contradict — still decides its own line
        (a human label always wins there) but teaches the model about the kind at a fraction of its weight."""
        out = np.ones(len(keys))
        own = np.flatnonzero(codes >= 0)
        if len(own) == 0:
            return out
        counts = self._table(keys[own])
        counts[np.arange(len(own)), codes[own]] -= 1
        n = counts.sum(axis=1)
        same = counts[np.arange(len(own)), codes[own]] / np.maximum(n, 1)
        out[own] = np.where(n >= self.min_follow, np.clip(same / self.min_share, least, 1.0), 1.0)
        return out

    def to_dict(self) -> dict:
        return {"counts": {str(k): v.tolist() for k, v in self.counts.items()}, "n_classes": self.n_classes,
                "prior": self.prior, "min_follow": self.min_follow, "min_share": self.min_share}

    @classmethod
    def from_dict(cls, data: dict) -> "KindAgreement":
        return cls(counts={int(k): np.asarray(v, dtype=float) for k, v in data["counts"].items()},
                   n_classes=int(data["n_classes"]), prior=float(data["prior"]), min_follow=int(data["min_follow"]),
                   min_share=float(data["min_share"]))
