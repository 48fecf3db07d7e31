"""scriptlabel in the browser: `streamlit run streamlit_app.py` (or `scriptlabel serve`).

The database is $SCRIPTLABEL_DB (default ./scriptlabel-data/scriptlabel.db); on the first start an
empty database gets the bundled sample screenplay unless SCRIPTLABEL_SAMPLE=0. With any account (or
OIDC in .streamlit/secrets.toml) every page asks for sign-in first, and only the pages the signed-in
person's role may use are registered, so a direct URL to another page does not reach it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages import common
from app_pages.keys_return import keys_return_to_page
from store.types import ScriptlabelError

st.set_page_config(page_title="scriptlabel", page_icon=str(Path(__file__).with_name("app_pages") / "icon.png"), layout="wide")
common.settings()
try:
    common.db()  # a database from a newer version, a damaged or unreachable one: a message, not a traceback
except ScriptlabelError as exc:
    st.error(f"The database cannot be opened: {common.escape_markdown(exc)}")
    st.stop()
common.first_start()
who = common.identity()
if who is None:
    st.navigation([st.Page(common.sign_in_page, title="Sign in", icon=":material/login:", url_path="sign-in",
                           default=True)], position="hidden").run()
    st.stop()
if who.signed_in:
    common.account_sidebar(who)
else:
    common.annotator_sidebar()
common.script_sidebar()
with st.sidebar:
    keys_return_to_page()  # after any widget choice, keys go back to the page (every page, one mechanism)

# (page, title, icon, the action a role must be allowed to open it)
PAGES = [
    ("app_pages/home.py", "Home", ":material/home:", "label"),
    ("app_pages/scripts.py", "Scripts", ":material/description:", "label"),
    ("app_pages/label.py", "Label", ":material/keyboard:", "label"),
    ("app_pages/script_view.py", "Script", ":material/view_list:", "label"),
    ("app_pages/sequences.py", "Sequences", ":material/movie_filter:", "rate"),
    ("app_pages/models.py", "Models", ":material/model_training:", "train"),
    ("app_pages/team.py", "Team", ":material/groups:", "team"),
    ("app_pages/scheme.py", "Scheme", ":material/label:", "scheme"),
    ("app_pages/export.py", "Export", ":material/download:", "export"),
    ("app_pages/users.py", "Users", ":material/group:", "users"),
]
navigation = st.navigation([st.Page(path, title=title, icon=icon, default=index == 0)
                            for index, (path, title, icon, action) in enumerate(PAGES)
                            if common.can(action)])
try:
    navigation.run()
except Exception as exc:  # st.stop/st.rerun are BaseExceptions and pass through
    common.report_error(exc)
