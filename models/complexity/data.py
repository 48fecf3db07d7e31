"""Typed inputs and outputs of the sequence-complexity models (no Keras here).

A sequence reaches the models as a `SequenceDoc`: its text split into the study's three components
(descriptions, dialogue, character cues) plus a few counts. Predictions leave as
`ComplexityPrediction`s carrying class probabilities, an expected rating and an uncertainty score,
so unrated sequences can be offered most-uncertain first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from store.rules import HEADING, character_name
from store.types import BREAKDOWN_TAGS, ScriptlabelError

COMPONENTS: tuple[str, ...] = ("descriptions", "dialogue", "characters")
COUNT_KEYS: tuple[str, ...] = (
    "distinct_characters",
    "scene_heading_lines",
    "action_lines",
    "character_lines",
    "dialogue_lines",
    "parenthetical_lines",
    "transition_lines",
    "words",
    "page_eighths",
)
RATINGS: tuple[int, ...] = (1, 2, 3, 4, 5)
# Breakdown elements, the second kind of sequence label (multi-label, one-vs-rest).
# A stored line is a non-blank line; a screenplay page holds ~56 of them, so 1/8 page ≈ 7 lines.
LINES_PER_EIGHTH = 7
MIN_RATED = 8

# (V.O.), (O.S.), (CONT'D), (cont'd), (V.O.) (CONT'D), "CONT'D" without parentheses...


class TooFewRatingsError(ScriptlabelError, ValueError):
    """Not enough rated sequences (or only one rating value) to train or evaluate honestly."""


@dataclass(frozen=True)
class SequenceDoc:
    """One sequence as the complexity models see it."""

    sequence_id: Any
    descriptions: list[str] = field(default_factory=list)
    dialogue: list[str] = field(default_factory=list)
    characters: list[str] = field(default_factory=list)
    counts: dict[str, float] = field(default_factory=dict)

    def component(self, name: str) -> list[str]:
        if name not in COMPONENTS:
            raise ValueError(f"unknown component {name!r}: use one of {', '.join(COMPONENTS)}")
        return getattr(self, name)


@dataclass(frozen=True)
class ComplexityPrediction:
    """A model's belief about one sequence's rating (or tags)."""

    sequence_id: Any
    probabilities: dict[Any, float]  # rating value (or tag) -> probability
    predicted: Any  # most probable rating; for tags, the tuple of tags with p >= 0.5
    expected: float | None  # probability-weighted rating; None for tags
    std: float | None  # predictive std of the rating; None for tags
    uncertainty: float  # normalized entropy in [0, 1]: 1 = knows nothing


def docs_from_labeled_lines(rows: Iterable[Sequence | Mapping]) -> list[SequenceDoc]:
    """Build one SequenceDoc per sequence from labeled lines, in order of first appearance.

    Each row is `(sequence_id, label, text, page)` or a mapping with those keys; labels are the
    seven of `store.types.LineLabel`. scene_heading + action -> descriptions, dialogue +
    parenthetical -> dialogue, character -> characters; transition and other lines add only to
    their counts. Page eighths are estimated from the number of non-`other` lines.
    """
    grouped: dict[Any, list[tuple[str, str]]] = {}
    for row in rows:
        if isinstance(row, Mapping):
            seq, label, text = row["sequence_id"], row["label"], row["text"]
        else:
            seq, label, text = row[0], row[1], row[2]
        grouped.setdefault(seq, []).append((str(label), str(text or "")))
    return [_doc_from_lines(seq, lines) for seq, lines in grouped.items()]


def _doc_from_lines(sequence_id: Any, lines: list[tuple[str, str]]) -> SequenceDoc:
    descriptions, dialogue, characters = [], [], []
    per_label: dict[str, int] = {}
    words = 0
    for label, text in lines:
        per_label[label] = per_label.get(label, 0) + 1
        if label in ("scene_heading", "action"):
            descriptions.append(text)
        elif label in ("dialogue", "parenthetical"):
            dialogue.append(text)
        elif label == "character":
            characters.append(text)
        if label != "other":
            words += len(text.split())
    content_lines = sum(n for label, n in per_label.items() if label != "other")
    counts = {
        "distinct_characters": float(len({character_name(c) for c in characters} - {""})),
        "words": float(words),
        "page_eighths": float(max(1, math.ceil(content_lines / LINES_PER_EIGHTH))),
    }
    for label in ("scene_heading", "action", "character", "dialogue", "parenthetical", "transition"):
        counts[f"{label}_lines"] = float(per_label.get(label, 0))
    return SequenceDoc(sequence_id, descriptions, dialogue, characters,
                       {k: counts[k] for k in COUNT_KEYS})


def count_matrix(docs: Sequence[SequenceDoc], keys: Sequence[str] = COUNT_KEYS) -> np.ndarray:
    """(n, len(keys)) float array of counts; a missing count is 0."""
    return np.array([[float(d.counts.get(k, 0.0)) for k in keys] for d in docs], dtype=float).reshape(
        len(docs), len(keys)
    )


def check_ratings(ratings: Sequence, *, min_rated: int = MIN_RATED, what: str = "sequences") -> None:
    """Raise TooFewRatingsError unless there are >= min_rated ratings with >= 2 distinct values."""
    values = [r for r in ratings if r is not None]
    if len(values) < min_rated:
        raise TooFewRatingsError(
            f"only {len(values)} rated {what}; rate at least {min_rated} (with more than one "
            "rating value) before training or evaluating a complexity model"
        )
    distinct = sorted(set(values))
    if len(distinct) < 2:
        raise TooFewRatingsError(
            f"all {len(values)} rated {what} have the same rating ({distinct[0]}); a model cannot "
            "learn from one class: rate some sequences that are simpler or more complex"
        )


def as_targets(y) -> tuple[np.ndarray, bool]:
    """Training targets as an array and whether they are multi-label (an (n, n_tags) 0/1 matrix).

    Raises TooFewRatingsError when 1-D ratings hold a single value: nothing to learn.
    """
    y = np.asarray(y)
    multilabel = y.ndim == 2
    if not multilabel and len(np.unique(y)) < 2:
        raise TooFewRatingsError(
            f"all {len(y)} training sequences have the rating {y[0] if len(y) else None}; "
            "rate sequences of at least two complexity levels before training"
        )
    return y, multilabel


def check_tags(y: np.ndarray, *, min_rated: int = MIN_RATED) -> None:
    """Raise TooFewRatingsError unless some tag has both positive and negative sequences."""
    y = np.asarray(y)
    if y.ndim != 2 or len(y) < min_rated:
        raise TooFewRatingsError(
            f"only {len(y)} tagged sequences; tag at least {min_rated} before training"
        )
    if not ((y.sum(0) > 0) & (y.sum(0) < len(y))).any():
        raise TooFewRatingsError(
            "no tag is present on some sequences and absent on others; tag a few more sequences"
        )


def tag_matrix(tag_sets: Sequence[Iterable[str]], tags: Sequence[str]) -> np.ndarray:
    """(n, len(tags)) 0/1 matrix from each sequence's set of tags."""
    index = {t: i for i, t in enumerate(tags)}
    y = np.zeros((len(tag_sets), len(tags)), dtype=int)
    for row, tag_set in enumerate(tag_sets):
        for tag in tag_set:
            if tag in index:
                y[row, index[tag]] = 1
    return y


def normalized_entropy(proba: np.ndarray) -> np.ndarray:
    """Entropy of each row of (n, k) probabilities divided by log(k): 0 sure, 1 uniform."""
    p = np.clip(np.asarray(proba, dtype=float), 1e-12, 1.0)
    k = p.shape[1]
    if k < 2:
        return np.zeros(len(p))
    return -(p * np.log(p)).sum(1) / math.log(k)


def predict_with_uncertainty(
    model: Any, docs: Sequence[SequenceDoc], *, tags: Sequence[str] | None = None
) -> list[ComplexityPrediction]:
    """Predictions with probabilities, expected rating and uncertainty for every doc.

    `model` is any fitted estimator here (baseline or BiLSTM). For a rating model the columns of
    predict_proba follow `model.classes_` (the rating values seen in training); for a tag model pass
    `tags` (the column names) and uncertainty is the mean binary entropy over tags.
    """
    proba = np.asarray(model.predict_proba(list(docs)), dtype=float)
    out: list[ComplexityPrediction] = []
    if tags is not None:
        p = np.clip(proba, 1e-12, 1 - 1e-12)
        binary_entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p)).mean(1)
        for doc, row, u in zip(docs, proba, binary_entropy):
            out.append(ComplexityPrediction(
                doc.sequence_id, {t: float(v) for t, v in zip(tags, row)},
                tuple(t for t, v in zip(tags, row) if v >= 0.5), None, None, float(u),
            ))
        return out
    classes = np.asarray(model.classes_)
    values = classes.astype(float)
    expected = proba @ values
    std = np.sqrt(np.clip(proba @ values**2 - expected**2, 0.0, None))
    entropy = normalized_entropy(proba)
    for doc, row, e, s, u in zip(docs, proba, expected, std, entropy):
        out.append(ComplexityPrediction(
            doc.sequence_id, {_plain(c): float(v) for c, v in zip(classes, row)},
            _plain(classes[int(np.argmax(row))]), float(e), float(s), float(u),
        ))
    return out


def most_uncertain_first(predictions: Sequence[ComplexityPrediction]) -> list[ComplexityPrediction]:
    """Order predictions for rating: highest uncertainty first, then widest rating spread."""
    return sorted(predictions, key=lambda p: (-p.uncertainty, -(p.std or 0.0)))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- Heuristic line split: for documents with no line model at hand (benches, quick looks). ---

_TRANSITION = re.compile(r"(\bTO:|^FADE (IN|OUT)|^DISSOLVE|^INTERCUT|^CUT TO)", re.IGNORECASE)
_OTHER = re.compile(r"^(\d+\.?|\(?CONTINUED\)?:?|\(MORE\)|CONTINUED:.*|-+)$", re.IGNORECASE)


def heuristic_labeled_rows(text: str, *, sequence_id: Any = None) -> list[tuple[Any, str, str, int]]:
    """Label a plain-text screenplay's lines by layout alone: rows for docs_from_labeled_lines.

    Not the line classifier: a rough split by uppercase, indentation and blank lines. A cue is a
    short uppercase line indented past the action margin (or directly followed by text); the lines
    after it up to the next blank line are dialogue. With `sequence_id=None` every scene heading
    starts a new sequence numbered from 0 (lines before the first heading are sequence 0); otherwise
    every line goes to `sequence_id` (one document).
    """
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    indents = [len(l.expandtabs()) - len(l.expandtabs().lstrip()) for l in raw_lines]
    nonblank = [i for i, l in zip(indents, raw_lines) if l.strip()]
    # The action margin: the smallest indent that a sizeable share of lines use.
    base = min((i for i in set(nonblank) if nonblank.count(i) >= 0.1 * len(nonblank)), default=0)
    rows: list[tuple[Any, str, str, int]] = []
    page, seq, in_dialogue = 1, 0, False
    for n, (line, indent) in enumerate(zip(raw_lines, indents)):
        page += line.count("\f")
        s = line.replace("\f", "").strip()
        if not s:
            in_dialogue = False
            continue
        letters = [ch for ch in s if ch.isalpha()]
        upper = bool(letters) and all(ch.isupper() for ch in letters)
        nxt = raw_lines[n + 1].strip() if n + 1 < len(raw_lines) else ""
        if _OTHER.match(s):
            label = "other"
        elif HEADING.match(s):
            label, in_dialogue = "scene_heading", False
            if sequence_id is None and rows:
                seq += 1
        elif upper and _TRANSITION.search(s):
            label, in_dialogue = "transition", False
        elif upper and len(s) <= 40 and len(s.split()) <= 5 and (
            indent >= base + 8 or (nxt and not nxt.isupper())
        ):
            label, in_dialogue = "character", True
        elif in_dialogue:
            label = "parenthetical" if s.startswith("(") and indent > base else "dialogue"
        else:
            label = "action"
        rows.append((seq if sequence_id is None else sequence_id, label, s, page))
    return rows


# --- Planted signal: synthetic sequences whose rating is a known function of their content. ---

_FX = {"explosion": "destruction", "water": "water", "fire": "fire", "crowd": "crowd",
       "truck": "vehicles", "dragon": "creatures", "storm": "weather"}
# The breakdown tags the FX words stand for, in the order of store.types.BREAKDOWN_TAGS.
PLANTED_TAGS = tuple(tag for tag in BREAKDOWN_TAGS if tag in _FX.values())
_FILLER = ("the room is quiet she looks at him they walk across the street a door opens "
           "he sits down light falls on the table someone laughs nearby the clock ticks").split()
_NAMES = ("TIM", "ANNA", "MAX", "ROSA", "OLD MAN", "DR. LEE", "KIT", "JUNE", "OMAR", "BEA")


def planted_docs(n: int = 60, *, seed: int = 0) -> tuple[list[SequenceDoc], np.ndarray, np.ndarray]:
    """`n` synthetic sequences, their ratings (1-5) and tag matrix (columns = PLANTED_TAGS).

    The rating is a known function of the content: 0.5 x (distinct characters - 1) + number of FX
    words (explosion, water, fire, crowd, truck, dragon, storm) in the descriptions, binned to 1-5.
    A tag is on when its FX word occurs. For tests and benches of the models, never for training.
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[Any, str, str, int]] = []
    latents, tag_sets = [], []
    for seq in range(n):
        cast = list(rng.choice(_NAMES, size=int(rng.integers(1, 7)), replace=False))
        fx = list(rng.choice(list(_FX), size=int(rng.integers(0, 4)), replace=False))
        latents.append(0.5 * (len(cast) - 1) + len(fx))
        tag_sets.append({_FX[w] for w in fx})
        rows.append((seq, "scene_heading", f"INT. PLACE {seq} - DAY", 1))
        words = list(rng.choice(_FILLER, size=int(rng.integers(20, 40)))) + fx
        rng.shuffle(words)
        for start in range(0, len(words), 10):
            rows.append((seq, "action", " ".join(words[start:start + 10]), 1))
        for turn in range(int(rng.integers(len(cast), 2 * len(cast) + 2))):
            name = cast[turn % len(cast)]
            rows.append((seq, "character", name + (" (CONT'D)" if rng.random() < 0.2 else ""), 1))
            rows.append((seq, "dialogue", " ".join(rng.choice(_FILLER, size=6)), 1))
    ratings = 1 + np.digitize(np.array(latents), [1.0, 2.0, 3.0, 4.0])
    return docs_from_labeled_lines(rows), ratings.astype(int), tag_matrix(tag_sets, PLANTED_TAGS)
