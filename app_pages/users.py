"""Users (admins): the accounts, restricted scripts and the audit log. Changes are made with
`scriptlabel users ...` and `scriptlabel restrict ...` on the server."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from store import accounts

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
st.subheader("Audit log")
log = accounts.audit_log(db, limit=500)
if not log:
    st.caption("Nothing recorded yet.")
else:
    st.dataframe(pd.DataFrame(log), hide_index=True, key="audit_table",
                 column_order=["at", "actor", "action", "script_id", "detail"])
