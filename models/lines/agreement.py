"""How people label each *kind* of line: the statistics that let a convention win over the base.

A line's kind is what the base thought of it plus its shape: the base's class, whether it is all
capitals, whether it opens a bracket, and its indent level in its script (columns from the script's
left margin, in steps of `INDENT_STEP`). Wrylies are (parenthetical, lower case, bracket, level 3);
shot lines (action, capitals, no bracket, level 0).

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

INDENT_STEP = 4.0  # columns per indent level of a kind


def kind_keys(X: pd.DataFrame, base_codes: np.ndarray) -> np.ndarray:
    """One integer per line naming its kind: base class, capitals, bracket, indent level."""
    text = X["text"].astype(str).str.strip()
    letters = text.str.replace(r"[^A-Za-z]", "", regex=True)
    caps = (letters.str.len() > 0) & (letters == letters.str.upper())
    paren = text.str.startswith("(")
    indent = pd.to_numeric(X["indent"], errors="coerce").fillna(0.0)
    margin = indent.groupby(X["script_id"].to_numpy()).transform("min")
    level = np.clip(np.round((indent - margin).to_numpy() / INDENT_STEP), 0, 40).astype(np.int64)
    return (np.asarray(base_codes, dtype=np.int64) * 1000 + caps.to_numpy().astype(np.int64) * 100
            + paren.to_numpy().astype(np.int64) * 50 + level)


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

    def to_dict(self) -> dict:
        return {"counts": {str(k): v.tolist() for k, v in self.counts.items()}, "n_classes": self.n_classes,
                "prior": self.prior, "min_follow": self.min_follow, "min_share": self.min_share}

    @classmethod
    def from_dict(cls, data: dict) -> "KindAgreement":
        return cls(counts={int(k): np.asarray(v, dtype=float) for k, v in data["counts"].items()},
                   n_classes=int(data["n_classes"]), prior=float(data["prior"]), min_follow=int(data["min_follow"]),
                   min_share=float(data["min_share"]))
