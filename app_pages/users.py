"""Users (admins): people and their roles, password resets, restricted scripts, work assigned to people,
the audit log. Every change is checked and logged by labeling.team.people."""

from __future__ import annotations

from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from app_pages import common, team_views
from labeling.accounts import access
from labeling.team import people
from store import accounts
from store import team as team_store
from store.scripts import list_scripts
from store.types import ScriptlabelError

common.page_requires("users")
st.title("Users")
db = common.db()


def _do(action, *args, done: str = "", **kwargs):
    """Run one change; its message (or error) shows after the rerun."""
    try:
        result = action(db, common.require("users"), *args, **kwargs)
        if done:
            st.session_state["users_message"] = ("success", done)
        return result
    except ScriptlabelError as exc:
        st.session_state["users_message"] = ("error", common.app_message(exc))
        return None


def _origin() -> str:
    """scheme://host of the address the admin opened the app at: the link works for the person from there."""
    parts = urlsplit(st.context.url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


if message := st.session_state.pop("users_message", None):
    (st.success if message[0] == "success" else st.error)(common.escape_markdown(message[1]))
if secret := st.session_state.pop("users_secret", None):
    # Shown once: it is not stored in clear anywhere, and the next rerun forgets it.
    st.warning(f"Temporary password for **{common.escape_markdown(secret[0])}** — give it to them now; it is not "
               "shown again (they can sign in with it right away; reset it again if it is lost):")
    st.code(secret[1], language=None)
if link := st.session_state.pop("users_link", None):
    st.warning(f"Password link for **{common.escape_markdown(link[0])}** — send it to them now; it is not shown "
               "again. It works once, for a day: they choose their own password there (their old one works until "
               "then; a new reset replaces the link).")
    st.code(link[1], language=None)

users = accounts.list_users(db)
if not users:
    st.info("No accounts: the app is in single-user mode, on this machine only. Add the first admin below to "
            "turn sign-in on (then every page asks for it) and share the app on a network.")
else:
    st.dataframe(pd.DataFrame([{"name": u.name, "role": u.role, "password": u.has_password,
                                "created_at": u.created_at} for u in users]),
                 hide_index=True, key="users_table",
                 column_config={"password": st.column_config.CheckboxColumn(
                     "local password", help="without one the person signs in through the identity provider")})

with st.container(border=True):
    st.markdown("**Add a person** — they get a temporary password, shown here once")
    with st.form("user_add", clear_on_submit=True, border=False):
        cols = st.columns([3, 2, 2])
        name = cols[0].text_input("Name", placeholder="e.g. ana, or an email for OIDC sign-in", key="user_add_name")
        role = cols[1].selectbox("Role", access.ROLES, index=0 if users else len(access.ROLES) - 1,
                                 key="user_add_role")
        oidc = cols[2].checkbox("Signs in through OIDC (no password)", help="the name must be their email",
                                key="user_add_oidc")
        if st.form_submit_button("Add", type="primary", key="user_add_submit"):
            added = _do(people.add_person, name, role=role, oidc=oidc, done=f"Added {name} ({role})")
            if added is not None and added.password:
                st.session_state["users_secret"] = (added.name, added.password)
            st.rerun()

names = [u.name for u in users]
if users:
    with st.expander("Change a person: role, password, remove"):
        who_name = st.selectbox("Person", names, key="user_pick")
        person = next(u for u in users if u.name == who_name)
        cols = st.columns(3)
        new_role = cols[0].selectbox("Role", access.ROLES, index=access.ROLES.index(person.role),
                                     key=f"user_role_{who_name}")
        if cols[0].button("Change role", key="user_role_apply", disabled=new_role == person.role):
            _do(people.change_role, who_name, new_role, done=f"{who_name} is {new_role} now")
            st.rerun()
        if cols[1].button("Reset password", key="user_reset", disabled=not person.has_password,
                          help="A one-time link where they choose a new password, shown once here; their open "
                               "sessions end" if person.has_password else "Signs in through the identity provider"):
            path = _do(people.reset_password, who_name, done=f"Password link made for {who_name}")
            if path:
                st.session_state["users_link"] = (who_name, _origin() + path)
            st.rerun()
        with cols[2].popover("Remove…"):
            st.write(f"Remove {common.escape_markdown(who_name)}? Their sessions end; labels they gave keep their name.")
            if st.button(f"Remove {common.escape_markdown(who_name)}", key="user_remove", type="primary"):
                _do(people.remove_person, who_name, done=f"Removed {who_name}")
                st.rerun()

scripts = {s.script_id: s.title for s in list_scripts(db)}
access_rows = accounts.script_access(db)
if access_rows:
    st.subheader("Restricted scripts")
    st.dataframe(pd.DataFrame([{"script_id": sid, "title": scripts.get(sid, ""), "visible to": ", ".join(names_)}
                               for sid, names_ in access_rows.items()]), hide_index=True, key="access_table")
if users and scripts:
    with st.expander("Restrict a script to named people"):
        script_id = st.selectbox("Script", list(scripts), key="restrict_script",
                                 format_func=lambda sid: f"{scripts[sid]} (#{sid})")
        chosen = st.multiselect("Visible to (admins always see every script)", names,
                                default=[n for n in access_rows.get(script_id, []) if n in names],
                                key=f"restrict_names_{script_id}")
        left, right = st.columns(2)
        if left.button("Restrict to these people", key="restrict_apply", disabled=not chosen):
            _do(people.restrict, int(script_id), chosen, done="Restricted")
            st.rerun()
        if right.button("Visible to everyone", key="restrict_clear", disabled=script_id not in access_rows):
            _do(people.restrict, int(script_id), None, done="Visible to everyone")
            st.rerun()

if users and scripts:
    st.subheader("Work assigned")
    st.caption("A person's queue on the Label page takes the scripts and pages assigned to them first.")
    assigned = team_store.assignments(db)
    if assigned:
        st.dataframe(pd.DataFrame(assigned), hide_index=True, key="assign_table",
                     column_order=["name", "script_id", "title", "page", "assigned_by", "created_at"])
    with st.expander("Assign work"):
        cols = st.columns([2, 3, 2])
        person_name = cols[0].selectbox("Person", names, key="assign_person")
        assign_script = cols[1].selectbox("Script", list(scripts), key="assign_script",
                                          format_func=lambda sid: f"{scripts[sid]} (#{sid})")
        page = cols[2].number_input("Page (0: the whole script)", min_value=0, value=0, step=1, key="assign_page")
        if st.button("Assign", key="assign_apply", type="primary"):
            _do(people.assign_work, person_name, int(assign_script), page=int(page) or None,
                done=f"Assigned to {person_name}")
            st.rerun()
        if assigned:
            gone = st.selectbox("Take back", [a["assignment_id"] for a in assigned], key="unassign_pick",
                                format_func=lambda i: next(f"{a['name']}: {a['title']}"
                                                           + (f" page {a['page']}" if a["page"] else "")
                                                           for a in assigned if a["assignment_id"] == i))
            if st.button("Take back", key="unassign_apply"):
                _do(people.unassign_work, int(gone), done="Taken back")
                st.rerun()

st.subheader("Progress")
team_views.show_progress(db, key="users_progress")

st.subheader("Audit log")
log = accounts.audit_log(db, limit=500)
if not log:
    st.caption("Nothing recorded yet.")
else:
    st.dataframe(pd.DataFrame(log), hide_index=True, key="audit_table",
                 column_order=["at", "actor", "action", "script_id", "detail"])
