"""Adjudication: a lead's queue of the lines (and sequence ratings) people disagree on, and the decision,
stored as its own source `adjudicated` — the effective label everywhere (store.labels.effective_labels),
so exports and training use it; the people's own labels stay as they were, for agreement."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlite_utils import Database

from labeling.accounts import access
from store import scripts as script_store
from store import team as team_store
from store.types import LineLabel, ScriptlabelError

CONTEXT = 2  # lines shown before and after the disputed one


@dataclass(frozen=True)
class LineDisagreement:
    line_id: int
    script_id: int
    line_no: int
    page: int
    text: str
    labels: dict[str, str]  # person → label
    adjudicated: str | None
    context: tuple[dict, ...] = ()  # the lines around it: line_no, text, current (never anyone's label)


@dataclass(frozen=True)
class RatingDisagreement:
    sequence_id: int
    script_id: int
    code: str
    title: str
    department: str
    values: dict[str, int]  # person → rating
    adjudicated: int | None


def line_disagreements(db: Database, script_id: int | None = None, *, hidden_scripts=frozenset(),
                       open_only: bool = True, context: bool = True) -> list[LineDisagreement]:
    """Lines two or more people labeled differently, in reading order; `open_only`: not adjudicated yet."""
    table = team_store.label_table(db, script_id)
    if hidden_scripts:
        table = table[~table["script_id"].isin(list(hidden_scripts))]
    human = table[table["source"] == "human"]
    decided = table[table["source"] == "adjudicated"].sort_values("event_id").groupby("line_id")["label"].last()
    split = human.groupby("line_id")["label"].nunique()
    disputed = human[human["line_id"].isin(split[split > 1].index)]
    out = []
    for line_id, group in disputed.sort_values(["script_id", "line_no", "event_id"]).groupby("line_id", sort=False):
        verdict = decided.get(line_id)
        if open_only and verdict is not None:
            continue
        first = group.iloc[0]
        around = ()
        if context:
            rows = script_store.line_window(db, int(first["script_id"]), int(first["line_no"]) - CONTEXT,
                                            int(first["line_no"]) + CONTEXT)
            around = tuple({"line_no": r["line_no"], "text": r["text"], "current": r["line_id"] == line_id}
                           for r in rows)
        out.append(LineDisagreement(
            line_id=int(line_id), script_id=int(first["script_id"]), line_no=int(first["line_no"]),
            page=int(first["page"]), text=str(first["text"]),
            labels={r.annotator: r.label for r in group.itertuples()}, adjudicated=verdict, context=around))
    return out


def rating_disagreements(db: Database, department: str, *, script_id: int | None = None,
                         hidden_scripts=frozenset(), open_only: bool = True) -> list[RatingDisagreement]:
    """Sequences two or more people rated differently in a department; `open_only`: not adjudicated yet."""
    frame = team_store.rating_raters(db, department=department, script_id=script_id)
    if hidden_scripts:
        frame = frame[~frame["script_id"].isin(list(hidden_scripts))]
    human = frame[frame["source"] == "human"]
    decided = frame[frame["source"] == "adjudicated"].groupby("sequence_id")["value"].last()
    split = human.groupby("sequence_id")["value"].nunique()
    out = []
    for sequence_id, group in human[human["sequence_id"].isin(split[split > 1].index)].groupby("sequence_id"):
        verdict = decided.get(sequence_id)
        if open_only and verdict is not None:
            continue
        first = group.iloc[0]
        out.append(RatingDisagreement(
            sequence_id=int(sequence_id), script_id=int(first["script_id"]), code=str(first["code"]),
            title=str(first["title"] or ""), department=department,
            values={r.annotator: int(r.value) for r in group.itertuples()},
            adjudicated=None if verdict is None else int(verdict)))
    return out


def new_decision_id() -> str:
    return f"adjudicate-{uuid.uuid4().hex[:16]}"


def adjudicate_line(db: Database, who: access.Identity, line_id: int, label: str, *,
                    decision_id: str | None = None) -> str:
    """A lead settles a line: stored as source `adjudicated` under the lead's name, once per `decision_id`
    (a repeated click stores nothing twice). Returns "stored" or "duplicate"."""
    access.require(who, "adjudicate")
    value = LineLabel.parse(label).value
    return team_store.add_adjudicated_label(db, int(line_id), value, by=who.name,
                                            client_event_id=decision_id or new_decision_id())


def adjudicate_rating(db: Database, who: access.Identity, sequence_id: int, value: int, *, department: str) -> int:
    """A lead settles a sequence's rating in a department (source `adjudicated`; the rating in force)."""
    access.require(who, "adjudicate")
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ScriptlabelError(f"complexity must be a whole number 1-5, not {value!r}") from None
    return team_store.add_adjudicated_rating(db, int(sequence_id), value, department=department, by=who.name)
