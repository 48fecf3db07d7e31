"""People and their work, managed by an admin in the browser: accounts, roles, password resets, restricted
scripts, scripts or pages assigned to a person (their queue takes them first) and each person's progress.

Every change re-checks the admin role here (whatever the caller) and lands in the audit log.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlite_utils import Database

from labeling.accounts import access
from store import accounts
from store import team as team_store
from store.types import ScriptlabelError

IDLE_GAP_S = 300.0  # a pause longer than this between two labels is a break, not labeling time


class PeopleError(ScriptlabelError):
    """A change to people that would lock the team out (the last admin) or names nobody."""


def temporary_password() -> str:
    """A password to hand over once (16 URL-safe characters, ~96 bits); the person changes it later."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class NewPerson:
    name: str
    role: str
    password: str | None  # the temporary password to show once (None for an OIDC email)


def _admins(db: Database) -> list[str]:
    return [u.name for u in accounts.list_users(db) if u.role == "admin"]


def add_person(db: Database, who: access.Identity, name: str, *, role: str, oidc: bool = False) -> NewPerson:
    """Add an account with a temporary password (or none, for an email that signs in through OIDC)."""
    access.require(who, "users")
    password = None if oidc else temporary_password()
    user = accounts.add_user(db, name, role=role, password=password)
    accounts.audit(db, who.name, "user_add", detail={"name": user.name, "before": None,
                                                     "after": {"role": user.role, "password": user.has_password}})
    return NewPerson(name=user.name, role=user.role, password=password)


def remove_person(db: Database, who: access.Identity, name: str) -> None:
    access.require(who, "users")
    user = accounts.get_user(db, name)
    if user.name == who.name:
        raise PeopleError("you cannot remove your own account: ask another admin")
    if user.role == "admin" and _admins(db) == [user.name]:
        raise PeopleError(f"{user.name} is the last admin: make someone else admin first")
    accounts.remove_user(db, user.name)
    team_store.remove_person_work(db, user.name)
    accounts.audit(db, who.name, "user_remove", detail={"name": user.name, "before": {"role": user.role},
                                                        "after": None})


def change_role(db: Database, who: access.Identity, name: str, role: str) -> None:
    access.require(who, "users")
    user = accounts.get_user(db, name)
    if user.role == role:
        return
    if user.role == "admin" and _admins(db) == [user.name]:
        raise PeopleError(f"{user.name} is the last admin: make someone else admin first")
    accounts.set_role(db, user.name, role)
    accounts.audit(db, who.name, "user_role", detail={"name": user.name, "before": {"role": user.role},
                                                      "after": {"role": role}})


def reset_password(db: Database, who: access.Identity, name: str) -> str:
    """A one-time link's path for the person to set a new password (valid a day, shown once, only its hash
    stored); their open sessions end, and their old password works until the link is used."""
    access.require(who, "users")
    user = accounts.get_user(db, name)
    if not user.has_password:
        raise PeopleError(f"{user.name} signs in through the identity provider (OIDC): there is no password "
                          "to reset here")
    token = accounts.create_reset_link(db, user.name, by=who.name)
    accounts.audit(db, who.name, "user_passwd", detail={"name": user.name, "link": True,
                                                        "valid_hours": round(accounts.RESET_TTL_S / 3600)})
    from labeling.accounts.api import RESET_PATH  # the page where the person sets it

    return f"{RESET_PATH}?token={token}"


def restrict(db: Database, who: access.Identity, script_id: int, names: list[str] | None) -> None:
    """Only these people (and admins) see the script; None or [] lifts the restriction."""
    access.require(who, "restrict")
    before = accounts.script_access(db).get(script_id)
    if names:
        accounts.restrict_script(db, script_id, names)
    else:
        accounts.unrestrict_script(db, script_id)
    accounts.audit(db, who.name, "restrict", script_id=script_id,
                   detail={"before": before, "after": accounts.script_access(db).get(script_id),
                           "everyone": not names})


def assign_work(db: Database, who: access.Identity, name: str, script_id: int, *, page: int | None = None) -> bool:
    """Give a script (or one of its pages) to a person: their queue takes it first. True when new."""
    access.require(who, "users")
    person = accounts.get_user(db, name)
    if script_id in access.hidden_scripts(db, access.from_user(person, via="local")):
        raise PeopleError(f"{person.name} may not see script {script_id}: let them see it first")
    added = team_store.assign(db, person.name, int(script_id), page=page, by=who.name)
    if added:
        accounts.audit(db, who.name, "assign", script_id=int(script_id),
                       detail={"name": person.name, "page": page})
    return added


def unassign_work(db: Database, who: access.Identity, assignment_id: int) -> None:
    access.require(who, "users")
    gone = team_store.unassign(db, int(assignment_id))
    if gone is not None:
        accounts.audit(db, who.name, "unassign", script_id=gone["script_id"],
                       detail={"name": gone["name"], "page": gone["page"]})


def progress(db: Database, *, agreement_rows: list[dict] | None = None) -> pd.DataFrame:
    """One row per person who labeled: labels, active hours (pauses over IDLE_GAP_S left out), labels/hour,
    share of the suggestions shown that they changed, agreement with others on overlap lines and with
    the adjudicated labels (`agreement_rows`: labeling.team.agreement's pairs and versus_adjudicated)."""
    activity = team_store.person_activity(db)
    columns = ["annotator", "labels", "active_hours", "labels_per_hour", "changed_suggestions",
               "agreement_with_others", "agreement_with_adjudicated"]
    if activity.empty:
        return pd.DataFrame(columns=columns)
    from labeling.team.agreement import line_agreement

    report = line_agreement(db, intervals=False, with_ratings=False)
    rows = []
    for name, mine in activity.groupby("annotator"):
        times = pd.to_datetime(mine["created_at"], utc=True, format="ISO8601").sort_values()
        gaps = times.diff().dt.total_seconds().fillna(0.0).to_numpy()
        active_s = float(gaps[gaps <= IDLE_GAP_S].sum())
        shown = mine[mine["suggested"].notna()]
        pairs = [p for p in report.pairs if name in (p.a, p.b)]
        n_pairs = sum(p.n for p in pairs)
        adjudicated = next((r for r in report.versus_adjudicated if r["annotator"] == name), None)
        rows.append({
            "annotator": name, "labels": int(len(mine)), "active_hours": round(active_s / 3600, 2),
            "labels_per_hour": round(len(mine) / (active_s / 3600), 1) if active_s >= 60 else None,
            "changed_suggestions": round(float((shown["label"] != shown["suggested"]).mean()), 3)
            if len(shown) else None,
            "agreement_with_others": round(float(np.average([p.agreement for p in pairs],
                                                            weights=[p.n for p in pairs])), 3) if n_pairs else None,
            "agreement_with_adjudicated": adjudicated["agreement"] if adjudicated else None})
    return pd.DataFrame(rows, columns=columns)
