"""Label: one key per line. The view runs in the browser and stores every key press by its line id."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.label_view import label_view
from labeling.session import keys as scheme_keys
from labeling.session.sync import DEFAULT_ORDER, ORDERS
from labeling.session.review import SURE_CONFIDENCE
from store.db import database_uid

ORDER_HELP = ("margin / entropy / least_confidence: the lines the model is least sure of first; "
              "diverse: the least sure line of each kind of line first, and lines of a pattern you already "
              "labeled (page numbers, a running header) later; "
              "random: an unbiased sample; script: reading order; review: labels people gave that the model "
              "confidently contradicts (the same key confirms, another fixes).")

db = common.db()
name = common.annotator()
if not name:
    def _take_name() -> None:
        st.session_state["annotator"] = str(st.session_state.get("label_name", "")).strip()

    st.markdown("**Who is labeling?** Your name is saved with every label; press Enter and the first line appears.")
    st.text_input("Your name", key="label_name", placeholder="e.g. Ana", on_change=_take_name)
    st.stop()
if not common.has_scripts():
    st.info("No scripts yet: add one on the Scripts page.")
    st.stop()

if "order" not in st.session_state:
    wanted = st.query_params.get("order", DEFAULT_ORDER)
    st.session_state["order"] = wanted if wanted in ORDERS else DEFAULT_ORDER
strategy = st.sidebar.selectbox("Order", ORDERS, key="order", help=ORDER_HELP)
if st.query_params.get("order", DEFAULT_ORDER) != strategy:
    st.query_params["order"] = strategy

common.require("label")
label_view(database=database_uid(db), annotator=name, script_id=common.script_picker(allow_all=True),
           strategy=strategy, sure_confidence=SURE_CONFIDENCE, session=common.view_session_token(),
           signed_in=common.identity().signed_in, keys=scheme_keys.key_map(db), titles=scheme_keys.titles(db))
