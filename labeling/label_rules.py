"""Rules people write (store/label_rules.py): a lead types a pattern for a class; the rule labels the lines
it matches (source `rule`) and shows its accuracy against people's labels until they overrule it.
Lead or admin only; each change is audited. The CLI's `rule` group and the Models page call these.
"""

from __future__ import annotations

import re

import pandas as pd
from sqlite_utils import Database

from labeling.accounts.access import Identity, require
from store import label_rules as rule_store
from store import scripts as script_store
from store.label_rules import RuleError, RuleStatus
from store.scheme import load_scheme
from store.types import UnknownLabelError

_INDENT = re.compile(r"^\s*(\d{1,3}(?:\.\d+)?)?\s*(?:(-|:|\.\.)\s*(\d{1,3}(?:\.\d+)?)?)?\s*$")
SAMPLE_LINES = 3000  # library lines a new pattern is tried on (besides the probes) before it is stored


def parse_indent(text: str | None) -> tuple[float | None, float | None]:
    """`12` (that indent level, in character columns), `20-30` / `20:30` (a range), `-10`, `40-` (open)."""
    if text is None or str(text).strip() == "":
        return None, None
    m = _INDENT.match(str(text))
    if not m or (m.group(1) is None and m.group(3) is None):
        raise RuleError(f"indent {str(text)[:20]!r}: give a column like 12 or a range like 20-30")
    lo = float(m.group(1)) if m.group(1) is not None else None
    hi = float(m.group(3)) if m.group(3) is not None else None
    if m.group(2) is None:
        hi = lo
    if lo is not None and hi is not None and lo > hi:
        raise RuleError(f"indent {text!r}: the range's start is after its end")
    return lo, hi


def add_rule(db: Database, identity: Identity, class_name: str, pattern: str, *, indent: str | None = None
             ) -> RuleStatus:
    """Check and store a rule (the same rule twice is stored once); returns it with its accuracy so far."""
    require(identity, "scheme")
    scheme = load_scheme(db)
    try:
        name = scheme.parse(class_name)
    except UnknownLabelError as exc:
        raise RuleError(f"rule for {exc}") from None
    lo, hi = parse_indent(indent)
    rule_store.check_pattern(pattern, rule_store.library_sample(db, SAMPLE_LINES))
    rule = rule_store.add_rule(db, class_name=name, pattern=pattern, indent_min=lo, indent_max=hi,
                               actor=identity.name)
    return next(s for s in rule_store.rule_statuses(db, scheme) if s.rule.rule_id == rule.rule_id)


def remove_rule(db: Database, identity: Identity, rule_id: int) -> dict:
    require(identity, "scheme")
    return rule_store.remove_rule(db, rule_id, actor=identity.name)


def list_rules(db: Database, *, count_matches: bool = True) -> list[dict]:
    """Every rule with its accuracy, whether people overruled it, and how many lines of the library it matches."""
    scheme = load_scheme(db)
    statuses = rule_store.rule_statuses(db, scheme)
    out = [s.as_json() | {"reads_as": scheme.class_of(s.rule.class_name)} for s in statuses]
    if count_matches and statuses:
        lines = pd.concat([script_store.lines_frame(db, sid)[["text", "indent"]]
                           for sid in script_store.visible_script_ids(db)] or [pd.DataFrame(columns=["text", "indent"])],
                          ignore_index=True)
        for row, status in zip(out, statuses):
            mask, slow = rule_store.match_lines(status.rule, lines["text"].tolist(), lines["indent"].tolist())
            row["matches"] = sum(mask)
            row["slow"] = row["slow"] or slow
    return out
