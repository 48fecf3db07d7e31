"""One annotator's place in the labeling queue: what a key press does on the Label page.

A key press stores a label in its own transaction, claims the next line so nobody else is shown it,
and moves on, in a few small writes and indexed reads; ranking the whole pool happens per batch,
prepared in the background. Nothing here imports Streamlit (tests/test_label_cursor.py).
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlite_utils import Database

from labeling import session as label_session
from labeling.queue import QueueItem, build_queue, claim, release
from labeling.strategies import EmptyPoolError
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store


def model_token(db: Database) -> tuple:
    """Changes when a training run starts or ends or the current model changes (new predictions)."""
    runs = model_store.list_runs(db, limit=1)
    current = model_store.current_version(db)
    run = (runs[0]["run_id"], runs[0]["status"]) if runs else (0, "")
    return run + (current.version if current else 0,)


def line_label(events: list[dict]) -> dict | None:
    """The effective label of one line from its event history: human beats imported, latest wins."""
    undone = {e["undoes_event_id"] for e in events if e["action"] == "undo"}
    live = [e for e in events if e["action"] == "set" and e["event_id"] not in undone and e["label"]]
    if not live:
        return None
    best = max(live, key=lambda e: (e["source"] == "human", e["event_id"]))
    return {"label": best["label"], "source": best["source"], "annotator": best["annotator"]}


@dataclass
class LabelCursor:
    """One annotator's place in the queue, so a key press costs a few small writes and indexed reads.

    Ranking the queue reads the whole pool (~100 ms on 5k lines, ~300 ms on 20k), so it is done per
    batch, not per key press; with `db_path` set, the next batch (and the re-ranking after a new model)
    is prepared on a background thread with its own connection while the person keeps labeling.
    """

    annotator: str
    script_id: int | None = None
    strategy: str = "margin"
    batch_size: int = 20
    db_path: str | None = None
    batch: list[QueueItem] = field(default_factory=list)
    current: QueueItem | None = None
    skipped: set[int] = field(default_factory=set)
    shown: dict[int, QueueItem] = field(default_factory=dict)
    model_token: tuple = ()
    pending: Future | None = None
    history: list[tuple[QueueItem, int]] = field(default_factory=list)  # (item, lines labeled) per key press
    labeled: int = 0
    retrain_asked: int = 0  # how many times this session reached `retrain_every` new labels
    skips: int = 0
    undos: int = 0
    last_action_ms: float | None = None
    last_label: str | None = None
    done: bool = False


PREFETCH_BELOW = 5
_prefetcher: ThreadPoolExecutor | None = None


def _rank(db: Database, *, script_id, strategy, annotator, skipped, batch_size) -> list[QueueItem]:
    try:
        items = build_queue(db, script_id=script_id, strategy=strategy, n=batch_size + len(skipped),
                            annotator=annotator)
    except EmptyPoolError:
        return []
    return [item for item in items if item.line_id not in skipped][:batch_size]


def _rank_on_own_connection(db_path: str, token: tuple, **query) -> tuple[tuple, list[QueueItem]]:
    from store.db import open_db

    db = open_db(db_path)
    try:
        return token, _rank(db, **query)
    finally:
        db.close()


def _query(cursor: LabelCursor) -> dict:
    return dict(script_id=cursor.script_id, strategy=cursor.strategy, annotator=cursor.annotator,
                skipped=frozenset(cursor.skipped), batch_size=cursor.batch_size)


def _start_prefetch(cursor: LabelCursor, token: tuple) -> None:
    global _prefetcher
    if cursor.db_path is None or cursor.pending is not None:
        return
    if _prefetcher is None:
        _prefetcher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="queue-prefetch")
    cursor.pending = _prefetcher.submit(_rank_on_own_connection, str(cursor.db_path), token, **_query(cursor))


def _take_prefetch(cursor: LabelCursor, *, wait: bool) -> bool:
    """Swap in a prepared batch (waiting for it if asked); False when there was none to take."""
    if cursor.pending is None or not (wait or cursor.pending.done()):
        return False
    pending, cursor.pending = cursor.pending, None
    try:
        cursor.model_token, cursor.batch = pending.result()
    except Exception:  # a failed prefetch only costs the synchronous ranking it was meant to save
        return False
    return True


def _drop_prefetch(cursor: LabelCursor) -> None:
    if cursor.pending is not None:
        cursor.pending.cancel()
        cursor.pending = None


def _is_labeled(db: Database, line_id: int) -> bool:
    return line_label(label_store.label_history(db, line_id)) is not None


def advance(db: Database, cursor: LabelCursor) -> QueueItem | None:
    """Move to the next unlabeled line nobody else holds, and claim it; None when the queue is empty.

    The batch is only a ranking: just the line on screen is claimed, so two people on a short script
    still both get work, and a line someone else claimed in the meantime is passed over.
    """
    token = model_token(db)
    _take_prefetch(cursor, wait=False)
    if token != cursor.model_token:
        if cursor.db_path is None or not cursor.batch:
            cursor.batch = []
        else:  # new predictions: keep serving the old ranking while the new one is prepared
            _start_prefetch(cursor, token)
    ranked_here = False
    while True:
        if not cursor.batch:
            if ranked_here:
                break
            if not _take_prefetch(cursor, wait=True) or not cursor.batch:
                cursor.model_token = token
                cursor.batch = _rank(db, **_query(cursor))
                ranked_here = True
            if not cursor.batch:
                break
        item = cursor.batch.pop(0)
        if item.line_id in cursor.skipped or _is_labeled(db, item.line_id):
            continue
        if claim(db, item.group_line_ids, cursor.annotator):
            cursor.current = item
            cursor.shown[item.line_id] = item
            cursor.done = False
            if len(cursor.batch) < PREFETCH_BELOW:
                _start_prefetch(cursor, token)
            return item
    cursor.current = None
    cursor.done = True
    release(db, cursor.annotator)
    return None


def _timed(action):
    """Keep the server time of each key press on the cursor (shown on the page, measured by the bench)."""
    @functools.wraps(action)
    def wrapper(db: Database, cursor: LabelCursor, *args, **kwargs):
        started = time.perf_counter()
        try:
            return action(db, cursor, *args, **kwargs)
        finally:
            cursor.last_action_ms = (time.perf_counter() - started) * 1000
    return wrapper


def _store_label(db: Database, cursor: LabelCursor, label: str, *, apply_to_group: bool = False,
                 db_path: str | Path | None = None, retrain_every: int = 0) -> dict | None:
    item = cursor.current
    if item is None:
        return None
    if apply_to_group and len(item.group_line_ids) > 1:
        stored = label_session.record_group_label(db, item.group_line_ids, label, annotator=cursor.annotator)
        count = len(item.group_line_ids)
    else:
        stored = label_session.record_label(db, item.line_id, label, annotator=cursor.annotator)
        count = 1
    cursor.labeled += count
    cursor.history.append((item, count))
    cursor.last_label = stored["label"]
    # Ask at most once per `retrain_every` labels of this session: when training keeps failing (too
    # few labels of a kind, a missing base model) we must not start a worker on every key press.
    if db_path is not None and retrain_every > 0 and cursor.labeled // retrain_every > cursor.retrain_asked:
        from labeling.training import maybe_retrain

        cursor.retrain_asked = cursor.labeled // retrain_every
        maybe_retrain(db_path, every=retrain_every, db=db)
    advance(db, cursor)
    return stored


@_timed
def label_current(db: Database, cursor: LabelCursor, label: str, **kwargs) -> dict | None:
    """Store the label for the current item (or its whole group), ask for a retrain if due, move on.

    kwargs: apply_to_group, db_path and retrain_every (0 = never retrain from here).
    """
    return _store_label(db, cursor, label, **kwargs)


@_timed
def accept_suggestion(db: Database, cursor: LabelCursor, **kwargs) -> dict | None:
    """Enter: the model's suggestion becomes the human label."""
    if cursor.current is None or not cursor.current.suggestion:
        return None
    return _store_label(db, cursor, cursor.current.suggestion, **kwargs)


@_timed
def skip_current(db: Database, cursor: LabelCursor) -> QueueItem | None:
    """s: leave this line for later (this session will not show it again)."""
    if cursor.current is not None:
        cursor.skipped.add(cursor.current.line_id)
        cursor.skips += 1
    return advance(db, cursor)


@_timed
def undo_last(db: Database, cursor: LabelCursor) -> dict | None:
    """u: undo this annotator's latest label and show that line again."""
    undone = label_session.undo(db, annotator=cursor.annotator, script_id=cursor.script_id)
    if undone is None:
        return None
    cursor.undos += 1
    line_id = int(undone["line_id"])
    mine = [i for i, (done, _) in enumerate(cursor.history) if line_id in (done.line_id, *done.group_line_ids)]
    if mine:  # a label given in this session (an earlier session's is not on the counter)
        item, count = cursor.history.pop(mine[-1])
        cursor.labeled -= count
    else:
        item = cursor.shown.get(line_id) or _item_for_line(db, line_id)
    if cursor.current is not None and cursor.current.line_id != item.line_id:
        cursor.batch.insert(0, cursor.current)
    cursor.skipped.discard(item.line_id)
    cursor.current = item
    cursor.done = False
    claim(db, item.group_line_ids, cursor.annotator)
    return undone


def _item_for_line(db: Database, line_id: int) -> QueueItem:
    line = script_store.get_line(db, line_id)
    return QueueItem(line_id=line_id, script_id=line["script_id"], line_no=line["line_no"], page=line["page"],
                     text=line["text"], suggestion=None, confidence=None, strategy_score=0.0,
                     group_line_ids=[line_id])


def edit_current_text(db: Database, cursor: LabelCursor, text: str) -> None:
    """Correct the current line's text (the original is kept by the store)."""
    item = cursor.current
    if item is None or text.strip() == item.text.strip() or not text.strip():
        return
    script_store.edit_line_text(db, item.line_id, text.strip(), annotator=cursor.annotator)
    cursor.current = replace(item, text=text.strip())
    cursor.shown[item.line_id] = cursor.current


def retarget(db: Database, cursor: LabelCursor, *, annotator: str, script_id: int | None, strategy: str) -> None:
    """Annotator, script or strategy changed: drop the batch (and the old name's claims)."""
    if annotator != cursor.annotator:
        release(db, cursor.annotator)
        cursor.annotator = annotator
    cursor.script_id = script_id
    cursor.strategy = strategy
    cursor.batch = []
    cursor.current = None
    _drop_prefetch(cursor)
    advance(db, cursor)
