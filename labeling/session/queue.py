"""The labeling queue: unlabeled lines, most useful first, near-identical lines collapsed into one item."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlite_utils import Database

from labeling.session.strategies import EmptyPoolError, diverse_select, mix_random, score, select
from labeling.team.overlap import get_overlap, overlap_line_ids, waiting_lines
from store import claims as claim_store
from store import labels as label_store
from store import models as model_store
from store import label_rules as rule_store
from store import scripts as script_store
from store import team as team_store
from store.scheme import load_scheme
from store.rules import rule_label
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
    # "rule" where a rule people wrote suggests the class (store/label_rules.py), with that rule's record
    suggestion_source: str = "model"
    rule: dict | None = None

    def as_json(self) -> dict:
        return {"line_id": self.line_id, "text": self.text, "suggestion": self.suggestion,
                "confidence": None if self.confidence is None else round(self.confidence, 4),
                "script_id": self.script_id, "line_no": self.line_no, "group_size": len(self.group_line_ids),
                "suggestion_source": self.suggestion_source, **({"rule": self.rule} if self.rule else {})}


_SPACES = re.compile(r"\s+")
LEVEL_COLUMNS = 3.0  # indents within a few character columns are one layout level (OCR jitter, centring)


def identical_key(text: str, indent: float = 0.0) -> str:
    """Lines are identical when their text matches after whitespace normalization at the same layout level.

    Case, digits and punctuation count: "HANK" and "Hank --" are different lines, and so are
    "CONTINUED: (2)" and "CONTINUED: (3)".
    """
    level = int(round(float(indent or 0.0) / LEVEL_COLUMNS))
    return f"{level}\x00{_SPACES.sub(' ', text).strip()}"


_DIGITS = re.compile(r"\d+")
PATTERN_MAX_WORDS = 6  # longer lines hardly ever repeat: a pattern is a page number, a header, a cue...


def pattern_key(text: str, indent: float = 0.0) -> str | None:
    """Lines of one pattern — "81." and "82.", "CONTINUED: (2)" and "CONTINUED: (3)", "Endeavor Draft 72."
    on every page, a repeated cue — share a key: digits as #, whitespace normalized, same layout level.
    None for lines too long to be a pattern."""
    text = _SPACES.sub(" ", text).strip()
    if not text or len(text.split(" ")) > PATTERN_MAX_WORDS:
        return None
    level = int(round(float(indent or 0.0) / LEVEL_COLUMNS))
    return f"{level}\x00{_DIGITS.sub('#', text)}"


def text_shape(text: str) -> str:
    """A coarse look of a line for telling kinds of lines apart: length bucket and how it is written."""
    text = text.strip()
    words = len(text.split())
    size = "1" if words <= 1 else "2" if words <= 3 else "4" if words <= 7 else "8"
    upper, lower = text.upper(), text.lower()
    case = "U" if upper == text and lower != text else "a" if upper != lower else "-"
    wrap = "(" if text.startswith("(") else ""
    end = text[-1] if text and text[-1] in ".:!?-)" else ""
    digit = "#" if _DIGITS.search(text) else ""
    return f"{size}{case}{wrap}{end}{digit}"


LEVEL_KIND_COLUMNS = 6.0  # layout levels for kinds of lines: coarser than identical lines' (cue vs speech)
# `diverse` deals kinds out of this many of the most uncertain lines: wide enough that one kind the
# last retrain made unsure all at once (a hundred page numbers at 0.79) cannot fill a whole batch.
SHORTLIST_PER_ITEM = 20
SHORTLIST_MIN = 200
PATTERN_MIN_LABELS = 2  # labels given to a pattern before its other lines leave the top of the queue
PATTERN_AGREEMENT = 0.9  # share of those labels that must agree


def line_kinds(pool: pd.DataFrame, proba: np.ndarray) -> np.ndarray:
    """Kind of each pool line for `diverse`: predicted class × layout level × text shape."""
    predicted = proba.argmax(axis=1)
    return np.array([f"{p}|{int(float(i or 0.0) // LEVEL_KIND_COLUMNS)}|{text_shape(t)}"
                     for p, i, t in zip(predicted.tolist(), pool["indent"].tolist(), pool["text"].tolist())],
                    dtype=object)


def learned_patterns(labeled: pd.DataFrame) -> dict[str, str]:
    """Pattern key → the label people gave it, for patterns labeled at least PATTERN_MIN_LABELS times
    with PATTERN_AGREEMENT. `labeled`: text, indent, label of the labeled lines."""
    if labeled.empty:
        return {}
    keys = pd.Series([pattern_key(t, i) for t, i in zip(labeled["text"].tolist(), labeled["indent"].tolist())],
                     index=labeled.index)
    frame = pd.DataFrame({"key": keys, "label": labeled["label"].to_numpy()}).dropna(subset=["key"])
    learned = {}
    for key, labels in frame.groupby("key")["label"]:
        if len(labels) < PATTERN_MIN_LABELS:
            continue
        counts = labels.value_counts()
        if counts.iloc[0] / len(labels) >= PATTERN_AGREEMENT:
            learned[key] = str(counts.index[0])
    return learned


def learned_pattern_lines(pool: pd.DataFrame, proba: np.ndarray, learned: dict[str, str],
                          names: tuple[str, ...] = LABELS) -> np.ndarray:
    """Mask of pool lines of a pattern people have labeled where the model already suggests the label
    they gave it: another label for the 16th page number teaches nothing, so these wait behind the rest."""
    out = np.zeros(len(pool), dtype=bool)
    if not learned:
        return out
    label_index = {label: k for k, label in enumerate(names)}
    predicted = proba.argmax(axis=1)
    for row, (text, indent) in enumerate(zip(pool["text"].tolist(), pool["indent"].tolist())):
        label = learned.get(pattern_key(text, indent))
        out[row] = label is not None and label_index.get(label) == predicted[row]
    return out


LARGE_LIBRARY = 20_000  # lines; beyond this, "every script" ranks a candidate set read through an index
CANDIDATES = 2_000
RANDOM_CANDIDATES = 500


def unlabeled_pool(db: Database, script_id: int | None = None, *, with_labeled: bool = False,
                   waiting: frozenset[int] | set[int] | dict = frozenset()):
    """Lines without a human or imported label, with the latest model probabilities (if any), and the
    `waiting` lines (overlap lines others labeled that wait for one more person).

    Over every script of a large library, the pool is the lines the newest model is least sure of
    (an indexed read of the stored margins) plus a uniform sample for the random slice, so ranking
    costs the same at a million lines as at twenty thousand.

    With `with_labeled`, returns (pool, labeled): the labeled lines' text, indent and label as well
    (empty over a large library, where only the candidate set is read).
    """
    if script_id is None and script_store.has_more_lines_than(db, LARGE_LIBRARY):
        ids = list(dict.fromkeys(list(waiting) + model_store.least_margin_line_ids(db, CANDIDATES)
                                 + script_store.random_line_ids(db, RANDOM_CANDIDATES)))
        lines = script_store.lines_of(db, ids)
        labeled = set(label_store.labels_of_lines(db, ids))
        preds = model_store.latest_predictions_of(db, ids)
        given = pd.DataFrame(columns=["line_id", "label"])
    else:
        lines = script_store.lines_frame(db, script_id)
        given = label_store.current_labels(db, script_id, sources=label_store.LABELED_SOURCES)
        labeled = set(given["line_id"])
        preds = model_store.latest_predictions(db, script_id)
    lines = lines[["line_id", "script_id", "line_no", "page", "text", "indent"]]
    pool = lines[~lines["line_id"].isin(labeled) | lines["line_id"].isin(list(waiting))]
    preds = preds[["line_id", "label", "confidence", "probs", "classes"]]
    pool = pool.merge(preds, on="line_id", how="left").reset_index(drop=True)
    if not with_labeled:
        return pool
    labeled_lines = lines[lines["line_id"].isin(labeled)][["line_id", "text", "indent"]]
    return pool, labeled_lines.merge(given[["line_id", "label"]], on="line_id", how="inner")


def build_queue(db: Database, *, script_id: int | None = None, strategy: str = "margin", n: int = 10,
                annotator: str | None = None, tab: str = "", exclude: frozenset[int] | set[int] = frozenset(),
                random_share: float = 0.1, seed: int | None = None,
                hidden_scripts: frozenset[int] | set[int] = frozenset()) -> list[QueueItem]:
    """The next `n` queue items. Raises EmptyPoolError when nothing is left to label.

    strategy "script" is reading order; the others rank by the model's uncertainty (or at random);
    "diverse" takes the most uncertain line of each kind of line (predicted class × layout level × text
    shape) before a second of any kind; lines of a pattern people have already labeled (page numbers,
    a running header, a repeated cue: `pattern_key`) that the model suggests the label they gave wait
    behind every other line.
    Lines claimed by another holder (another person, or another tab of this one), `exclude` and lines of
    `hidden_scripts` (restricted to other people) are left out.

    With an `annotator` (a person's own queue): the scripts and pages assigned to them come first (only
    them while any is left); overlap lines (labeling.team.overlap) others labeled and that wait for this
    person come before new lines; a line this person labeled never comes back; an overlap line is held
    by up to N people at once.
    """
    for_me: dict[int, int] = {}
    if annotator is not None:
        setting = get_overlap(db)
        for_me = waiting_lines(db, annotator, script_id=script_id, setting=setting)
    if strategy == "diverse":
        pool, labeled = unlabeled_pool(db, script_id, with_labeled=True, waiting=for_me)
    else:
        pool, labeled = unlabeled_pool(db, script_id, waiting=for_me), None
    if hidden_scripts:
        pool = pool[~pool["script_id"].isin(list(hidden_scripts))].reset_index(drop=True)
    if strategy != "script":  # a rule already gives these their label (INT./EXT. headings): asking wastes a key
        pool = pool[pool["text"].map(rule_label).isna()].reset_index(drop=True)
    if exclude:
        pool = pool[~pool["line_id"].isin(exclude)].reset_index(drop=True)
    if annotator is not None:
        pool = pool[~pool["line_id"].isin(_held_elsewhere(db, annotator, tab, for_me, setting))]
        assigned = team_store.assigned_line_ids(db, annotator)
        if assigned and pool["line_id"].isin(list(assigned)).any():
            pool = pool[pool["line_id"].isin(list(assigned))]
        pool = pool.reset_index(drop=True)
    if pool.empty:
        raise EmptyPoolError("every line is labeled (or being labeled by someone else): nothing left in the queue")
    pool["key"] = [identical_key(t, i) for t, i in zip(pool["text"], pool["indent"])]
    # Group codes in order of first appearance, so group j's representative is row j of `reps`.
    codes = pd.factorize(pool["script_id"].astype(str) + "\x00" + pool["key"])[0]
    reps = pool.drop_duplicates(["script_id", "key"]).reset_index(drop=True)
    line_ids = pool["line_id"].to_numpy()
    # The model's probabilities read as the project's classes (a merged class: the sum of its members').
    scheme = load_scheme(db)
    has_probs, scheme_proba = label_store.prediction_proba(reps, scheme, probs="probs", classes="classes")
    proba = np.full((len(reps), len(scheme.names)), 1.0 / len(scheme.names))
    proba[has_probs] = scheme_proba[has_probs]
    if has_probs.any():
        names = np.array(scheme.names, dtype=object)
        reps.loc[has_probs, "label"] = names[proba[has_probs].argmax(axis=1)]
        reps.loc[has_probs, "confidence"] = proba[has_probs].max(axis=1)
    reps = _with_rules(db, reps, scheme)
    if strategy == "script":
        return [_item(reps.iloc[i], line_ids[codes == i]) for i in range(min(n, len(reps)))]
    scores = score(proba, strategy, seed=seed)
    # A group stands for many lines: one answer labels them all, so it is worth more.
    sizes = np.bincount(codes, minlength=len(reps))
    if strategy != "random":
        scores = scores * (1.0 + 0.1 * np.log1p(sizes - 1))
    if strategy == "diverse":
        labeled = labeled.assign(label=scheme.map_labels(labeled["label"]))
        waiting = learned_pattern_lines(reps, proba, learned_patterns(labeled), scheme.names)
        rest = np.flatnonzero(~waiting)
        ranked = rest[diverse_select(scores[rest], line_kinds(reps.iloc[rest], proba[rest]), len(rest),
                                     shortlist=max(SHORTLIST_PER_ITEM * n, SHORTLIST_MIN))] if len(rest) else rest
        later = np.flatnonzero(waiting)
        ranked = np.concatenate([ranked, later[np.argsort(-scores[later], kind="stable")]]).astype(int)
    else:
        ranked = select(scores, len(scores))
    rng = np.random.default_rng(seed)
    order = mix_random(ranked, len(reps), n=n, random_share=random_share if strategy != "random" else 0.0, rng=rng)
    if for_me:  # overlap lines that wait for this person: agreement needs them labeled, so they come first
        rep_ids = reps["line_id"].to_numpy()
        first = [int(i) for i in np.asarray(ranked)[np.isin(rep_ids[np.asarray(ranked, dtype=int)], list(for_me))]]
        taken = set(first)
        order = (first + [i for i in order if i not in taken])[:n]
    return [_item(reps.iloc[i], line_ids[codes == i]) for i in order]


def _held_elsewhere(db: Database, annotator: str, tab: str, waiting: dict[int, int], setting) -> set[int]:
    """Lines another holder has: refused unless an overlap line still has room for one more person."""
    holders = claim_store.other_holders(db, annotator=annotator, tab=tab)
    if not holders:
        return set()
    overlap = overlap_line_ids(db, list(holders), setting) if setting.active else set()
    refused = set()
    for line_id, names in holders.items():
        room = waiting.get(line_id, setting.annotators) if line_id in overlap else 1
        if annotator in names or len(names) >= room:
            refused.add(line_id)
    return refused


def _with_rules(db: Database, reps: pd.DataFrame, scheme) -> pd.DataFrame:
    """Rules people wrote suggest their class on the lines they match (unless people overruled them)."""
    statuses = rule_store.rule_statuses(db, scheme)
    if not statuses or reps.empty:
        return reps.assign(rule_id=np.nan, rule_accuracy=np.nan, rule_checked=np.nan)
    written = rule_store.rule_suggestions(reps, scheme, statuses)
    return reps.assign(rule_class=written["rule_class"], rule_id=written["rule_id"],
                       rule_accuracy=written["rule_accuracy"], rule_checked=written["rule_checked"])


def _item(row, group: np.ndarray) -> QueueItem:
    rule_class = row.get("rule_class")
    if isinstance(rule_class, str):
        accuracy = row["rule_accuracy"]
        return QueueItem(
            line_id=int(row["line_id"]), script_id=int(row["script_id"]), line_no=int(row["line_no"]),
            page=int(row["page"]), text=str(row["text"]), suggestion=rule_class,
            confidence=None if pd.isna(accuracy) else float(accuracy),
            group_line_ids=[int(x) for x in group], suggestion_source="rule",
            rule={"rule_id": int(row["rule_id"]), "checked": int(row["rule_checked"]),
                  "accuracy": None if pd.isna(accuracy) else round(float(accuracy), 4),
                  "model_suggestion": None if pd.isna(row["label"]) else str(row["label"])})
    return QueueItem(
        line_id=int(row["line_id"]), script_id=int(row["script_id"]), line_no=int(row["line_no"]),
        page=int(row["page"]), text=str(row["text"]),
        suggestion=None if pd.isna(row["label"]) else str(row["label"]),
        confidence=None if pd.isna(row["confidence"]) else float(row["confidence"]),
        group_line_ids=[int(x) for x in group],
    )
