"""The labeling queue: unlabeled lines, most useful first, near-identical lines collapsed into one item."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlite_utils import Database

from labeling.session.strategies import EmptyPoolError, mix_random, score, select
from store import claims as claim_store
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store.types import LABELS



@dataclass(frozen=True)
class QueueItem:
    line_id: int
    script_id: int
    line_no: int
    page: int
    text: str
    suggestion: str | None
    confidence: float | None
    group_line_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"line_id": self.line_id, "text": self.text, "suggestion": self.suggestion,
                "confidence": None if self.confidence is None else round(self.confidence, 4),
                "script_id": self.script_id, "line_no": self.line_no, "group_size": len(self.group_line_ids)}


_SPACES = re.compile(r"\s+")
LEVEL_COLUMNS = 3.0  # indents within a few character columns are one layout level (OCR jitter, centring)


def identical_key(text: str, indent: float = 0.0) -> str:
    """Lines are identical when their text matches after whitespace normalization at the same layout level.

    Case, digits and punctuation count: "HANK" and "Hank --" are different lines, and so are
    "CONTINUED: (2)" and "CONTINUED: (3)".
    """
    level = int(round(float(indent or 0.0) / LEVEL_COLUMNS))
    return f"{level}\x00{_SPACES.sub(' ', text).strip()}"


LARGE_LIBRARY = 20_000  # lines; beyond this, "every script" ranks a candidate set read through an index
CANDIDATES = 2_000
RANDOM_CANDIDATES = 500


def unlabeled_pool(db: Database, script_id: int | None = None) -> pd.DataFrame:
    """Lines without a human or imported label, with the latest model probabilities (if any).

    Over every script of a large library, the pool is the lines the newest model is least sure of
    (an indexed read of the stored margins) plus a uniform sample for the random slice, so ranking
    costs the same at a million lines as at twenty thousand.
    """
    if script_id is None and script_store.has_more_lines_than(db, LARGE_LIBRARY):
        ids = list(dict.fromkeys(model_store.least_margin_line_ids(db, CANDIDATES)
                                 + script_store.random_line_ids(db, RANDOM_CANDIDATES)))
        lines = script_store.lines_of(db, ids)
        labeled = set(label_store.labels_of_lines(db, ids))
        preds = model_store.latest_predictions_of(db, ids)
    else:
        lines = script_store.lines_frame(db, script_id)
        labeled = set(label_store.current_labels(db, script_id, sources=label_store.LABELED_SOURCES)["line_id"])
        preds = model_store.latest_predictions(db, script_id)
    lines = lines[["line_id", "script_id", "line_no", "page", "text", "indent"]]
    pool = lines[~lines["line_id"].isin(labeled)]
    preds = preds[["line_id", "label", "confidence", "probs"]]
    return pool.merge(preds, on="line_id", how="left").reset_index(drop=True)


def build_queue(db: Database, *, script_id: int | None = None, strategy: str = "margin", n: int = 10,
                annotator: str | None = None, tab: str = "", exclude: frozenset[int] | set[int] = frozenset(),
                random_share: float = 0.1, seed: int | None = None,
                hidden_scripts: frozenset[int] | set[int] = frozenset()) -> list[QueueItem]:
    """The next `n` queue items. Raises EmptyPoolError when nothing is left to label.

    strategy "script" is reading order; the others rank by the model's uncertainty (or at random).
    Lines claimed by another holder (another person, or another tab of this one), `exclude` and lines of
    `hidden_scripts` (restricted to other people) are left out.
    """
    pool = unlabeled_pool(db, script_id)
    if hidden_scripts:
        pool = pool[~pool["script_id"].isin(list(hidden_scripts))].reset_index(drop=True)
    if exclude:
        pool = pool[~pool["line_id"].isin(exclude)].reset_index(drop=True)
    if annotator is not None:
        pool = pool[~pool["line_id"].isin(claim_store.claimed_by_others(db, annotator=annotator, tab=tab))]
        pool = pool.reset_index(drop=True)
    if pool.empty:
        raise EmptyPoolError("every line is labeled (or being labeled by someone else): nothing left in the queue")
    pool["key"] = [identical_key(t, i) for t, i in zip(pool["text"], pool["indent"])]
    # Group codes in order of first appearance, so group j's representative is row j of `reps`.
    codes = pd.factorize(pool["script_id"].astype(str) + "\x00" + pool["key"])[0]
    reps = pool.drop_duplicates(["script_id", "key"]).reset_index(drop=True)
    line_ids = pool["line_id"].to_numpy()
    has_probs = reps["probs"].notna()
    proba = np.full((len(reps), len(LABELS)), 1.0 / len(LABELS))
    if has_probs.any():
        stored = "[" + ",".join(reps.loc[has_probs, "probs"]) + "]"  # parsed at once, not line by line
        proba[has_probs.to_numpy()] = np.array(json.loads(stored))
    if strategy == "script":
        return [_item(reps.iloc[i], line_ids[codes == i]) for i in range(min(n, len(reps)))]
    scores = score(proba, strategy, seed=seed)
    # A group stands for many lines: one answer labels them all, so it is worth more.
    sizes = np.bincount(codes, minlength=len(reps))
    if strategy != "random":
        scores = scores * (1.0 + 0.1 * np.log1p(sizes - 1))
    ranked = select(scores, len(scores))
    rng = np.random.default_rng(seed)
    order = mix_random(ranked, len(reps), n=n, random_share=random_share if strategy != "random" else 0.0, rng=rng)
    return [_item(reps.iloc[i], line_ids[codes == i]) for i in order]


def _item(row, group: np.ndarray) -> QueueItem:
    return QueueItem(
        line_id=int(row["line_id"]), script_id=int(row["script_id"]), line_no=int(row["line_no"]),
        page=int(row["page"]), text=str(row["text"]),
        suggestion=None if pd.isna(row["label"]) else str(row["label"]),
        confidence=None if pd.isna(row["confidence"]) else float(row["confidence"]),
        group_line_ids=[int(x) for x in group],
    )
