"""The labeling view's server side: events in, batches of lines out.

The browser holds the line on screen and a prefetched batch, paints the next line in the same frame as
the key press and sends every action as an event that names its line (`line_id`) and carries an id of
its own (`client_event_id`). Here each event is applied to exactly that line, once: the client id is
UNIQUE in SQLite, so a resend after a lost response, a reload or a retry never doubles a label. One
`sync` call stores the events, tells the browser what was stored, keeps the tab's claims on the lines
it holds and tops its batch up. Nothing here imports Streamlit (tests/test_label_sync.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlite_utils import Database

from labeling.session.queue import QueueItem, build_queue, identical_key
from labeling.session.strategies import STRATEGIES, EmptyPoolError
from labeling.team.overlap import get_overlap, overlap_line_ids, shared_capacity, waiting_lines
from store import claims as claim_store
from store import flags as flag_store
from store import labels as label_store
from store import models as model_store
from store import review as review_store
from store import scripts as script_store
from store import team as team_store
from store.scheme import load_scheme
from store.types import BadAnnotatorError, NotFoundError, ScriptlabelError, check_annotator

ACTIONS = ("label", "undo", "edit", "flag", "skip")
ORDERS = ("diverse", "margin", "entropy", "least_confidence", "random", "script", "review")
DEFAULT_ORDER = "diverse"  # measured against margin in bench/active_learning.py (README: the queue)
MAX_EVENTS_PER_SYNC = 500
MAX_ITEMS_PER_SYNC = 100
CONTEXT_BEFORE, CONTEXT_AFTER = 3, 3
_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,80}$")


class BadEventError(ScriptlabelError, ValueError):
    """An event the browser sent is malformed (a bug or a tampered request, never a person's mistake)."""


@dataclass(frozen=True)
class ClientEvent:
    """One action from the labeling view, bound to the line it was taken on."""

    client_event_id: str
    line_id: int
    action: str
    label: str | None = None
    also_line_ids: tuple[int, ...] = ()  # "apply to all identical": the other lines, shown to the person
    text: str | None = None
    undoes: str | None = None  # the client_event_id of the label an undo takes back
    flag: str | None = None
    note: str = ""
    review: bool = False  # a reviewer's decision on a label the model contradicts (confirm or fix)
    model_version_shown: int | None = None
    suggestion_shown: str | None = None
    shown_at: str | None = None
    answered_at: str | None = None

    @classmethod
    def parse(cls, raw: Mapping) -> "ClientEvent":
        """Validate one event as sent by the browser; raises BadEventError naming what is wrong."""
        if not isinstance(raw, Mapping):
            raise BadEventError("an event must be an object")
        event_id = raw.get("client_event_id")
        if not isinstance(event_id, str) or not _ID.match(event_id):
            raise BadEventError(f"event without a valid client_event_id: {str(event_id)[:40]!r}")
        action = raw.get("action")
        if action not in ACTIONS:
            raise BadEventError(f"event {event_id}: unknown action {action!r}")
        line_id = _int(raw.get("line_id"), f"event {event_id}: line_id")
        also = tuple(_int(i, f"event {event_id}: also_line_ids") for i in (raw.get("also_line_ids") or ())[:1000])
        label = raw.get("label")
        # Which names are labels is the project's scheme's business (checked when the event is applied).
        if action == "label" and (not isinstance(label, str) or not _LABEL_NAME.match(label)):
            raise BadEventError(f"event {event_id}: unknown label {str(label)[:40]!r}")
        text = raw.get("text")
        if action == "edit" and (not isinstance(text, str) or not text.strip() or len(text) > 2000):
            raise BadEventError(f"event {event_id}: an edit needs the new text (1-2000 characters)")
        undoes = raw.get("undoes")
        if action == "undo" and (not isinstance(undoes, str) or not _ID.match(undoes)):
            raise BadEventError(f"event {event_id}: an undo needs the id of the label it undoes")
        flag = raw.get("flag")
        if action == "flag" and flag not in flag_store.FLAG_KINDS:
            raise BadEventError(f"event {event_id}: unknown flag {flag!r}")
        version = raw.get("model_version_shown")
        suggestion = raw.get("suggestion_shown")
        return cls(
            client_event_id=event_id, line_id=line_id, action=action, label=label, also_line_ids=also,
            text=text.strip() if isinstance(text, str) else None, undoes=undoes, flag=flag,
            note=str(raw.get("note") or "")[:500], review=bool(raw.get("review")) and action == "label",
            model_version_shown=None if version is None else _int(version, f"event {event_id}: model_version_shown", minimum=0),
            suggestion_shown=suggestion if isinstance(suggestion, str) and _LABEL_NAME.match(suggestion) else None,
            shown_at=_stamp(raw.get("shown_at")), answered_at=_stamp(raw.get("answered_at")),
        )


_LABEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


def _int(value, what: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadEventError(f"{what} must be an integer")
    try:
        number = int(value)
    except ValueError:
        raise BadEventError(f"{what} must be an integer") from None
    if not minimum <= number < 2**63:
        raise BadEventError(f"{what} is out of range")
    return number


def _stamp(value) -> str | None:
    return value[:40] if isinstance(value, str) else None


@dataclass(frozen=True)
class EventResult:
    """What became of one event: stored, duplicate (stored before), line_gone, nothing_to_undo, skipped."""

    client_event_id: str
    status: str
    line_ids: tuple[int, ...] = ()

    def as_json(self) -> dict:
        return {"client_event_id": self.client_event_id, "status": self.status, "line_ids": list(self.line_ids)}


def apply_event(db: Database, event: ClientEvent, *, annotator: str) -> EventResult:
    """Apply one event to its own line(s), once; each in its own transaction."""
    if event.action == "label" and event.review:
        return _apply_review(db, event, annotator=annotator)
    if event.action == "label" and not load_scheme(db).accepts(event.label):
        return EventResult(event.client_event_id, "unknown_label")  # the scheme changed after the page loaded
    if event.action == "label":
        status, ids = label_store.add_client_label(
            db, client_event_id=event.client_event_id, line_ids=[event.line_id, *event.also_line_ids],
            label=event.label, annotator=annotator, suggested=event.suggestion_shown,
            suggested_version=event.model_version_shown, shown_at=event.shown_at, answered_at=event.answered_at)
        return EventResult(event.client_event_id, status, tuple(ids))
    if event.action == "undo":
        status, ids = label_store.undo_client_event(db, client_event_id=event.client_event_id,
                                                    undoes=event.undoes, annotator=annotator)
        return EventResult(event.client_event_id, status, tuple(ids))
    if event.action == "edit":
        try:
            stored = script_store.edit_line_text(db, event.line_id, event.text, annotator=annotator,
                                                 client_event_id=event.client_event_id)
        except NotFoundError:
            return EventResult(event.client_event_id, "line_gone")
        return EventResult(event.client_event_id, "stored" if stored else "duplicate", (event.line_id,))
    if event.action == "flag":
        status = flag_store.add_flag(db, event.line_id, event.flag, annotator=annotator, note=event.note,
                                     client_event_id=event.client_event_id)
        return EventResult(event.client_event_id, status, (event.line_id,))
    return EventResult(event.client_event_id, "skipped", (event.line_id,))  # a skip only changes the tab's batch


def _apply_review(db: Database, event: ClientEvent, *, annotator: str) -> EventResult:
    """The reviewer pressed a label on a line people labeled: the same label confirms it, another fixes it."""
    if not label_store.existing_lines(db, [event.line_id]):
        return EventResult(event.client_event_id, "line_gone")
    previous = label_store.labels_of_lines(db, [event.line_id]).get(event.line_id, {}).get("label")
    outcome = "confirmed" if event.label == previous else "fixed"
    stored = review_store.record_outcome(db, event.line_id, outcome, label=event.label, previous_label=previous,
                                         suggested=event.suggestion_shown, annotator=annotator,
                                         client_event_id=event.client_event_id)
    return EventResult(event.client_event_id, "duplicate" if stored is None else "stored", (event.line_id,))


def apply_events(db: Database, events: list[ClientEvent], *, annotator: str) -> list[EventResult]:
    """Apply events in the order the person gave them."""
    return [apply_event(db, event, annotator=annotator) for event in events]


# --- what the browser shows -----------------------------------------------------------------

def _context(db: Database, script_id: int, line_no: int, known: Mapping[int, dict], scheme) -> list[dict]:
    rows = script_store.line_window(db, script_id, line_no - CONTEXT_BEFORE, line_no + CONTEXT_AFTER)
    return [{"line_id": r["line_id"], "line_no": r["line_no"], "text": r["text"],
             "label": scheme.class_of(known.get(r["line_id"], {}).get("label")),
             "source": known.get(r["line_id"], {}).get("source"),
             "suggestion": scheme.class_of(r["suggestion"]) or r["suggestion"], "current": r["line_no"] == line_no}
            for r in rows]


def _own_view(db: Database, known: dict[int, dict], annotator: str | None, overlap) -> dict[int, dict]:
    """On overlap lines a person sees only their own label: the others' would bias the second opinion."""
    if annotator is None or not overlap.active:
        return known
    hide = overlap_line_ids(db, list(known), overlap)
    if not hide:
        return known
    own = team_store.own_labels(db, sorted(hide), annotator)
    out = {k: v for k, v in known.items() if k not in hide}
    out.update({k: {"label": label, "source": "human", "annotator": annotator} for k, label in own.items()})
    return out


def describe_items(db: Database, items: list[QueueItem], *, annotator: str | None = None) -> list[dict]:
    """Everything the view needs to show each item without asking again: text, box, page, context, group.

    With `annotator`, labels of overlap lines (labeling.team.overlap) are this person's own or none."""
    if not items:
        return []
    overlap = get_overlap(db)
    rows = {r["line_id"]: r for r in script_store.lines_with_pages([i.line_id for i in items], db=db)}
    titles: dict[int, str] = {}
    scheme = load_scheme(db)
    versions = model_store.latest_prediction_versions(db, [i.line_id for i in items])
    out = []
    for item in items:
        row = rows.get(item.line_id)
        if row is None:
            continue
        if item.script_id not in titles:
            titles[item.script_id] = script_store.get_script(db, item.script_id)["title"]
        window_ids = script_store.line_ids_between(db, item.script_id, item.line_no - CONTEXT_BEFORE,
                                                   item.line_no + CONTEXT_AFTER)
        known = _own_view(db, label_store.labels_of_lines(db, window_ids), annotator, overlap)
        group = [g for g in item.group_line_ids if g != item.line_id]
        out.append({
            "line_id": item.line_id, "script_id": item.script_id, "script_title": titles[item.script_id],
            "line_no": item.line_no, "page": item.page, "text": row["text"],
            "original_text": row["original_text"] if row["original_text"] != row["text"] else None,
            "suggestion": item.suggestion, "confidence": item.confidence,
            "suggestion_source": item.suggestion_source, "rule": item.rule,
            "model_version": versions.get(item.line_id),
            "label": scheme.class_of(known.get(item.line_id, {}).get("label")),
            "box": None if row["x0"] is None else [row["x0"], row["y0"], row["x1"], row["y1"]],
            "page_size": None if row["page_width"] is None else [row["page_width"], row["page_height"]],
            "image": bool(row["image_path"]),
            "context": _context(db, item.script_id, item.line_no, known, scheme),
            "group": [{"line_id": g["line_id"], "line_no": g["line_no"], "page": g["page"], "text": g["text"]}
                      for g in script_store.lines_by_id(db, group[:200])],
        })
    return out


def item_at(db: Database, *, script_id: int, line_no: int | None = None, page: int | None = None) -> QueueItem:
    """The line at a line number (or the first line of a page) as a queue item, for "jump to"."""
    row = script_store.find_line(db, script_id, line_no=line_no, page=page)
    preds = model_store.latest_prediction_for(db, row["line_id"])
    same = [r for r in script_store.lines_by_text(db, script_id, row["text"])
            if identical_key(r["text"], r["indent"]) == identical_key(row["text"], row["indent"])]
    return QueueItem(line_id=row["line_id"], script_id=script_id, line_no=row["line_no"], page=row["page"],
                     text=row["text"], suggestion=preds["label"] if preds else None,
                     confidence=preds["confidence"] if preds else None,
                     group_line_ids=[row["line_id"]] + [r["line_id"] for r in same if r["line_id"] != row["line_id"]])


@dataclass
class SyncRequest:
    """One round trip from a tab: its unsent events, what it holds, and how many more lines it wants."""

    annotator: str
    tab: str
    script_id: int | None = None
    strategy: str = DEFAULT_ORDER
    events: list[ClientEvent] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # line ids on screen or prefetched in the tab
    skipped: list[int] = field(default_factory=list)  # skipped in this tab: not offered again
    want: int = 0

    @classmethod
    def parse(cls, raw: Mapping) -> "SyncRequest":
        if not isinstance(raw, Mapping):
            raise BadEventError("the request must be a JSON object")
        if not str(raw.get("annotator") or "").strip():
            raise BadEventError("type your name under Annotator in the sidebar to start labeling")
        try:
            annotator = check_annotator(raw.get("annotator"))  # the command line's rule (store.types)
        except BadAnnotatorError as exc:
            raise BadEventError(f"{exc} (under Annotator in the sidebar)") from None
        tab = str(raw.get("tab") or "")
        if not _ID.match(tab):
            raise BadEventError("the request has no valid tab id")
        strategy = raw.get("strategy") or DEFAULT_ORDER
        if strategy not in ORDERS:
            raise BadEventError(f"unknown order {strategy!r}: use one of {', '.join(ORDERS)}")
        script = raw.get("script_id")
        events = raw.get("events") or []
        if not isinstance(events, list) or len(events) > MAX_EVENTS_PER_SYNC:
            raise BadEventError(f"send at most {MAX_EVENTS_PER_SYNC} events at a time")
        return cls(
            annotator=annotator, tab=tab, script_id=None if script in (None, "") else _int(script, "script_id"),
            strategy=strategy, events=[ClientEvent.parse(e) for e in events],
            held=[_int(i, "held") for i in (raw.get("held") or [])[:MAX_ITEMS_PER_SYNC * 2]],
            skipped=[_int(i, "skipped") for i in (raw.get("skipped") or [])[:5000]],
            want=max(0, min(MAX_ITEMS_PER_SYNC, int(raw.get("want") or 0))),
        )


_review_cache: dict[tuple, list[QueueItem]] = {}


def _review_items(db: Database, script_id: int | None) -> list[QueueItem]:
    """The review queue (labels the out-of-fold model confidently contradicts), computed once per state of
    the labels: it refits the adapter per fold, seconds of work that a tab asks for every few keys."""
    from labeling.session.review import review_queue

    from store.db import database_uid

    key = (database_uid(db), script_id, label_store.max_event_id(db), review_store.outcome_count(db))
    if key not in _review_cache:
        _review_cache.clear()
        try:
            _review_cache[key] = review_queue(db, script_id, n=500)
        except EmptyPoolError:
            _review_cache[key] = []
    return _review_cache[key]


def model_status(db: Database) -> dict:
    """The current line model and the newest training run, as the view shows them."""
    current = model_store.current_version(db)
    runs = model_store.list_runs(db, kind="lines", limit=1)
    run = runs[0] if runs else None
    # the newest retrain ended as a candidate (not promoted): the suggestions stay the current version's
    candidate = run is not None and run["status"] == "done" and run["version"] is not None and \
        (model_store.version_promotion(db, run["version"]) or {}).get("decision") == "candidate"
    changed = (current.metrics or {}).get("changed") if current else None
    return {"version": current.version if current else 0, "pinned": model_store.get_pin(db, "lines") is not None,
            "run": None if run is None else {"run_id": run["run_id"], "status": run["status"],
                                             "error": (run["error"] or "")[:200] or None, "candidate": candidate},
            # what the current version changed on the script being labeled (labeling.training.lines)
            "changed": changed if isinstance(changed, dict) else None}


def _outside(db: Database, events: list[ClientEvent], hidden_scripts) -> set[str]:
    """Client ids of events that touch a line of a script this person may not see."""
    if not hidden_scripts or not events:
        return set()
    ids = {i for e in events for i in (e.line_id, *e.also_line_ids)}
    script_of = {r["line_id"]: r["script_id"] for r in script_store.lines_by_id(db, sorted(ids))}
    return {e.client_event_id for e in events
            if any(script_of.get(i) in hidden_scripts for i in (e.line_id, *e.also_line_ids))}


def sync(db: Database, request: SyncRequest, *, db_path=None, retrain_every: int = 0,
         hidden_scripts: set[int] | frozenset[int] = frozenset()) -> dict:
    """Store the tab's events, keep its claims, top up its batch; returns what the view needs next.

    Lines of `hidden_scripts` (restricted to other people) are never offered, and events on them are
    answered as "line_gone" without being stored.
    Response: {"results": [...], "items": [...], "done": bool, "drop": [line ids labeled by someone else],
    "model": {...}, "progress": {...}}.
    """
    refused = _outside(db, request.events, hidden_scripts)
    results = [EventResult(e.client_event_id, "line_gone") if e.client_event_id in refused
               else apply_event(db, e, annotator=request.annotator) for e in request.events]
    answered = {i for e in request.events if e.action in ("label", "skip") for i in (e.line_id, *e.also_line_ids)}
    labeled_now = label_store.labels_of_lines(db, request.held)
    overlap = get_overlap(db)
    if overlap.active and labeled_now:  # an overlap line others labeled still waits for this person
        waiting = waiting_lines(db, request.annotator, script_id=request.script_id, setting=overlap)
        labeled_now = {k: v for k, v in labeled_now.items() if k not in waiting}
    # Lines the tab holds that someone labeled meanwhile (another person, or an "apply to all") leave it.
    drop = [i for i in request.held if i in labeled_now and i not in answered]
    held = [i for i in request.held if i not in labeled_now and i not in answered]
    items: list[dict] = []
    done = False
    if request.want > 0:
        exclude = set(held) | set(request.skipped) | answered
        try:
            if request.strategy == "review":
                others = claim_store.claimed_by_others(db, annotator=request.annotator, tab=request.tab)
                ranked = [item for item in _review_items(db, request.script_id)
                          if item.line_id not in exclude and item.line_id not in others
                          and item.script_id not in (hidden_scripts or ())]
            else:
                ranked = build_queue(db, script_id=request.script_id, strategy=request.strategy,
                                     n=request.want + len(held), annotator=request.annotator, tab=request.tab,
                                     exclude=exclude, hidden_scripts=hidden_scripts)
        except EmptyPoolError:
            ranked = []
        ranked = [item for item in ranked if item.line_id not in held][:request.want]
        wanted = held + [i.line_id for i in ranked]
        mine = set(claim_store.hold(db, wanted, annotator=request.annotator, tab=request.tab,
                                    shared=shared_capacity(db, wanted, request.annotator, overlap)))
        items = describe_items(db, [item for item in ranked if item.line_id in mine], annotator=request.annotator)
        done = not ranked and not held
    else:
        claim_store.hold(db, held, annotator=request.annotator, tab=request.tab,
                         shared=shared_capacity(db, held, request.annotator, overlap))
    if db_path is not None and retrain_every > 0 and any(r.status == "stored" for r in results):
        from labeling.training.runs import maybe_retrain

        maybe_retrain(db_path, every=retrain_every, db=db)
    labeled, total = label_store.progress(db, request.script_id, hidden_scripts=hidden_scripts)
    return {"results": [r.as_json() for r in results], "items": items, "done": done, "drop": drop,
            "model": model_status(db), "progress": {"labeled": labeled, "total": total}}


def release_tab(db: Database, *, annotator: str, tab: str) -> None:
    claim_store.release(db, annotator=annotator, tab=tab)


__all__ = ["ACTIONS", "DEFAULT_ORDER", "ORDERS", "BadEventError", "ClientEvent", "EventResult", "SyncRequest", "apply_event",
           "apply_events", "describe_items", "item_at", "model_status", "release_tab", "sync", "STRATEGIES"]
