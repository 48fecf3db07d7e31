"""Sequences: list, merge, split, rename; complexity per department with keys 1–5; predictions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from labeling import app_support as support
from store import sequences as sequence_store
from store.types import LABELS, ScriptlabelError

st.title("Sequences")
db = common.db()
top = st.columns([3, 2, 2])
with top[0]:
    script_id = common.script_picker(key="seq_script")
if script_id is None:
    st.info("No scripts yet: add one on the Scripts page.")
    st.stop()
departments = sequence_store.departments(db)
department = top[1].selectbox("Department", departments, key="seq_department")
with top[2].popover("Add a department"):
    new_department = st.text_input("Name", key="seq_new_department", placeholder="e.g. crowd")
    if st.button("Add", key="seq_add_department") and new_department:
        try:
            sequence_store.add_department(db, new_department)
            st.rerun()
        except ScriptlabelError as exc:
            common.report_error(exc)

table = common.sequence_table(script_id, department)
if table.empty:
    st.info("This script has no sequences.")
    st.stop()
order = support.rating_order(table)
by_id = table.set_index("sequence_id")


def _rate(sequence_id: int, value: int) -> None:
    try:
        sequence_store.add_rating(db, sequence_id, value, department=department,
                                  annotator=common.annotator() or "anonymous")
    except ScriptlabelError as exc:
        st.session_state["seq_error"] = str(exc)
        return
    st.session_state["seq_current"] = support.next_unrated(table, after=sequence_id) or sequence_id


def _edit(action, *args, **kwargs) -> None:
    try:
        action(db, *args, **kwargs)
    except ScriptlabelError as exc:
        st.session_state["seq_error"] = str(exc)


if error := st.session_state.pop("seq_error", None):
    st.error(common.escape_markdown(common.app_message(error)))

current = st.session_state.get("seq_current")
if current not in by_id.index:
    current = order[0]
    st.session_state["seq_current"] = current
seq = by_id.loc[current]
rated = int((table["rating"].notna()).sum())
st.subheader(f"{common.escape_markdown(seq['code'])} · {common.escape_markdown(seq['title']) or 'untitled'}")
st.caption(f"{common.escape_markdown(department)}: {rated} of {len(table)} sequences rated · unrated ones come most uncertain first")
info = st.columns(4)
info[0].metric("Lines", int(seq["lines"]))
info[1].metric("Pages", seq["pages"])
has_rating, has_prediction = pd.notna(seq["rating"]), pd.notna(seq["predicted"])
info[2].metric("Rating", int(seq["rating"]) if has_rating else "—")
if has_prediction:
    info[3].metric("Predicted", f"{seq['expected']:.1f} ± {seq['uncertainty']:.2f}",
                   help=f"most likely rating {int(seq['predicted'])}; ± is the model's uncertainty")
else:
    info[3].metric("Predicted", "—", help="Train a complexity model on the Models page (needs rated sequences).")
st.caption("Characters: " + (common.escape_markdown(seq["characters"]) or "none"))
rate = st.columns(5)
for value in range(1, 6):
    rate[value - 1].button(str(value), key=f"rate_{value}", shortcut=str(value), on_click=_rate,
                           args=(int(current), value), width="stretch",
                           type="primary" if has_rating and int(seq["rating"]) == value else "secondary")
nav = st.columns(2)
position = order.index(int(current))
if nav[0].button("Previous in rating order", key="seq_prev", disabled=position == 0, shortcut="Left"):
    st.session_state["seq_current"] = order[position - 1]
    st.rerun()
if nav[1].button("Next in rating order", key="seq_next", disabled=position + 1 >= len(order), shortcut="Right"):
    st.session_state["seq_current"] = order[position + 1]
    st.rerun()

with st.expander("Breakdown tags (multi-label: crowd, water, fire, …)"):
    tags_now = support.sequence_tags(db, int(current))
    chosen = st.multiselect("Tags present in this sequence", options=support.tag_options(db), default=tags_now,
                            accept_new_options=True, key=f"seq_tags_{int(current)}")
    if st.button("Save tags", key="seq_tags_save"):
        support.save_sequence_tags(db, int(current), chosen, annotator=common.annotator() or "anonymous")
        st.toast("tags saved")
        st.rerun()

with st.expander("Edit this sequence: rename, split, merge"):
    with st.form("seq_rename"):
        code = st.text_input("Code", value=seq["code"])
        title = st.text_input("Title", value=seq["title"])
        if st.form_submit_button("Rename"):
            _edit(sequence_store.rename_sequence, int(current), code=code, title=title)
            st.rerun()
    first, last = int(seq["first_line_no"]), int(seq["last_line_no"])
    if last > first:
        at = st.number_input("Split so a new sequence starts at line", min_value=first + 1, max_value=last,
                             value=first + 1, key="seq_split_at")
        st.button("Split", key="seq_split", on_click=_edit, args=(sequence_store.split_sequence, int(current), int(at)))
    st.button("Merge with the next sequence", key="seq_merge", on_click=_edit,
              args=(sequence_store.merge_with_next, int(current)))

st.subheader("All sequences")
selection = st.dataframe(
    table, hide_index=True, key="seq_table", on_select="rerun", selection_mode="single-row",
    column_order=["code", "title", "pages", "lines", *LABELS, "characters", "rating", "predicted", "uncertainty"],
    column_config={label: st.column_config.NumberColumn(common.LABEL_TITLES[label], width="small")
                   for label in LABELS} | {
        "uncertainty": st.column_config.NumberColumn(format="%.2f"),
    },
)
if selection and selection.selection.rows:
    picked = int(table.iloc[selection.selection.rows[0]]["sequence_id"])
    if picked != current and st.session_state.get("seq_picked") != picked:
        st.session_state["seq_picked"] = picked
        st.session_state["seq_current"] = picked
        st.rerun()
