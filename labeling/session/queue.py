"""The labeling queue: unlabeled lines, most useful first, near-identical lines collapsed into one item.

Plain Python over rows read from the store: a queue ranks one script's lines (or a candidate set over a
large library), and `scriptlabel queue` starts without numpy or pandas (issue 25).
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field

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


@dataclass
class PoolLine:
    """A line the queue may offer, with the newest model's suggestion: `probs` (JSON, over `classes`, JSON
    or None for LABELS) as stored, and `label`/`confidence` read through the project's scheme once ranked."""

    line_id: int
    script_id: int
    line_no: int
    page: int
    text: str
    indent: float | None
    label: str | None = None
    confidence: float | None = None
    probs: str | None = None
    classes: str | None = None


@dataclass(frozen=True)
class LabeledLine:
    text: str
    indent: float | None
    label: str


def _argmax(row: list[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)  # the first of equal maxima, as numpy's argmax


def line_kinds(pool: list[PoolLine], proba: list[list[float]]) -> list[str]:
    """Kind of each pool line for `diverse`: predicted class × layout level × text shape."""
    return [f"{_argmax(p)}|{int(float(line.indent or 0.0) // LEVEL_KIND_COLUMNS)}|{text_shape(line.text)}"
            for line, p in zip(pool, proba)]


def learned_patterns(labeled: list[LabeledLine]) -> dict[str, str]:
    """Pattern key → the label people gave it, for patterns labeled at least PATTERN_MIN_LABELS times
    with PATTERN_AGREEMENT."""
    by_key: dict[str, dict[str, int]] = {}
    for line in labeled:
        key = pattern_key(line.text, line.indent)
        if key is not None:
            counts = by_key.setdefault(key, {})
            counts[line.label] = counts.get(line.label, 0) + 1
    learned = {}
    for key, counts in by_key.items():
        total = sum(counts.values())
        label, top = max(counts.items(), key=lambda item: item[1])
        if total >= PATTERN_MIN_LABELS and top / total >= PATTERN_AGREEMENT:
            learned[key] = str(label)
    return learned


def learned_pattern_lines(pool: list[PoolLine], proba: list[list[float]], learned: dict[str, str],
                          names: tuple[str, ...] = LABELS) -> list[bool]:
    """Which pool lines are of a pattern people have labeled where the model already suggests the label
    they gave it: another label for the 16th page number teaches nothing, so these wait behind the rest."""
    if not learned:
        return [False] * len(pool)
    label_index = {label: k for k, label in enumerate(names)}
    out = []
    for line, row in zip(pool, proba):
        label = learned.get(pattern_key(line.text, line.indent))
        out.append(label is not None and label_index.get(label) == _argmax(row))
    return out


LARGE_LIBRARY = 20_000  # lines; beyond this, "every script" ranks a candidate set read through an index
CANDIDATES = 2_000
RANDOM_CANDIDATES = 500


def unlabeled_pool(db: Database, script_id: int | None = None, *, with_labeled: bool = False,
                   waiting: frozenset[int] | set[int] | dict = frozenset()):
    """Lines without a human or imported label, with the latest model prediction (if any), and the
    `waiting` lines (overlap lines others labeled that wait for one more person), in reading order.

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
        preds = model_store.latest_prediction_rows_of(db, ids)
        given: dict[int, str] = {}
    else:
        lines = script_store.queue_lines(db, script_id)
        given = label_store.labeled_lines(db, script_id)
        labeled = set(given)
        preds = model_store.latest_prediction_rows(db, script_id)
    by_line = {row[0]: row for row in preds}  # line_id, version, label, confidence, margin, probs, classes
    pool = []
    for line_id, sid, line_no, page, text, indent in lines:
        if line_id in labeled and line_id not in waiting:
            continue
        pred = by_line.get(line_id)
        pool.append(PoolLine(line_id, sid, line_no, page, text, indent,
                             *((pred[2], pred[3], pred[5], pred[6]) if pred is not None else ())))
    if not with_labeled:
        return pool
    return pool, [LabeledLine(text, indent, given[line_id])
                  for line_id, _sid, _no, _page, text, indent in lines if line_id in given]


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
        pool, labeled = unlabeled_pool(db, script_id, waiting=for_me), []
    if strategy != "script":  # a rule already gives these their label (INT./EXT. headings): asking wastes a key
        pool = [line for line in pool if rule_label(line.text) is None]
    pool = [line for line in pool if line.script_id not in hidden_scripts and line.line_id not in exclude]
    if annotator is not None:
        held = _held_elsewhere(db, annotator, tab, for_me, setting)
        pool = [line for line in pool if line.line_id not in held]
        assigned = team_store.assigned_line_ids(db, annotator)
        if assigned and any(line.line_id in assigned for line in pool):
            pool = [line for line in pool if line.line_id in assigned]
    if not pool:
        raise EmptyPoolError("every line is labeled (or being labeled by someone else): nothing left in the queue")
    # One item per group of identical lines of a script: its first line stands for the group.
    groups: dict[tuple[int, str], list[int]] = {}
    reps: list[PoolLine] = []
    for line in pool:
        group = groups.setdefault((line.script_id, identical_key(line.text, line.indent)), [])
        if not group:
            reps.append(line)
        group.append(line.line_id)
    members = list(groups.values())  # in order of first appearance: members[i] is reps[i]'s group
    scheme = load_scheme(db)
    proba = _scheme_proba(reps, scheme)
    statuses = _rule_statuses(db, reps, scheme)
    if strategy == "script":
        return [_item(reps[i], members[i], statuses[i]) for i in range(min(n, len(reps)))]
    scores = score(proba, strategy, seed=seed)
    if strategy != "random":  # a group stands for many lines: one answer labels them all, so it is worth more
        scores = [s * (1.0 + 0.1 * math.log1p(len(group) - 1)) for s, group in zip(scores, members)]
    if strategy == "diverse":
        labeled = [LabeledLine(line.text, line.indent, label)
                   for line, label in zip(labeled, scheme.map_values(line.label for line in labeled))]
        waiting = learned_pattern_lines(reps, proba, learned_patterns(labeled), scheme.names)
        rest = [i for i, wait in enumerate(waiting) if not wait]
        ranked = [rest[j] for j in diverse_select(
            [scores[i] for i in rest], line_kinds([reps[i] for i in rest], [proba[i] for i in rest]), len(rest),
            shortlist=max(SHORTLIST_PER_ITEM * n, SHORTLIST_MIN))] if rest else []
        later = [i for i, wait in enumerate(waiting) if wait]
        ranked += sorted(later, key=lambda i: -scores[i])
    else:
        ranked = select(scores, len(scores))
    order = mix_random(ranked, len(reps), n=n, random_share=random_share if strategy != "random" else 0.0,
                       rng=random.Random(seed))
    if for_me:  # overlap lines that wait for this person: agreement needs them labeled, so they come first
        first = [i for i in ranked if reps[i].line_id in for_me]
        taken = set(first)
        order = (first + [i for i in order if i not in taken])[:n]
    return [_item(reps[i], members[i], statuses[i]) for i in order]


def _scheme_proba(reps: list[PoolLine], scheme) -> list[list[float]]:
    """Each line's probabilities read as the project's classes (a merged class: the sum of its members');
    uniform for a line without a prediction. Sets each predicted line's suggestion and confidence to the
    scheme's likeliest class."""
    k = len(scheme.names)
    out = []
    for line in reps:
        if line.probs is None:
            out.append([1.0 / k] * k)
            continue
        row = scheme.project_row(json.loads(line.probs), json.loads(line.classes) if line.classes else LABELS)
        best = _argmax(row)
        line.label, line.confidence = scheme.names[best], row[best]
        out.append(row)
    return out


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


def _rule_statuses(db: Database, reps: list[PoolLine], scheme) -> list[tuple | None]:
    """Per line, (class, status) of the rule people wrote that suggests its class (store/label_rules.py),
    None where none does (or people overruled it)."""
    statuses = rule_store.rule_statuses(db, scheme)
    if not statuses:
        return [None] * len(reps)
    found = rule_store.rule_matches([line.text for line in reps], [line.indent for line in reps], scheme, statuses)
    return [None if status is None else (scheme.class_of(status.rule.class_name), status) for status in found]


def _item(line: PoolLine, group: list[int], rule: tuple | None) -> QueueItem:
    if rule is not None:
        rule_class, status = rule
        accuracy = status.accuracy
        return QueueItem(
            line_id=line.line_id, script_id=line.script_id, line_no=line.line_no, page=line.page, text=line.text,
            suggestion=rule_class, confidence=accuracy, group_line_ids=list(group),
            suggestion_source="rule",
            rule={"rule_id": status.rule.rule_id, "checked": status.checked,
                  "accuracy": None if accuracy is None else round(accuracy, 4), "model_suggestion": line.label})
    return QueueItem(line_id=line.line_id, script_id=line.script_id, line_no=line.line_no, page=line.page,
                     text=line.text, suggestion=line.label, confidence=line.confidence, group_line_ids=list(group))
