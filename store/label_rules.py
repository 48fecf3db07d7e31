"""Rules people write: a regular expression over a line's text (and optionally an indent range) that
suggests a class. A rule labels the lines it matches with source `rule` (effective label: human >
imported > accepted > rule > model), until people disagree with it.

How a rule yields: on the lines it matches that people labeled (human or imported labels, read through
the scheme), its accuracy is the share whose label is the rule's class. Once at least
`YIELD_MIN_DISAGREE` of those labels disagree and they are more than `YIELD_MAX_DISAGREEMENT` of them,
the rule is *overruled*: its lines show the model's suggestion again (the rule stays listed, with its
accuracy, so a lead can fix or remove it).

Patterns run on the `regex` package with a per-line timeout, so a pattern that backtracks
catastrophically cannot hang a page: it is refused when added (tried on probe lines and the library's
lines), and a rule that still times out on some line is skipped as if it had not matched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlite_utils import Database

from store.db import immediate, now
from store.types import NotFoundError, ScriptlabelError

if TYPE_CHECKING:  # pandas only for the frame wrapper: the CLI's queue matches rules on plain rows
    import pandas as pd

MATCH_TIMEOUT_S = 0.02  # per line; a line is at most a few hundred characters
YIELD_MIN_DISAGREE = 3
YIELD_MAX_DISAGREEMENT = 0.2
MAX_PATTERN = 500
# Lines a catastrophic pattern chokes on: long runs of one character, of words, of spaces.
PROBES = ("a" * 3000 + "!", "A" * 3000 + "!", " " * 3000 + "!", "ab " * 1000 + "!", "1" * 3000 + "!",
          "(" * 1000 + "!")


class RuleError(ScriptlabelError, ValueError):
    """A rule that cannot be stored as written; the message says what to change."""


@dataclass(frozen=True)
class LabelRule:
    rule_id: int
    class_name: str
    pattern: str
    indent_min: float | None
    indent_max: float | None
    created_by: str
    created_at: str

    def as_json(self) -> dict:
        return {"rule_id": self.rule_id, "class": self.class_name, "pattern": self.pattern,
                "indent": indent_text(self.indent_min, self.indent_max), "created_by": self.created_by,
                "created_at": self.created_at}


@dataclass(frozen=True)
class RuleStatus:
    """A rule with how it fares against people's labels on the lines it matches."""

    rule: LabelRule
    checked: int  # people-labeled lines it matches
    agree: int  # of those, labeled as the rule's class
    overruled: bool
    slow: bool = False  # timed out on some line: skipped there

    @property
    def accuracy(self) -> float | None:
        return self.agree / self.checked if self.checked else None

    def as_json(self) -> dict:
        return {**self.rule.as_json(), "checked": self.checked, "agree": self.agree,
                "accuracy": None if self.accuracy is None else round(self.accuracy, 4),
                "status": "overruled" if self.overruled else "active", "slow": self.slow}


def indent_text(lo: float | None, hi: float | None) -> str | None:
    if lo is None and hi is None:
        return None
    if lo == hi:
        return f"{lo:g}"
    return f"{'' if lo is None else f'{lo:g}'}-{'' if hi is None else f'{hi:g}'}"


@lru_cache(maxsize=256)
def compiled(pattern: str):
    import regex  # only where a project has rules: the queue of one without starts without it

    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise RuleError(f"pattern {pattern[:60]!r} is not a valid regular expression ({exc}): fix it") from None


def match_lines(rule: LabelRule, texts, indents) -> tuple[list[bool], bool]:
    """(whether the rule matches each line, whether some line timed out and was skipped)."""
    rx = compiled(rule.pattern)
    out = [False] * len(texts)
    slow = False
    lo = -math.inf if rule.indent_min is None else rule.indent_min
    hi = math.inf if rule.indent_max is None else rule.indent_max
    for i, (text, indent) in enumerate(zip(texts, indents)):
        if rule.indent_min is not None or rule.indent_max is not None:
            level = round(float(indent)) if indent is not None and indent == indent else None
            if level is None or not lo <= level <= hi:
                continue
        try:
            out[i] = rx.search(str(text or ""), timeout=MATCH_TIMEOUT_S) is not None
        except TimeoutError:
            slow = True
    return out, slow


def check_pattern(pattern: str, sample_texts=()) -> None:
    """Refuse a pattern that is invalid, empty-matching everything, or too slow on probe or library lines."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise RuleError("give a pattern (a regular expression over the line's text), e.g. '^(ANGLE ON|CLOSE ON)'")
    if len(pattern) > MAX_PATTERN:
        raise RuleError(f"pattern of {len(pattern)} characters: keep it under {MAX_PATTERN}")
    rx = compiled(pattern)
    for text in (*PROBES, *sample_texts):
        try:
            rx.search(text, timeout=MATCH_TIMEOUT_S * 5)
        except TimeoutError:
            raise RuleError(f"pattern {pattern[:60]!r} takes too long on a line like {text[:30]!r}… (nested "
                            "repeats such as (a+)+ backtrack without end): simplify it") from None


def library_sample(db: Database, n: int) -> list[str]:
    """Lines a new pattern is tried on: the library's longest (where backtracking hurts most), then others."""
    longest = [r[0] for r in db.execute("SELECT text FROM lines ORDER BY length(text) DESC LIMIT ?", [n // 5])]
    some = [r[0] for r in db.execute("SELECT text FROM lines LIMIT ?", [n - len(longest)])]
    return longest + some


# --- the table ---------------------------------------------------------------------------------

def _rule(row: dict) -> LabelRule:
    return LabelRule(int(row["rule_id"]), row["class_name"], row["pattern"], row["indent_min"], row["indent_max"],
                     row["created_by"], row["created_at"])


def rules(db: Database) -> list[LabelRule]:
    """Rules not removed, oldest first (where two match one line, the older one labels it)."""
    if "label_rules" not in db.table_names():
        return []
    return [_rule(r) for r in db.query("SELECT * FROM label_rules WHERE removed_at IS NULL ORDER BY rule_id")]


def active_rule_classes(db: Database) -> set[str]:
    return {r.class_name.lower() for r in rules(db)}


def get_rule(db: Database, rule_id: int) -> dict:
    rows = list(db.query("SELECT * FROM label_rules WHERE rule_id = ?", [rule_id]))
    if not rows:
        raise NotFoundError(f"no rule {rule_id}: list them with `scriptlabel rule list`")
    return rows[0]


def _audit(db: Database, actor: str, action: str, detail: dict) -> None:
    db.execute("INSERT INTO audit_log(at, actor, action, script_id, detail) VALUES (?,?,?,?,?)",
               [now(), actor or "anonymous", action, None, json.dumps(detail, ensure_ascii=False)[:20000]])


def add_rule(db: Database, *, class_name: str, pattern: str, indent_min: float | None, indent_max: float | None,
             actor: str) -> LabelRule:
    """Store a rule (the caller checked the class and the pattern); the same rule twice is stored once."""
    with immediate(db):
        same = list(db.query(
            "SELECT * FROM label_rules WHERE removed_at IS NULL AND lower(class_name) = lower(?) AND pattern = ? "
            "AND indent_min IS ? AND indent_max IS ?", [class_name, pattern, indent_min, indent_max]))
        if same:
            return _rule(same[0])
        cursor = db.execute(
            "INSERT INTO label_rules(class_name, pattern, indent_min, indent_max, created_by, created_at) "
            "VALUES (?,?,?,?,?,?)", [class_name, pattern, indent_min, indent_max, actor, now()])
        rule = _rule(get_rule(db, int(cursor.lastrowid)))
        _audit(db, actor, "rule.add", {"before": None, "after": rule.as_json()})
    return rule


def remove_rule(db: Database, rule_id: int, *, actor: str) -> dict:
    """Stamp a rule removed (idempotent: removing it again changes nothing)."""
    with immediate(db):
        row = get_rule(db, rule_id)
        if row["removed_at"] is not None:
            return {"rule_id": rule_id, "status": "already_removed"}
        db.execute("UPDATE label_rules SET removed_at = ?, removed_by = ? WHERE rule_id = ?", [now(), actor, rule_id])
        _audit(db, actor, "rule.remove", {"before": _rule(row).as_json(), "after": None})
    return {"rule_id": rule_id, "status": "removed"}


# --- how rules fare against people's labels --------------------------------------------------------

def _people_labeled_lines(db: Database) -> list[tuple]:
    """(line_id, text, indent, label) of every line people labeled: the latest human label not undone, else
    the latest imported one (store.labels.current_labels' rule, read here in one query)."""
    return db.execute(
        """SELECT line_id, text, indent, label FROM (
               SELECT e.line_id, l.text, l.indent, e.label,
                      ROW_NUMBER() OVER (PARTITION BY e.line_id ORDER BY e.source = 'human' DESC, e.event_id DESC) AS rank
               FROM label_events e JOIN lines l ON l.line_id = e.line_id
               WHERE e.action = 'set' AND e.source IN ('human', 'imported')
                 AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id))
           WHERE rank = 1""").fetchall()


_STATUS_CACHE: dict[str, tuple[tuple, list]] = {}  # database file → (what the statuses were read from, statuses)


def rule_statuses(db: Database, scheme) -> list[RuleStatus]:
    """Every rule with its accuracy on the lines people labeled that it matches, and whether it yields.

    Read on every page and queue top-up, so kept per database until a label event, a text edit, a rule
    or the scheme changes."""
    found = rules(db)
    if not found:
        return []
    from store.connection import db_file

    token = (tuple(db.execute("SELECT COALESCE(MAX(event_id), 0), COUNT(*), (SELECT COUNT(*) FROM text_edits) "
                              "FROM label_events").fetchone()), tuple(found), json.dumps(scheme.as_json()))
    key = str(db_file(db) or id(db))
    cached = _STATUS_CACHE.get(key)
    if cached is not None and cached[0] == token:
        return cached[1]
    out = _statuses(db, scheme, found)
    _STATUS_CACHE[key] = (token, out)
    return out


def _statuses(db: Database, scheme, found: list[LabelRule]) -> list[RuleStatus]:
    labeled = _people_labeled_lines(db)
    classes = scheme.map_values([label for _line, _text, _indent, label in labeled])
    texts, indents = [r[1] for r in labeled], [r[2] for r in labeled]
    out = []
    for rule in found:
        mask, slow = match_lines(rule, texts, indents)
        target = scheme.class_of(rule.class_name)
        checked = sum(mask)
        agree = sum(1 for hit, cls in zip(mask, classes) if hit and cls == target)
        disagree = checked - agree
        overruled = disagree >= YIELD_MIN_DISAGREE and disagree / max(checked, 1) > YIELD_MAX_DISAGREEMENT
        out.append(RuleStatus(rule, checked, agree, overruled, slow))
    return out


def rule_matches(texts, indents, scheme, statuses: list[RuleStatus]) -> list[RuleStatus | None]:
    """For each line (its text and indent): the status of the oldest active rule matching it, None where
    none does (a rule whose class the scheme no longer has, or that people overruled, matches nothing)."""
    out: list[RuleStatus | None] = [None] * len(texts)
    open_rows = list(range(len(texts)))
    for status in statuses:
        if status.overruled or not open_rows or scheme.class_of(status.rule.class_name) is None:
            continue
        mask, _slow = match_lines(status.rule, [texts[i] for i in open_rows], [indents[i] for i in open_rows])
        for row, hit in zip(open_rows, mask):
            if hit:
                out[row] = status
        open_rows = [row for row, hit in zip(open_rows, mask) if not hit]
    return out


def rule_suggestions(frame: pd.DataFrame, scheme, statuses: list[RuleStatus]) -> pd.DataFrame:
    """For each row of `frame` (text, indent): the class of the oldest active rule matching it, its rule_id
    and that rule's accuracy (NaN where none matches)."""
    import pandas as pd

    indents = frame["indent"].tolist() if "indent" in frame else [None] * len(frame)
    found = rule_matches(frame["text"].tolist(), indents, scheme, statuses)
    nan = float("nan")
    return pd.DataFrame({
        "rule_class": pd.Series([None if s is None else scheme.class_of(s.rule.class_name) for s in found],
                                dtype=object, index=frame.index),
        "rule_id": [nan if s is None else s.rule.rule_id for s in found],
        "rule_accuracy": [nan if s is None or s.accuracy is None else s.accuracy for s in found],
        "rule_checked": [nan if s is None else s.checked for s in found]}, index=frame.index)
