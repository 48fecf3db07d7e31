"""Queue claims: the lines a browser tab holds (on screen or prefetched), so nobody else is shown them.

A holder is one tab of one annotator (`tab` is the tab's own id), so two tabs of the same person never
get the same line either. Claims expire, so a closed tab gives its lines back by itself. An overlap line
(labeling.team.overlap) is `shared`: up to N people hold it at once, each labeling it on their own.
"""

from __future__ import annotations

import time

from sqlite_utils import Database

from store.db import immediate

CLAIM_TTL_S = 300.0


def claimed_by_others(db: Database, *, annotator: str, tab: str = "") -> set[int]:
    rows = db.execute("SELECT line_id FROM queue_claims WHERE expires_at > ? AND NOT (annotator = ? AND tab = ?)",
                      [time.time(), annotator or "", tab]).fetchall()
    return {r[0] for r in rows}


def other_holders(db: Database, *, annotator: str, tab: str = "") -> dict[int, set[str]]:
    """line_id → the persons holding it in another tab than this one (this person's other tabs included)."""
    out: dict[int, set[str]] = {}
    for line_id, name in db.execute(
            "SELECT line_id, annotator FROM queue_claims WHERE expires_at > ? AND NOT (annotator = ? AND tab = ?)",
            [time.time(), annotator or "", tab]):
        out.setdefault(int(line_id), set()).add(name)
    return out


def _refused(holders: set[str], annotator: str, line_id: int, shared: dict[int, int]) -> bool:
    if annotator in holders:  # another tab of this person
        return True
    return len(holders) >= shared.get(line_id, 1)


def hold(db: Database, line_ids: list[int], *, annotator: str, tab: str = "", ttl_s: float = CLAIM_TTL_S,
         replace: bool = True, shared: dict[int, int] | None = None) -> list[int]:
    """Claim `line_ids` for this holder (those nobody else holds) and return the ones it now holds.

    `shared`: line_id → how many other persons may hold it at the same time (an overlap line still waiting
    for that many people); other lines are held by one holder only. With `replace`, the holder's other
    claims are given back: what a tab holds is exactly what it shows.
    """
    now = time.time()
    shared = shared or {}
    with immediate(db):
        others: dict[int, set[str]] = {}
        if line_ids:
            for line_id, name in db.execute(
                    "SELECT line_id, annotator FROM queue_claims WHERE expires_at > ? AND NOT (annotator = ? AND tab = ?)",
                    [now, annotator, tab]):
                others.setdefault(int(line_id), set()).add(name)
        mine = [i for i in dict.fromkeys(line_ids) if not _refused(others.get(i, set()), annotator, i, shared)]
        if replace:
            db.execute("DELETE FROM queue_claims WHERE annotator = ? AND tab = ?", [annotator, tab])
        db.execute("DELETE FROM queue_claims WHERE expires_at <= ?", [now])
        db.conn.executemany(
            "INSERT OR REPLACE INTO queue_claims(line_id, annotator, tab, expires_at) VALUES (?,?,?,?)",
            [(i, annotator, tab, now + ttl_s) for i in mine])
    return mine


def release(db: Database, *, annotator: str, tab: str | None = None) -> None:
    """Give back a holder's claims (every tab of `annotator` when `tab` is None) and drop expired ones."""
    with db.atomic():
        if tab is None:
            db.execute("DELETE FROM queue_claims WHERE annotator = ? OR expires_at <= ?", [annotator, time.time()])
        else:
            db.execute("DELETE FROM queue_claims WHERE (annotator = ? AND tab = ?) OR expires_at <= ?",
                       [annotator, tab, time.time()])
