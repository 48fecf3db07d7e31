"""Overlap: a share of lines (or of whole scripts) that N different people label on their own.

Which lines overlap is decided by a hash of the line id (of the script id with scope "scripts") below the
share, so the choice is the same on every machine and stays put as people label; the queue of each
person (labeling.session.queue) offers an overlap line until N people labeled it, never to someone who
labeled it already, and never shows the others' labels; claims let N people hold it at once.
Sequences overlap the same way for ratings: N leads per sequence and department.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sqlite_utils import Database

from store import team as team_store
from store.types import ScriptlabelError

if TYPE_CHECKING:  # only a lead's change needs them: the command line's queue reads overlap without
    from labeling.accounts import access

SETTING = "overlap"
SCOPES = ("lines", "scripts")
MAX_PEOPLE = 10


class OverlapSettingError(ScriptlabelError):
    """An overlap setting out of range."""


@dataclass(frozen=True)
class OverlapSetting:
    share: float = 0.0  # 0–1 of lines (or scripts) labeled by `annotators` people each
    annotators: int = 2
    scope: str = "lines"  # "lines" or "scripts" (whole scripts overlap)

    @property
    def active(self) -> bool:
        return self.share > 0 and self.annotators >= 2

    def covers(self, *, line_id: int, script_id: int) -> bool:
        if not self.active:
            return False
        return team_store.overlap_hash(script_id if self.scope == "scripts" else line_id) < self.share

    def as_json(self) -> dict:
        return asdict(self)


def check(share: float, annotators: int, scope: str) -> OverlapSetting:
    try:
        share, annotators = float(share), int(annotators)
    except (TypeError, ValueError):
        raise OverlapSettingError("overlap: give the share as a number 0-1 and the people as a whole number") from None
    if not 0.0 <= share <= 1.0:
        raise OverlapSettingError(f"overlap share {share:g} is outside 0-1: e.g. 0.1 for a tenth of the lines")
    if not 2 <= annotators <= MAX_PEOPLE:
        raise OverlapSettingError(f"--annotators {annotators}: overlap needs 2 to {MAX_PEOPLE} people per line")
    if scope not in SCOPES:
        raise OverlapSettingError(f"overlap scope {scope!r}: use one of {', '.join(SCOPES)}")
    return OverlapSetting(share=share, annotators=annotators, scope=scope)


def get_overlap(db: Database) -> OverlapSetting:
    stored = team_store.get_setting(db, SETTING)
    if not isinstance(stored, dict):
        return OverlapSetting()
    return OverlapSetting(share=float(stored.get("share", 0.0)), annotators=int(stored.get("annotators", 2)),
                          scope=str(stored.get("scope", "lines")))


def set_overlap(db: Database, who: access.Identity, *, share: float, annotators: int = 2,
                scope: str = "lines") -> OverlapSetting:
    """Set the project's overlap (a lead's decision), recorded in the audit log with before and after."""
    from labeling.accounts import access
    from store import accounts

    access.require(who, "overlap")
    setting = check(share, annotators, scope)
    change = team_store.set_setting(db, SETTING, setting.as_json(), by=who.name)
    if change["before"] != change["after"]:
        accounts.audit(db, who.name, "overlap", detail=change)
    return setting


def waiting_lines(db: Database, annotator: str, *, script_id: int | None = None,
                  setting: OverlapSetting | None = None) -> dict[int, int]:
    """Overlap lines others labeled that `annotator` has not, still short of N people: line_id → how many
    more people it waits for."""
    setting = setting or get_overlap(db)
    if not setting.active or not annotator:
        return {}
    done = team_store.overlap_waiting(db, annotator=annotator, share=setting.share, people=setting.annotators,
                                      by_script=setting.scope == "scripts", script_id=script_id)
    return {line_id: setting.annotators - n for line_id, n in done.items()}


def shared_capacity(db: Database, line_ids: list[int], annotator: str,
                    setting: OverlapSetting | None = None) -> dict[int, int]:
    """For claims: line_id → how many people may hold each overlap line at once (those who did not label
    it yet, up to N); lines outside the overlap are absent (one holder)."""
    setting = setting or get_overlap(db)
    if not setting.active or not line_ids:
        return {}
    from store import scripts as script_store

    script_of = {r["line_id"]: r["script_id"] for r in script_store.lines_by_id(db, sorted(set(line_ids)))}
    overlap = [i for i in line_ids if i in script_of and setting.covers(line_id=i, script_id=script_of[i])]
    labeled = team_store.human_labelers(db, overlap)
    return {i: max(1, setting.annotators - len(labeled.get(i, set()) - {annotator})) for i in overlap}


def overlap_line_ids(db: Database, line_ids: list[int], setting: OverlapSetting | None = None) -> set[int]:
    setting = setting or get_overlap(db)
    if not setting.active or not line_ids:
        return set()
    from store import scripts as script_store

    return {r["line_id"] for r in script_store.lines_by_id(db, sorted(set(line_ids)))
            if setting.covers(line_id=r["line_id"], script_id=r["script_id"])}


def overlap_summary(db: Database, setting: OverlapSetting | None = None) -> dict:
    """How many lines of the ready scripts the setting covers, of how many."""
    setting = setting or get_overlap(db)
    covered, total = team_store.count_overlap_lines(db, share=setting.share if setting.active else 0.0,
                                                    by_script=setting.scope == "scripts")
    return {"lines_in_overlap": covered, "lines": total}


def blind_ratings(db: Database, table, *, script_id: int, annotator: str, department: str,
                  setting: OverlapSetting | None = None):
    """A sequence table (labeling.sequences.view.sequence_table) as one person should see it for rating:
    overlap sequences that fewer than N people rated, this person not among them and no lead adjudicated,
    show no rating (the others' would bias theirs) and so come first as unrated.

    Sequences overlap like lines: a hash of the sequence id (of the script id with scope "scripts")."""
    import pandas as pd

    setting = setting or get_overlap(db)
    if not setting.active or table.empty or not annotator:
        return table
    raters = team_store.rating_raters(db, department=department)
    decided = set(raters.loc[raters["source"] == "adjudicated", "sequence_id"])
    people = raters[raters["source"] == "human"].groupby("sequence_id")["annotator"].agg(set).to_dict()
    hide = [int(sid) for sid in table["sequence_id"]
            if team_store.overlap_hash(script_id if setting.scope == "scripts" else sid) < setting.share
            and sid not in decided and annotator not in people.get(sid, set())
            and len(people.get(sid, set())) < setting.annotators]
    if not hide:
        return table
    table = table.copy()
    table.loc[table["sequence_id"].isin(hide), "rating"] = pd.NA
    return table
