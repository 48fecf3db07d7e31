"""The labeling queue: unlabeled lines, most useful first, near-identical lines collapsed into one item."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlite_utils import Database

from labeling.strategies import EmptyPoolError, mix_random, score, select
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store.db import immediate
from store.types import LABELS

CLAIM_TTL_S = 120


@dataclass(frozen=True)
class QueueItem:
    line_id: int
    script_id: int
    line_no: int
    page: int
    text: str
    suggestion: str | None
    confidence: float | None
    strategy_score: float
    group_line_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"line_id": self.line_id, "text": self.text, "suggestion": self.suggestion,
                "confidence": None if self.confidence is None else round(self.confidence, 4),
                "script_id": self.script_id, "line_no": self.line_no, "group_size": len(self.group_line_ids)}


_NORMALIZE = re.compile(r"[\d\W_]+")


def group_key(text: str) -> str:
    """Lines that differ only in digits, punctuation or case ("CONTINUED: (2)") share a key."""
    key = _NORMALIZE.sub(" ", text.upper()).strip()
    return key or text.strip()


def unlabeled_pool(db: Database, script_id: int | None = None) -> pd.DataFrame:
    """Lines without a human or imported label, with the latest model probabilities (if any)."""
    lines = script_store.lines_frame(db, script_id)[["line_id", "script_id", "line_no", "page", "text"]]
    labeled = set(label_store.current_labels(db, script_id)["line_id"])
    pool = lines[~lines["line_id"].isin(labeled)]
    preds = model_store.latest_predictions(db, script_id)[["line_id", "label", "confidence", "probs"]]
    return pool.merge(preds, on="line_id", how="left").reset_index(drop=True)


def _claimed_by_others(db: Database, annotator: str | None) -> set[int]:
    rows = db.execute("SELECT line_id FROM queue_claims WHERE expires_at > ? AND annotator != ?",
                      [time.time(), annotator or ""]).fetchall()
    return {r[0] for r in rows}


def build_queue(db: Database, *, script_id: int | None = None, strategy: str = "margin", n: int = 10,
                annotator: str | None = None, random_share: float = 0.1, seed: int | None = None
                ) -> list[QueueItem]:
    """The next `n` queue items. Raises EmptyPoolError when nothing is left to label."""
    pool = unlabeled_pool(db, script_id)
    if annotator is not None:
        pool = pool[~pool["line_id"].isin(_claimed_by_others(db, annotator))].reset_index(drop=True)
    if pool.empty:
        raise EmptyPoolError("every line is labeled (or being labeled by someone else): nothing left in the queue")
    pool["key"] = pool["text"].map(group_key)
    # Group codes in order of first appearance, so group j's representative is row j of `reps`.
    codes = pd.factorize(pool["script_id"].astype(str) + "\x00" + pool["key"])[0]
    reps = pool.drop_duplicates(["script_id", "key"]).reset_index(drop=True)
    line_ids = pool["line_id"].to_numpy()
    has_probs = reps["probs"].notna()
    proba = np.full((len(reps), len(LABELS)), 1.0 / len(LABELS))
    if has_probs.any():
        stored = "[" + ",".join(reps.loc[has_probs, "probs"]) + "]"  # parsed at once, not line by line
        proba[has_probs.to_numpy()] = np.array(json.loads(stored))
    scores = score(proba, strategy, seed=seed)
    # A group stands for many lines: one answer labels them all, so it is worth more.
    sizes = np.bincount(codes, minlength=len(reps))
    if strategy != "random":
        scores = scores * (1.0 + 0.1 * np.log1p(sizes - 1))
    ranked = select(scores, len(scores))
    rng = np.random.default_rng(seed)
    order = mix_random(ranked, len(reps), n=n, random_share=random_share if strategy != "random" else 0.0, rng=rng)
    items = []
    for i in order:
        row = reps.iloc[i]
        items.append(QueueItem(
            line_id=int(row["line_id"]), script_id=int(row["script_id"]), line_no=int(row["line_no"]),
            page=int(row["page"]), text=str(row["text"]),
            suggestion=None if pd.isna(row["label"]) else str(row["label"]),
            confidence=None if pd.isna(row["confidence"]) else float(row["confidence"]),
            strategy_score=float(scores[i]), group_line_ids=[int(x) for x in line_ids[codes == i]],
        ))
    return items


def claim(db: Database, line_ids: list[int], annotator: str, *, ttl_s: float = CLAIM_TTL_S) -> bool:
    """Claim lines for `annotator` so no one else is shown them; False if someone else holds one."""
    now = time.time()
    with immediate(db):
        marks = ",".join("?" * len(line_ids))
        held = db.execute(
            f"SELECT COUNT(*) FROM queue_claims WHERE line_id IN ({marks}) AND expires_at > ? AND annotator != ?",
            [*line_ids, now, annotator]).fetchone()[0]
        if held:
            return False
        db.execute("DELETE FROM queue_claims WHERE annotator = ?", [annotator])
        db.conn.executemany("INSERT OR REPLACE INTO queue_claims(line_id, annotator, expires_at) VALUES (?,?,?)",
                            [(line_id, annotator, now + ttl_s) for line_id in line_ids])
    return True


def release(db: Database, annotator: str) -> None:
    with db.atomic():
        db.execute("DELETE FROM queue_claims WHERE annotator = ? OR expires_at <= ?", [annotator, time.time()])
