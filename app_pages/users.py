"""Users (admins): the accounts, restricted scripts and the audit log. Changes are made with
`scriptlabel users ...` and `scriptlabel restrict ...` on the server."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from store import accounts
from store.scripts import list_scripts

common.page_requires("users")
st.title("Users")
db = common.db()
users = accounts.list_users(db)
if not users:
    st.info("No accounts: the app is in single-user mode, on this machine only. Add the first admin on the "
            "server to turn sign-in on and share the app on a network (see the README).")
else:
    st.dataframe(pd.DataFrame([{"name": u.name, "role": u.role, "password": u.has_password,
                                "created_at": u.created_at} for u in users]),
                 hide_index=True, key="users_table",
                 column_config={"password": st.column_config.CheckboxColumn(
                     "local password", help="without one the person signs in through the identity provider")})
access_rows = accounts.script_access(db)
if access_rows:
    st.subheader("Restricted scripts")
    st.dataframe(pd.DataFrame([{"script_id": sid, "visible to": ", ".join(names)}
                               for sid, names in access_rows.items()]), hide_index=True, key="access_table")
scripts = {s.script_id: s.title for s in list_scripts(db)}
if users and scripts:
    with st.expander("Restrict a script to named people"):
        script_id = st.selectbox("Script", list(scripts), key="restrict_script",
                                 format_func=lambda sid: f"{scripts[sid]} (#{sid})")
        names = st.multiselect("Visible to (admins always see every script)", [u.name for u in users],
                               default=access_rows.get(script_id, []), key=f"restrict_names_{script_id}")
        left, right = st.columns(2)
        if left.button("Restrict to these people", key="restrict_apply", disabled=not names):
            try:
                who = common.require("restrict")
                accounts.restrict_script(db, int(script_id), names)
                accounts.audit(db, who.name, "restrict", script_id=int(script_id), detail={"names": names})
                st.rerun()
            except Exception as exc:
                common.report_error(exc)
        if right.button("Visible to everyone", key="restrict_clear", disabled=script_id not in access_rows):
            who = common.require("restrict")
            accounts.unrestrict_script(db, int(script_id))
            accounts.audit(db, who.name, "restrict", script_id=int(script_id), detail={"everyone": True})
            st.rerun()
st.subheader("Audit log")
log = accounts.audit_log(db, limit=500)
if not log:
    st.caption("Nothing recorded yet.")
else:
    st.dataframe(pd.DataFrame(log), hide_index=True, key="audit_table",
                 column_order=["at", "actor", "action", "script_id", "detail"])
