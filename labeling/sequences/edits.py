"""Changing sequences and departments: leads only (checked here, whatever the caller), each change in the
audit log with who, what, and the state before and after (store.accounts.audit)."""

from __future__ import annotations

from sqlite_utils import Database

from labeling.accounts import access
from store import accounts
from store import sequences as sequence_store
from store import team as team_store


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


def merge_with_next(db: Database, who: access.Identity, sequence_id: int, *, client_id: str | None = None,
                    expected_version: int | None = None) -> int:
    """Merge with the next sequence (an edit Undo can take back: `undo`); `client_id` = the click's id, and
    `expected_version` the sequence's version the click saw (a click on a sequence changed since is refused).
    Audited once, with the change: a click delivered twice merges and records once."""
    access.require(who, "restructure")
    return sequence_store.merge_with_next(db, sequence_id, annotator=who.name, client_id=client_id,
                                          expected_version=expected_version, audit=True)


def split(db: Database, who: access.Identity, sequence_id: int, at_line_no: int, *, title: str = "",
          client_id: str | None = None, expected_version: int | None = None) -> int:
    """Split so a new sequence (titled `title`) starts at `at_line_no`; Undo takes it back (`undo`).
    `client_id` and `expected_version` as for `merge_with_next`."""
    access.require(who, "restructure")
    return sequence_store.split_sequence(db, sequence_id, int(at_line_no), title=title, annotator=who.name,
                                         client_id=client_id, expected_version=expected_version, audit=True)


def undo(db: Database, who: access.Identity, edit_id: int):
    """Take back a split or merge (store.sequences.undo_sequence_edit: idempotent, newest first; audited once)."""
    access.require(who, "restructure")
    return sequence_store.undo_sequence_edit(db, edit_id, annotator=who.name, audit=True)


def add_department(db: Database, who: access.Identity, name: str) -> str:
    access.require(who, "departments")
    existing = sequence_store.departments(db)
    added = sequence_store.add_department(db, name)
    if added not in existing:
        accounts.audit(db, who.name, "department_add",
                       detail={"before": existing, "after": sequence_store.departments(db)})
    return added
