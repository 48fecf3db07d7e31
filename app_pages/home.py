"""Home: where a person starts — a way in (their name), each script's progress, "continue labeling" where
they stopped, the model's state and what is waiting for them (sequences to rate)."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages import support
from store import labels as label_store
from store import models as model_store
from store import sequences as sequence_store

st.title("Home")
db = common.db()
who = common.identity()
name = common.annotator()


def _take_name() -> None:
    st.session_state["annotator"] = str(st.session_state.get("home_name", "")).strip()


def _go(page: str, script_id: int | None) -> None:
    """Open a page on a script: the sidebar's script picker follows (common.script_sidebar)."""
    if script_id is not None:
        st.session_state["script_wanted"] = script_id
    st.switch_page(page)


if not name:
    with st.container(border=True, key="home_way_in"):
        st.markdown("**Start here: who is labeling?** Your name is saved with every label and rating, and two "
                    "people labeling at once each get their own lines.")
        st.text_input("Your name", key="home_name", placeholder="e.g. Ana", on_change=_take_name)
    st.stop()

st.markdown(f"Welcome back, **{common.escape_markdown(name)}**." if label_store.last_labeled_script(db, name)
            else f"Welcome, **{common.escape_markdown(name)}**.")
overview = support.scripts_overview(db, hidden_scripts=common.hidden_scripts())
overview = overview[overview["status"] == "ready"] if "status" in overview else overview

if overview.empty:
    st.info("No screenplay yet: add one (PDF, plain text, Fountain or Final Draft) and label it line by line.")
    if common.can("ingest") and st.button("Add a screenplay", type="primary", key="home_add",
                                          icon=":material/upload_file:"):
        _go("app_pages/scripts.py", None)
    st.stop()

# --- continue where you stopped -----------------------------------------------------------------
stopped = label_store.last_labeled_script(db, name)
titles = dict(zip(overview["script_id"].astype(int), overview["title"]))
target = stopped if stopped in titles else int(overview.sort_values("progress").iloc[0]["script_id"])
with st.container(border=True, key="home_continue"):
    cols = st.columns([4, 2], vertical_alignment="center")
    verb = "Continue labeling" if stopped in titles else "Start labeling"
    cols[0].markdown(f"**{common.escape_markdown(verb)} “{common.escape_markdown(titles[target])}”** — one key "
                     "per line; the lines the "
                     "model is least sure of come first.")
    cols[0].caption(f"Link to come back to: /label?annotator={common.escape_markdown(name)}&script={int(target)}")
    if cols[1].button(common.escape_markdown(verb), type="primary", key="home_label", icon=":material/keyboard:", width="stretch"):
        _go("app_pages/label.py", target)

# --- the model's state ------------------------------------------------------------------------
current = model_store.current_version(db, "lines")
runs = model_store.list_runs(db, kind="lines", limit=1)
run = runs[0] if runs else None
if run is not None and run["status"] in ("queued", "running"):
    st.warning("The line model is retraining on the labels given so far; labeling goes on meanwhile.",
               icon=":material/hourglass_top:")
elif run is not None and run["status"] == "failed":
    st.error("The last retrain of the line model failed; the current model keeps suggesting. The Models page "
             "says why.", icon=":material/error:")
if current is None:
    st.info("Suggestions come from the shipped model; it retrains on your labels as you go.",
            icon=":material/model_training:")
else:
    st.info(f"Suggestions come from model v{int(current.version)}, retrained on people's labels "
            f"{common.escape_markdown(current.created_at[:16].replace('T', ' '))} UTC.", icon=":material/model_training:")

# --- what is waiting for you ---------------------------------------------------------------------
unrated = sequence_store.unrated_counts(db)
waiting = [(sid, *unrated[sid]) for sid in titles if unrated.get(sid, (0, 0))[0]]
if waiting and common.can("rate"):
    st.subheader("Waiting for you")
    for script_id, left, total in waiting:
        row = st.columns([4, 2], vertical_alignment="center")
        row[0].markdown(f"**{int(left)} of {int(total)} sequences** of “{common.escape_markdown(titles[script_id])}” have no "
                        "overall complexity rating yet")
        if row[1].button("Rate them", key=f"home_rate_{script_id}", icon=":material/movie_filter:", width="stretch"):
            _go("app_pages/sequences.py", script_id)

if common.can("adjudicate"):
    from labeling.team.adjudication import line_disagreements

    open_lines = len(line_disagreements(db, hidden_scripts=frozenset(common.hidden_scripts()), context=False))
    if open_lines:
        row = st.columns([4, 2], vertical_alignment="center")
        row[0].markdown(f"**{int(open_lines)} lines** two people labeled differently wait for your decision")
        if row[1].button("Adjudicate", key="home_adjudicate", icon=":material/gavel:", width="stretch"):
            st.switch_page("app_pages/team.py")

# --- every script's progress ---------------------------------------------------------------------
st.subheader("Scripts")
for item in overview.itertuples():
    row = st.columns([3, 3, 1], vertical_alignment="center")
    row[0].markdown(f"**{common.escape_markdown(item.title)}** · {int(item.pages)} pages")
    row[1].progress(float(item.progress), text=f"{item.labeled:,} of {item.lines:,} lines labeled")
    if row[2].button("Open", key=f"home_open_{item.script_id}", width="stretch"):
        _go("app_pages/label.py", int(item.script_id))
if common.can("ingest") and st.button("Add screenplays", key="home_add_more", icon=":material/upload_file:"):
    _go("app_pages/scripts.py", None)
