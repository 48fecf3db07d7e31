"""Line labels as an append-only event history: set, undo; the latest per line and annotator wins."""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING

from sqlite_utils import Database

from store.db import immediate, now
from store.scheme import load_scheme
from store.scripts import get_line
from store.types import LABELS, AcceptBatch, AcceptPreview, NotFoundError, ScriptlabelError, StaleModelError

if TYPE_CHECKING:  # pandas/numpy only inside the functions that use them: light commands never load them
    import numpy as np
    import pandas as pd


def _effective_sql(script_filter: bool) -> str:
    """Set events not undone, the latest per line, annotator and source (a lead's own label and her
    adjudication of the line are two things); the script filter is pushed inside for speed."""
    where = "AND l.script_id = ?" if script_filter else ""
    return f"""
    WITH eff AS (
        SELECT e.*, l.script_id FROM label_events e JOIN lines l ON l.line_id = e.line_id
        WHERE e.action = 'set' {where}
          AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
    ),
    per_annotator AS (
        SELECT line_id, annotator, source, MAX(event_id) AS event_id FROM eff GROUP BY line_id, annotator, source
    )
    SELECT eff.event_id, eff.line_id, eff.label, eff.annotator, eff.source, eff.created_at, eff.script_id
    FROM eff JOIN per_annotator USING (event_id)
    ORDER BY eff.event_id
"""


# The suggestion shown when the label was given is kept with it: the honest record of how right
# the model was on lines it had not been trained on (progressive validation).
_INSERT_WITH_SUGGESTION = """
    INSERT INTO label_events(line_id, label, annotator, source, batch, created_at, suggested, suggested_version)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6,
           (SELECT label FROM predictions WHERE line_id = ?1 ORDER BY rowid DESC LIMIT 1),
           (SELECT version FROM predictions WHERE line_id = ?1 ORDER BY rowid DESC LIMIT 1)
"""


def suggestion_outcomes(db: Database, *, after_event: int = 0) -> pd.DataFrame:
    """Human labels (not undone) with the suggestion shown at the time: event_id, label, suggested."""
    import pandas as pd

    return pd.read_sql_query(
        """SELECT e.event_id, e.line_id, e.label, e.suggested, e.suggested_version FROM label_events e
           WHERE e.source = 'human' AND e.action = 'set' AND e.suggested IS NOT NULL AND e.event_id > ?
             AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
           ORDER BY e.event_id""", db.conn, params=[after_event])


def suggestion_pairs(db: Database, version: int) -> pd.DataFrame:
    """(label, suggested) of the human labels (not undone) given while line model `version` suggested."""
    import pandas as pd

    return pd.read_sql_query(
        """SELECT e.label, e.suggested FROM label_events e
           WHERE e.source = 'human' AND e.action = 'set' AND e.suggested IS NOT NULL AND e.suggested_version = ?
             AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
           ORDER BY e.event_id""", db.conn, params=[version])


def max_event_id(db: Database) -> int:
    return db.execute("SELECT COALESCE(MAX(event_id), 0) FROM label_events").fetchone()[0]


def add_label(db: Database, line_id: int, label: str, *, annotator: str = "anonymous", source: str = "human") -> int:
    """Record one label in its own transaction and return its event id."""
    value = load_scheme(db).parse(label)
    get_line(db, line_id)
    with db.atomic():
        cursor = db.execute(_INSERT_WITH_SUGGESTION, [line_id, value, annotator or "anonymous", source, None, now()])
    return int(cursor.lastrowid)


def add_labels(db: Database, line_ids: list[int], label: str, *, annotator: str = "anonymous",
               source: str = "human") -> list[int]:
    """Record the same label on several lines (a group of identical lines) in one transaction."""
    value = load_scheme(db).parse(label)
    ids = []
    batch = uuid.uuid4().hex
    with db.atomic():
        stamp = now()
        for line_id in line_ids:
            get_line(db, line_id)
            cursor = db.execute(_INSERT_WITH_SUGGESTION,
                                [line_id, value, annotator or "anonymous", source, batch, stamp])
            ids.append(int(cursor.lastrowid))
    return ids


def undo_last(db: Database, *, annotator: str, script_id: int | None = None) -> dict | None:
    """Undo this annotator's latest label that is not undone yet, by appending an undo event.

    Returns the undone event (line_id, label) or None when there is nothing to undo.
    """
    where = "AND l.script_id = ?" if script_id is not None else ""
    params: list = [annotator] + ([script_id] if script_id is not None else [])
    with db.atomic():
        rows = list(db.query(
            f"""SELECT e.event_id, e.line_id, e.label, e.batch FROM label_events e JOIN lines l USING (line_id)
                WHERE e.annotator = ? AND e.action = 'set' AND e.source = 'human' {where}
                  AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
                ORDER BY e.event_id DESC LIMIT 1""",
            params,
        ))
        if not rows:
            return None
        batch = [rows[0]]
        if rows[0]["batch"]:  # undo an "apply to all" action as a whole
            batch = list(db.query(
                """SELECT event_id, line_id, label FROM label_events e
                   WHERE batch = ? AND action = 'set'
                     AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)""",
                [rows[0]["batch"]],
            ))
        stamp = now()
        for event in batch:
            db.execute(
                "INSERT INTO label_events(line_id, label, annotator, source, action, undoes_event_id, created_at) "
                "VALUES (?, NULL, ?, 'human', 'undo', ?, ?)",
                [event["line_id"], annotator, event["event_id"], stamp],
            )
    return rows[0]


def label_history(db: Database, line_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM label_events WHERE line_id = ? ORDER BY event_id", [line_id]))


def annotator_labels(db: Database, script_id: int | None = None) -> pd.DataFrame:
    """The effective label per line and annotator (human and imported), for agreement and review."""
    import pandas as pd

    params = [script_id] if script_id is not None else []
    return pd.read_sql_query(_effective_sql(script_id is not None), db.conn, params=params)


def current_labels(db: Database, script_id: int | None = None, *,
                   sources: tuple[str, ...] = ("adjudicated", "human", "imported")) -> pd.DataFrame:
    """One label per line by the one rule (`resolve_labels`): adjudicated, else what most people gave
    (a tie: the latest), else the imported one.

    Columns: line_id, script_id, label, source, annotator, labeled_at.
    """
    import pandas as pd

    frame = annotator_labels(db, script_id)
    frame = frame[frame["source"].isin(sources)]
    if frame.empty:
        return pd.DataFrame(columns=["line_id", "script_id", "label", "source", "annotator", "labeled_at"])
    frame = resolve_labels(frame).rename(columns={"created_at": "labeled_at"})
    return frame[["line_id", "script_id", "label", "source", "annotator", "labeled_at"]].reset_index(drop=True)


def resolve_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per line out of each person's label in force (columns event_id, line_id, label, source,
    annotator): the best source (SOURCE_PRIORITY); among the people of that source, the label most of them
    gave, a tie going to the label given last; the row is that label's latest event.

    With overlap, several people label a line on their own. Until a lead adjudicates it, training, exports and
    the pages use the majority: with two people who disagree that is the later label (no better guess
    exists; the line waits in the adjudication queue), with three it is the two who agree.
    """
    if frame.empty:
        return frame
    priority = frame["source"].map({s: i for i, s in enumerate(SOURCE_PRIORITY)}).fillna(len(SOURCE_PRIORITY))
    frame = frame[priority == priority.groupby(frame["line_id"]).transform("min")]
    votes = frame.groupby(["line_id", "label"], sort=False)["event_id"].agg(["size", "max"]).reset_index()
    votes = votes.sort_values(["line_id", "size", "max"], ascending=[True, False, False])
    winners = votes.drop_duplicates("line_id")["max"]
    return frame[frame["event_id"].isin(winners)].sort_values("line_id")


def winning_events(rows) -> set[int]:
    """`resolve_labels`' rule on plain rows (event_id, line_id, label, source), without pandas: the event ids
    of the rows it keeps (the label queue of the command line reads labels this way)."""
    rank = {s: i for i, s in enumerate(SOURCE_PRIORITY)}
    rows = [(event_id, line_id, label, rank.get(source, len(rank))) for event_id, line_id, label, source in rows]
    best: dict[int, int] = {}
    for _event, line_id, _label, priority in rows:
        best[line_id] = min(priority, best.get(line_id, priority))
    votes: dict[tuple, list[int]] = {}
    for event_id, line_id, label, priority in rows:
        if priority == best[line_id]:
            vote = votes.setdefault((line_id, label), [0, event_id])
            vote[0] += 1
            vote[1] = max(vote[1], event_id)
    winner: dict[int, tuple[int, int]] = {}
    for (line_id, _label), (size, last) in votes.items():
        winner[line_id] = max(winner.get(line_id, (0, -1)), (size, last))
    return {last for _size, last in winner.values()}


def labeled_lines(db: Database, script_id: int | None = None) -> dict[int, str]:
    """line_id → label in force of the lines with an adjudicated, human, imported or accepted label (the
    rule of `current_labels` with LABELED_SOURCES), read without pandas."""
    rows = [r for r in db.execute(_effective_sql(script_id is not None), [script_id] if script_id is not None else [])
            if r[4] in LABELED_SOURCES]
    keep = winning_events((r[0], r[1], r[2], r[4]) for r in rows)
    return {int(r[1]): r[2] for r in rows if r[0] in keep}


def count_human_labels(db: Database) -> int:
    return db.execute("SELECT COUNT(*) FROM label_events WHERE source = 'human' AND action = 'set'").fetchone()[0]


def latest_human_label_script(db: Database) -> int | None:
    """The script of the newest human label event (the script being labeled), or None."""
    row = db.execute("""SELECT l.script_id FROM label_events e JOIN lines l USING (line_id)
                        WHERE e.source = 'human' ORDER BY e.event_id DESC LIMIT 1""").fetchone()
    return row[0] if row else None




# --- events from the labeling view: each carries the id the browser gave it -------------------

def _stored_client_event(db: Database, client_event_id: str) -> bool:
    row = db.execute("SELECT 1 FROM label_events WHERE client_event_id = ? LIMIT 1", [client_event_id]).fetchone()
    return row is not None


def existing_lines(db: Database, line_ids: list[int]) -> set[int]:
    if not line_ids:
        return set()
    marks = ",".join("?" * len(line_ids))
    return {r[0] for r in db.execute(f"SELECT line_id FROM lines WHERE line_id IN ({marks})", line_ids)}


def add_client_label(db: Database, *, client_event_id: str, line_ids: list[int], label: str, annotator: str,
                     suggested: str | None, suggested_version: int | None, shown_at: str | None,
                     answered_at: str | None) -> tuple[str, list[int]]:
    """Store one human label given in the browser on exactly these lines, once.

    Returns (status, line ids stored): "stored", "duplicate" (this client id was stored before: a resend)
    or "line_gone" (none of the lines exists any more). The suggestion kept is the one the person saw.
    """
    value = load_scheme(db).parse(label)
    with immediate(db):
        if _stored_client_event(db, client_event_id):
            return "duplicate", []
        alive = [i for i in line_ids if i in existing_lines(db, line_ids)]
        if not alive:
            return "line_gone", []
        stamp = now()
        batch = client_event_id if len(alive) > 1 else None
        db.conn.executemany(
            "INSERT INTO label_events(line_id, label, annotator, source, batch, created_at, suggested, "
            "suggested_version, client_event_id, shown_at, answered_at) VALUES (?,?,?,'human',?,?,?,?,?,?,?)",
            [(i, value, annotator, batch, stamp, suggested if i == alive[0] else None,
              suggested_version if i == alive[0] else None, client_event_id, shown_at, answered_at)
             for i in alive])
    return "stored", alive


def undo_client_event(db: Database, *, client_event_id: str, undoes: str, annotator: str) -> tuple[str, list[int]]:
    """Undo the label the browser sent as `undoes` (all its lines), once; returns (status, line ids)."""
    with immediate(db):
        if _stored_client_event(db, client_event_id):
            return "duplicate", []
        targets = [dict(r) for r in db.query(
            """SELECT e.event_id, e.line_id FROM label_events e
               WHERE e.client_event_id = ? AND e.action = 'set' AND e.annotator = ?
                 AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)""",
            [undoes, annotator])]
        if not targets:
            return "nothing_to_undo", []
        stamp = now()
        db.conn.executemany(
            "INSERT INTO label_events(line_id, label, annotator, source, action, undoes_event_id, created_at, "
            "client_event_id) VALUES (?, NULL, ?, 'human', 'undo', ?, ?, ?)",
            [(t["line_id"], annotator, t["event_id"], stamp, client_event_id) for t in targets])
    return "stored", [t["line_id"] for t in targets]


def client_labels(db: Database, client_event_ids: list[str]) -> dict[str, dict]:
    """What is stored for these browser event ids: client id → {label, line_ids, undone}."""
    if not client_event_ids:
        return {}
    marks = ",".join("?" * len(client_event_ids))
    out: dict[str, dict] = {}
    for row in db.query(
            f"""SELECT e.client_event_id, e.line_id, e.label, e.action,
                       EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id) AS undone
                FROM label_events e WHERE e.client_event_id IN ({marks}) ORDER BY e.event_id""",
            client_event_ids):
        entry = out.setdefault(row["client_event_id"], {"label": row["label"], "action": row["action"],
                                                        "line_ids": [], "undone": bool(row["undone"])})
        entry["line_ids"].append(row["line_id"])
    return out


def labels_of_lines(db: Database, line_ids: list[int]) -> dict[int, dict]:
    """line_id → {label, source, annotator} for those of these lines with an adjudicated, human, imported or
    accepted label, by the rule of `effective_labels` (`resolve_labels`): a line bulk-accepted from a
    confident suggestion counts as labeled for the queue and a tab's held lines.
    """
    rows = []
    for start in range(0, len(line_ids), 5000):
        chunk = list(line_ids[start:start + 5000])
        rows += db.query(
            # SQLite's bare column: `label` comes from the row with MAX(event_id), each person's label in force
            f"""SELECT MAX(e.event_id) AS event_id, e.line_id, e.source, e.annotator, e.label
                FROM label_events e
                WHERE e.line_id IN ({",".join("?" * len(chunk))}) AND e.action = 'set'
                  AND e.source IN ('adjudicated', 'human', 'imported', 'accepted')
                  AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
                GROUP BY e.line_id, e.source, e.annotator""", chunk)
    keep = winning_events((r["event_id"], r["line_id"], r["label"], r["source"]) for r in rows)
    return {int(r["line_id"]): {"label": r["label"], "source": r["source"], "annotator": r["annotator"]}
            for r in rows if r["event_id"] in keep}


def progress(db: Database, script_id: int | None = None, *,
             hidden_scripts: set[int] | frozenset[int] = frozenset()) -> tuple[int, int]:
    """(lines with a human label, lines) in one script or in all ready ones but `hidden_scripts` (restricted
    to other people: their counts are theirs to know)."""
    clauses, params = ["s.status = 'ready'"], []
    if script_id is not None:
        clauses.append("l.script_id = ?")
        params.append(script_id)
    if hidden_scripts:
        clauses.append(f"l.script_id NOT IN ({','.join('?' * len(hidden_scripts))})")
        params.extend(sorted(hidden_scripts))
    where = "WHERE " + " AND ".join(clauses)
    scripts = "JOIN scripts s ON s.script_id = l.script_id"
    total = db.execute(f"SELECT COUNT(*) FROM lines l {scripts} {where}", params).fetchone()[0]
    labeled = db.execute(
        f"""SELECT COUNT(DISTINCT e.line_id) FROM label_events e JOIN lines l ON l.line_id = e.line_id {scripts}
            {where} AND e.source = 'human' AND e.action = 'set'
              AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)""",
        params).fetchone()[0]
    return int(labeled), int(total)


# --- a line's effective label: the one rule (DESIGN.md), used by every reader --------------------

# adjudicated (a lead settled a disagreement) > human (most people, a tie: the latest) > imported > accepted
# (a confident suggestion a person bulk-accepted) > rule > model
SOURCE_PRIORITY = ("adjudicated", "human", "imported", "accepted", "rule", "model")
# a line with one of these is out of the label queue (overlap lines wait for N people: labeling.team.overlap)
LABELED_SOURCES = ("adjudicated", "human", "imported", "accepted")
EFFECTIVE_COLUMNS = ["line_id", "script_id", "line_no", "text", "label", "label_source", "annotator", "labeled_at",
                     "confidence", "suggestion", "suggestion_confidence", "rule_id"]


def effective_labels(db: Database, script_id: int | None = None, *, script_ids: list[int] | None = None,
                     extra_columns: str = "", joins: str = "", in_scheme: bool = True) -> pd.DataFrame:
    """One row per line with its effective label: an adjudicated one, else the human label most people
    gave (a tie: the latest; `resolve_labels`), else an imported one, else an accepted suggestion
    (bulk-accept), else a rule's (rules people write, then INT./EXT. headings), else the model's suggestion; `label_source` says which. `confidence` is the
    model's where the label is the model's; `suggestion` is always the model's; `rule_id` names the rule
    people wrote where one labels the line.

    Labels and suggestions read through the project's scheme (store/scheme.py: a merged built-in reads
    as its class, a merged class's probability is the sum of its members'); `in_scheme=False` reads them
    as built-in labels instead (what sequence grouping and the complexity models need), a label of a
    merged class as the member the model prefers.

    Lines of the given script(s) — a script being ingested included (its sequences are derived before it
    is visible) — or of every ready script, read in one query; the export adds its columns through
    `extra_columns`/`joins` (aliases: l = lines, s = scripts).
    """
    import pandas as pd

    import numpy as np

    from store.label_rules import rule_statuses, rule_suggestions
    from store.rules import rule_label
    from store.scheme import load_scheme

    scheme = load_scheme(db)
    ids = [script_id] if script_id is not None else script_ids
    where, params = "", []
    if ids is not None:
        marks = ",".join("?" * len(ids))
        where, params = f"AND l.script_id IN ({marks})", list(ids)
    sql = f"""
        WITH live AS (
            SELECT e.event_id, e.line_id, e.label, e.source, e.annotator,
                   ROW_NUMBER() OVER (PARTITION BY e.line_id, e.source, e.annotator ORDER BY e.event_id DESC) AS r
            FROM label_events e JOIN lines l ON l.line_id = e.line_id
            WHERE e.action = 'set' AND e.source IN ('adjudicated', 'human', 'imported', 'accepted') {where}
              AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)),
        votes AS (  -- each person's label in force counts once; resolve_labels says why
            SELECT line_id, source, label, COUNT(*) AS n, MAX(event_id) AS last FROM live WHERE r = 1
            GROUP BY line_id, source, label),
        known AS (
            SELECT e.line_id, e.label, e.source, e.annotator, e.created_at FROM (
                SELECT line_id, last, ROW_NUMBER() OVER (
                    PARTITION BY line_id ORDER BY CASE source WHEN 'adjudicated' THEN 0 WHEN 'human' THEN 1
                    WHEN 'imported' THEN 2 ELSE 3 END, n DESC, last DESC) AS rank FROM votes) v
            JOIN label_events e ON e.event_id = v.last WHERE v.rank = 1)
        SELECT l.line_id, l.script_id, l.line_no, l.text, k.label, k.source AS label_source, k.annotator,
               k.created_at AS labeled_at, p.label AS suggestion, p.confidence AS suggestion_confidence,
               p.probs AS _probs, p.classes AS _classes, l.indent AS _indent
               {extra_columns}
        FROM lines l JOIN scripts s ON s.script_id = l.script_id {joins}
        LEFT JOIN known k ON k.line_id = l.line_id
        LEFT JOIN predictions p ON p.rowid = (SELECT MAX(p2.rowid) FROM predictions p2 WHERE p2.line_id = l.line_id)
        WHERE {"s.status = 'ready'" if ids is None else "1"} {where}
        ORDER BY l.script_id, l.line_no"""
    frame = pd.read_sql_query(sql, db.conn, params=params * 2)
    if in_scheme:
        _suggestions_in_scheme(frame, scheme)
        frame["label"] = scheme.map_labels(frame["label"])
    else:
        _labels_as_builtin(frame, scheme)
    frame["rule_id"] = pd.Series(np.nan, index=frame.index, dtype="Float64")
    missing = frame["label"].isna()
    statuses = rule_statuses(db, scheme)
    if statuses and missing.any():
        rows = frame.loc[missing, ["text", "_indent"]].rename(columns={"_indent": "indent"})
        written = rule_suggestions(rows, scheme, statuses)
        hit = written["rule_class"].notna()
        hit_index = written.index[hit]
        if in_scheme:
            frame.loc[hit_index, "label"] = written.loc[hit_index, "rule_class"]
        else:  # a rule for a merged class names no one built-in label: the model's member, else the first
            frame.loc[hit_index, "label"] = [
                _member(scheme, c, s) for c, s in zip(written.loc[hit_index, "rule_class"],
                                                      frame.loc[hit_index, "suggestion"])]
        frame.loc[hit_index, "label_source"] = "rule"
        frame.loc[hit_index, "rule_id"] = written.loc[hit_index, "rule_id"].astype(float)
        missing = frame["label"].isna()
    rule = frame.loc[missing, "text"].map(rule_label)
    if in_scheme:
        rule = rule.map(lambda v: scheme.class_of(v) if isinstance(v, str) else v)
    use_rule = rule[rule.notna()].index
    frame.loc[use_rule, "label"] = rule[use_rule]
    frame.loc[use_rule, "label_source"] = "rule"
    use_model = frame["label"].isna() & frame["suggestion"].notna()
    frame.loc[use_model, "label"] = frame.loc[use_model, "suggestion"]
    frame.loc[use_model, "label_source"] = "model"
    frame["confidence"] = frame["suggestion_confidence"].where(frame["label_source"] == "model")
    frame = frame.drop(columns=["_probs", "_classes", "_indent"])
    return frame if extra_columns else frame[EFFECTIVE_COLUMNS]


def _member(scheme, class_name, suggestion) -> str:
    """A built-in label standing for `class_name`: the model's suggestion when it is one of the class's
    members, else its first member; a class of the project's own stands for itself."""
    found = scheme.get(class_name or "")
    if found is None or not found.members:
        return class_name
    return suggestion if suggestion in found.members else found.members[0]


def _labels_as_builtin(frame: pd.DataFrame, scheme) -> None:
    stored = frame["label"]
    builtin = set(LABELS)
    odd = stored.notna() & ~stored.isin(builtin)
    if odd.any():
        frame.loc[odd, "label"] = [_member(scheme, scheme.class_of(v) or v, s)
                                   for v, s in zip(stored[odd], frame.loc[odd, "suggestion"])]


def prediction_proba(frame: pd.DataFrame, scheme, *, probs: str = "_probs", classes: str = "_classes"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(mask of rows with a prediction, their probabilities over the scheme's classes) from stored rows
    (`probs` JSON lists over `classes`, NULL classes = LABELS)."""
    import numpy as np
    import pandas as pd

    has = frame[probs].notna().to_numpy()
    out = np.full((len(frame), len(scheme.names)), np.nan)
    if not has.any():
        return has, out
    kinds = frame[classes].where(frame[classes].notna(), "")
    for kind in pd.unique(kinds[has]):
        rows = np.flatnonzero(has & (kinds == kind).to_numpy())
        stored = np.array(json.loads("[" + ",".join(frame[probs].iloc[rows]) + "]"), dtype=np.float64)
        from_classes = json.loads(kind) if kind else list(LABELS)
        out[rows] = scheme.project(stored, from_classes)
    return has, out


def _suggestions_in_scheme(frame: pd.DataFrame, scheme) -> None:
    """The model's suggestion and its probability as the scheme's class (in place)."""
    import numpy as np

    if scheme.is_full and frame["_classes"].isna().all():
        return
    has, proba = prediction_proba(frame, scheme)
    if not has.any():
        return
    names = np.array(scheme.names, dtype=object)
    best = proba[has].argmax(axis=1)
    frame.loc[has, "suggestion"] = names[best]
    frame.loc[has, "suggestion_confidence"] = proba[has][np.arange(len(best)), best]


# --- bulk-accept: "accept every suggestion above p" on a script or a page -------------------------

_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,80}$")


def new_batch_id() -> str:
    return f"accept-{uuid.uuid4().hex[:16]}"


def _accept_candidates(db: Database, script_id: int, page: int | None) -> pd.DataFrame:
    """Lines of the script (page) nobody labeled, accepted or imported, with their newest suggestion."""
    import pandas as pd

    where = "AND l.page = ?" if page is not None else ""
    params = [script_id] + ([page] if page is not None else [])
    return pd.read_sql_query(
        f"""SELECT l.line_id, l.line_no, l.text, l.indent, p.label, p.confidence, p.version
            FROM lines l JOIN predictions p
                 ON p.rowid = (SELECT MAX(p2.rowid) FROM predictions p2 WHERE p2.line_id = l.line_id)
            WHERE l.script_id = ? {where}
              AND NOT EXISTS (SELECT 1 FROM label_events e WHERE e.line_id = l.line_id AND e.action = 'set'
                                AND e.source IN ('human', 'imported', 'accepted')
                                AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id))
            ORDER BY l.line_no""", db.conn, params=params)


def _check_scope(db: Database, script_id: int, page: int | None, above: float) -> None:
    from store.scripts import get_script

    get_script(db, script_id)
    if not 0.0 < float(above) <= 1.0:
        raise ScriptlabelError(f"--above {above}: give a probability above 0 and at most 1, e.g. 0.99")
    if page is not None and db.execute("SELECT 1 FROM lines WHERE script_id = ? AND page = ? LIMIT 1",
                                       [script_id, page]).fetchone() is None:
        raise NotFoundError(f"script {script_id} has no page {page}; pick a page that has lines")


def preview_accept(db: Database, script_id: int, *, above: float, page: int | None = None) -> AcceptPreview:
    """How many suggestions of the current line model are at or above `above` on lines nobody labeled,
    and how many of those are expected to be wrong (the sum of 1 - p: the stored probabilities).

    Raises StaleModelError while the script's suggestions come from another version than the current one
    (re-prediction after a retrain or a roll-back has not reached it yet).
    """
    from store.models import current_version
    from store.rules import rule_label

    _check_scope(db, script_id, page, above)
    current = current_version(db, "lines")
    version = current.version if current is not None else 0
    frame = _accept_candidates(db, script_id, page)
    stale = sorted(set(int(v) for v in frame["version"]) - {version})
    if stale:
        raise StaleModelError(
            f"the suggestions of script {script_id} come from model v{stale[0]}, but v{version} is current: wait "
            "until it is re-predicted (Models page) and try again")
    sure = frame[frame["confidence"] >= float(above)]
    scheme = load_scheme(db)
    classes = scheme.map_labels(sure["label"])
    rules = sure["text"].map(rule_label).map(lambda v: scheme.class_of(v) if isinstance(v, str) else v)
    conflict = rules.notna() & (rules != classes)
    from store.label_rules import rule_statuses, rule_suggestions

    statuses = rule_statuses(db, scheme)
    if statuses and len(sure):  # a rule people wrote that says otherwise: the line is left to people
        written = rule_suggestions(sure, scheme, statuses)["rule_class"]
        conflict |= written.notna() & (written != classes)
    sure, classes = sure[~conflict], classes[~conflict]
    return AcceptPreview(
        script_id=script_id, page=page, above=float(above), model_version=version, lines=int(len(sure)),
        expected_errors=float((1.0 - sure["confidence"]).sum()),
        by_label={k: int(v) for k, v in classes.value_counts().items()},
        line_ids=tuple(int(i) for i in sure["line_id"]), skipped_rule=int(conflict.sum()))


def _batch(db: Database, batch_id: str, status: str) -> AcceptBatch | None:
    rows = list(db.query("SELECT * FROM accept_batches WHERE batch_id = ?", [batch_id]))
    if not rows:
        return None
    r = rows[0]
    return AcceptBatch(batch_id=r["batch_id"], status=status, script_id=r["script_id"], page=r["page"],
                       above=r["above"], model_version=r["model_version"], lines=r["lines"],
                       expected_errors=r["expected_errors"], annotator=r["annotator"], created_at=r["created_at"],
                       undone_at=r["undone_at"])


def accept_suggestions(db: Database, script_id: int, *, above: float, model_version_seen: int,
                       batch_id: str, annotator: str, page: int | None = None) -> AcceptBatch:
    """Accept every suggestion at or above `above` on the script (page) as one batch, in one transaction.

    `model_version_seen` is the version whose preview the person confirmed: if another one is current
    now, nothing is stored (StaleModelError). `batch_id` is made by the caller before confirming, so a
    resent confirmation returns the stored batch ("duplicate") instead of accepting again.
    """
    if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
        raise ScriptlabelError(f"batch id {str(batch_id)[:40]!r}: use 8-80 letters, digits or _.:-")
    with immediate(db):
        stored = _batch(db, batch_id, "duplicate")
        if stored is not None:
            return stored
        preview = preview_accept(db, script_id, above=above, page=page)
        if preview.model_version != int(model_version_seen):
            raise StaleModelError(
                f"the suggestions you saw came from model v{model_version_seen}, but v{preview.model_version} "
                "is current now: look at the new counts and confirm again")
        if preview.lines == 0:
            raise ScriptlabelError(f"no suggestion at or above {above:g} is left to accept on script {script_id}"
                                   + (f" page {page}" if page is not None else "") + ": lower the threshold")
        stamp = now()
        db.conn.executemany(
            """INSERT INTO label_events(line_id, label, annotator, source, batch, created_at, suggested,
                                        suggested_version)
               SELECT p.line_id, p.label, ?, 'accepted', ?, ?, p.label, p.version FROM predictions p
               WHERE p.rowid = (SELECT MAX(p2.rowid) FROM predictions p2 WHERE p2.line_id = ?)""",
            [(annotator, batch_id, stamp, line_id) for line_id in preview.line_ids])
        db.execute(
            "INSERT INTO accept_batches(batch_id, script_id, page, above, model_version, lines, expected_errors, "
            "annotator, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [batch_id, script_id, page, float(above), preview.model_version, preview.lines,
             preview.expected_errors, annotator, stamp])
    return _batch(db, batch_id, "stored")


def undo_accept(db: Database, batch_id: str, *, annotator: str) -> AcceptBatch:
    """Take a whole bulk-accept back (undo events, nothing deleted); a second undo changes nothing.

    A line a person labeled after the batch keeps that label (a human label wins anyway).
    """
    with immediate(db):
        batch = _batch(db, batch_id, "undone")
        if batch is None:
            raise NotFoundError(f"no bulk-accept batch {batch_id!r}; list them with `scriptlabel accept --list`")
        if batch.undone_at is not None:
            return _batch(db, batch_id, "already_undone")
        stamp = now()
        db.execute(
            """INSERT INTO label_events(line_id, label, annotator, source, action, undoes_event_id, created_at)
               SELECT e.line_id, NULL, ?, 'accepted', 'undo', e.event_id, ? FROM label_events e
               WHERE e.batch = ? AND e.source = 'accepted' AND e.action = 'set'
                 AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)""",
            [annotator, stamp, batch_id])
        db.execute("UPDATE accept_batches SET undone_at = ?, undone_by = ? WHERE batch_id = ?",
                   [stamp, annotator, batch_id])
    return _batch(db, batch_id, "undone")


def accept_batches(db: Database, script_id: int | None = None, *, limit: int = 20) -> list[AcceptBatch]:
    """The newest bulk-accepts (of one script), newest first."""
    where, params = ("WHERE script_id = ?", [script_id]) if script_id is not None else ("", [])
    ids = [r[0] for r in db.execute(f"SELECT batch_id FROM accept_batches {where} ORDER BY created_at DESC, "
                                    "rowid DESC LIMIT ?", params + [limit])]
    return [_batch(db, i, "stored") for i in ids]


def last_labeled_script(db: Database, annotator: str) -> int | None:
    """The finished script this annotator labeled last (where "continue labeling" takes them), or None."""
    row = db.execute(
        """SELECT l.script_id FROM label_events e JOIN lines l USING (line_id)
           JOIN scripts s ON s.script_id = l.script_id AND s.status = 'ready'
           WHERE e.annotator = ? AND e.source = 'human' ORDER BY e.event_id DESC LIMIT 1""", [annotator]).fetchone()
    return int(row[0]) if row else None
