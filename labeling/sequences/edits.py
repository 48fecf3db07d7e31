"""Changing sequences and departments: leads only (checked here, whatever the caller), each change in the
audit log with who, what, and the state before and after (store.accounts.audit)."""

from __future__ import annotations

from sqlite_utils import Database

from labeling.accounts import access
from store import accounts
from store import sequences as sequence_store
from store import team as team_store


def _span(footprint: dict) -> dict:
    return {k: footprint[k] for k in ("sequence_id", "code", "title", "first_line_no", "last_line_no", "lines")}


def rename(db: Database, who: access.Identity, sequence_id: int, *, code: str | None = None,
           title: str | None = None) -> dict:
    """Rename a sequence (code and/or title); returns the audit detail {"before", "after"}."""
    access.require(who, "restructure")
    before = team_store.sequence_footprint(db, sequence_id)
    sequence_store.rename_sequence(db, sequence_id, code=code, title=title)
    after = team_store.sequence_footprint(db, sequence_id)
    detail = {"sequence_id": sequence_id, "before": {"code": before["code"], "title": before["title"]},
              "after": {"code": after["code"], "title": after["title"]}}
    if detail["before"] != detail["after"]:
        accounts.audit(db, who.name, "sequence_rename", script_id=before["script_id"], detail=detail)
    return detail


def merge_preview(db: Database, sequence_id: int) -> dict:
    """What "merge with the next sequence" would change: both spans, the lines and ratings that move."""
    return team_store.sequence_footprint(db, sequence_id)


def merge_with_next(db: Database, who: access.Identity, sequence_id: int, *, client_id: str | None = None) -> int:
    """Merge with the next sequence (an edit Undo can take back: `undo`); `client_id` = the click's id."""
    access.require(who, "restructure")
    before = team_store.sequence_footprint(db, sequence_id)
    merged = sequence_store.merge_with_next(db, sequence_id, annotator=who.name, client_id=client_id)
    after = team_store.sequence_footprint(db, merged)
    accounts.audit(db, who.name, "sequence_merge", script_id=before["script_id"], detail={
        "sequence_id": sequence_id, "before": [_span(before)] + ([_span(before["next"])] if before["next"] else []),
        "after": [_span(after)], "lines_moved": before["next"]["lines"] if before["next"] else 0,
        "ratings_moved": before["next"]["ratings"] if before["next"] else 0})
    return merged


def split(db: Database, who: access.Identity, sequence_id: int, at_line_no: int, *, title: str = "",
          client_id: str | None = None) -> int:
    """Split so a new sequence (titled `title`) starts at `at_line_no`; Undo takes it back (`undo`)."""
    access.require(who, "restructure")
    before = team_store.sequence_footprint(db, sequence_id)
    new_id = sequence_store.split_sequence(db, sequence_id, int(at_line_no), title=title, annotator=who.name,
                                           client_id=client_id)
    first, second = team_store.sequence_footprint(db, sequence_id), team_store.sequence_footprint(db, new_id)
    accounts.audit(db, who.name, "sequence_split", script_id=before["script_id"], detail={
        "sequence_id": sequence_id, "at_line_no": int(at_line_no), "before": [_span(before)],
        "after": [_span(first), _span(second)], "lines_moved": second["lines"]})
    return new_id


def undo(db: Database, who: access.Identity, edit_id: int):
    """Take back a split or merge (store.sequences.undo_sequence_edit: idempotent, newest first)."""
    access.require(who, "restructure")
    edit = sequence_store.undo_sequence_edit(db, edit_id, annotator=who.name)
    accounts.audit(db, who.name, "sequence_edit_undo", script_id=edit.script_id,
                   detail={"edit_id": int(edit_id), "kind": edit.kind, "what": edit.describe()})
    return edit


def add_department(db: Database, who: access.Identity, name: str) -> str:
    access.require(who, "departments")
    existing = sequence_store.departments(db)
    added = sequence_store.add_department(db, name)
    if added not in existing:
        accounts.audit(db, who.name, "department_add",
                       detail={"before": existing, "after": sequence_store.departments(db)})
    return added
