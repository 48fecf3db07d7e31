"""scriptlabel in the browser: `streamlit run streamlit_app.py` (or `scriptlabel serve`).

The database is $SCRIPTLABEL_DB (default ./scriptlabel-data/scriptlabel.db); on the first start an
empty database gets the bundled sample screenplay unless SCRIPTLABEL_SAMPLE=0.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages import common
from store.types import ScriptlabelError

st.set_page_config(page_title="scriptlabel", page_icon=str(Path(__file__).with_name("app_pages") / "icon.png"), layout="wide")
common.settings()
try:
    common.db()  # a database from a newer version, a damaged or unreachable one: a message, not a traceback
except ScriptlabelError as exc:
    st.error(f"The database cannot be opened: {exc}")
    st.stop()
common.first_start()
common.annotator_sidebar()
common.script_sidebar()

navigation = st.navigation([
    st.Page("app_pages/scripts.py", title="Scripts", icon=":material/description:", default=True),
    st.Page("app_pages/label.py", title="Label", icon=":material/keyboard:"),
    st.Page("app_pages/script_view.py", title="Script", icon=":material/view_list:"),
    st.Page("app_pages/sequences.py", title="Sequences", icon=":material/movie_filter:"),
    st.Page("app_pages/models.py", title="Models", icon=":material/model_training:"),
    st.Page("app_pages/export.py", title="Export", icon=":material/download:"),
])
navigation.run()
