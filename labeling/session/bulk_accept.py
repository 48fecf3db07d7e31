"""Bulk-accept ("accept every suggestion at or above p" on a script or a page) as a lead's action: the
role is checked here, whatever the caller (page, CLI), and each batch and its undo land in the audit log
with the state before (lines nobody labeled) and after (labels accepted, by label)."""

from __future__ import annotations

from sqlite_utils import Database

from labeling.accounts import access
from store import accounts
from store import labels as label_store
from store.types import AcceptBatch, AcceptPreview


def preview(db: Database, script_id: int, *, above: float, page: int | None = None) -> AcceptPreview:
    return label_store.preview_accept(db, script_id, above=above, page=page)


def accept(db: Database, who: access.Identity, script_id: int, *, above: float, model_version_seen: int,
           batch_id: str, page: int | None = None, via: str = "app") -> AcceptBatch:
    """Accept the previewed suggestions as one batch (store.labels.accept_suggestions) — leads only."""
    access.require(who, "bulk_accept")
    before = label_store.preview_accept(db, script_id, above=above, page=page)
    batch = label_store.accept_suggestions(db, script_id, above=above, page=page, batch_id=batch_id,
                                           model_version_seen=model_version_seen, annotator=who.name)
    if batch.status == "stored":
        accounts.audit(db, who.name, "bulk_accept", script_id=script_id, detail={
            "batch_id": batch.batch_id, "lines": batch.lines, "above": above, "page": page,
            "model_version": batch.model_version, "via": via,
            "before": {"unlabeled_lines_at_or_above": before.lines}, "after": {"accepted": before.by_label}})
    return batch


def undo(db: Database, who: access.Identity, batch_id: str, *, via: str = "app") -> AcceptBatch:
    access.require(who, "bulk_accept")
    batch = label_store.undo_accept(db, batch_id, annotator=who.name)
    if batch.status == "undone":
        accounts.audit(db, who.name, "bulk_accept_undo", script_id=batch.script_id, detail={
            "batch_id": batch.batch_id, "lines": batch.lines, "via": via,
            "before": {"accepted": batch.lines}, "after": {"accepted": 0}})
    return batch
