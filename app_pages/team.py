"""Team (leads): overlap, agreement between people, the adjudication queue (keys), each person's progress."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages import team_views
from labeling.session.keys import LABEL_KEYS
from labeling.team import adjudication, overlap
from store import sequences as sequence_store
from store.types import ScriptlabelError

common.page_requires("team")
st.title("Team")
db = common.db()
script_id = common.script_picker(allow_all=True)
hidden = frozenset(common.hidden_scripts())
team_views.focus_returns_to_page()

# --- overlap --------------------------------------------------------------------------------------
setting = overlap.get_overlap(db)
with st.container(border=True, key="overlap_box"):
    st.markdown("**Overlap** — a share of lines that several people label on their own (each never sees the "
                "others' labels); their agreement shows below and their disagreements wait for a lead")
    row = st.columns([2, 2, 2, 2, 3])
    share = row[0].number_input("Share of lines", min_value=0.0, max_value=1.0, value=float(setting.share),
                                step=0.05, format="%.2f", key="overlap_share")
    people = row[1].number_input("People per line", min_value=2, max_value=overlap.MAX_PEOPLE,
                                 value=int(setting.annotators), step=1, key="overlap_people")
    scope = row[2].radio("Overlap", overlap.SCOPES, index=overlap.SCOPES.index(setting.scope), key="overlap_scope",
                         format_func={"lines": "lines", "scripts": "whole scripts"}.get, horizontal=True)
    if row[3].button("Save overlap", key="overlap_save", type="primary",
                     disabled=(share, people, scope) == (setting.share, setting.annotators, setting.scope)):
        try:
            setting = overlap.set_overlap(db, common.require("overlap"), share=share, annotators=int(people),
                                          scope=scope)
            st.toast(f"Overlap: {setting.share:.0%} of {common.escape_markdown(setting.scope)}, {int(setting.annotators)} people each")
        except ScriptlabelError as exc:
            common.report_error(exc)
    summary = overlap.overlap_summary(db, setting)
    row[4].caption(f"Now: {summary['lines_in_overlap']:,} of {summary['lines']:,} lines overlap "
                   f"({int(setting.annotators)} people each)" if setting.active else
                   "Now: off — every line goes to one person.")

# --- agreement ------------------------------------------------------------------------------------
report = team_views.agreement(db, script_id, hidden)
st.subheader("Agreement")
if report.lines_overlapped == 0:
    st.info("No line has labels from two people yet: set an overlap above, and each person's queue on the Label "
            "page gives them the overlap lines others labeled.")
else:
    top = st.columns(4)
    top[0].metric("Lines overlapped", f"{report.lines_overlapped:,}", help="lines labeled by two people or more")
    top[1].metric("Cohen's κ (all pairs)", team_views.number(report.kappa))
    top[2].metric("Krippendorff's α", team_views.number(report.alpha),
                  help="all people at once, nominal; 95% bootstrap interval "
                       + common.escape_markdown(team_views.interval(report.alpha_ci95)))
    top[3].metric("Disagreements", f"{report.disagreements - report.adjudicated} open",
                  help=f"{int(report.disagreements)} lines where people differ, {int(report.adjudicated)} adjudicated")
    st.dataframe(team_views.pairs_table(report), hide_index=True, key="agreement_pairs", column_config={
        "agreement": st.column_config.NumberColumn("same label", format="percent"),
        "kappa": st.column_config.NumberColumn("Cohen's κ", format="%.3f"),
        "ci95": st.column_config.TextColumn("95% interval", help="bootstrap over the lines (1000 resamples)")})
    left, right = st.columns(2)
    with left:
        st.caption("Per label: κ of “this label or not” over every pair's lines (n: where either gave it)")
        st.dataframe(team_views.class_table(report), hide_index=True, key="agreement_classes", column_config={
            "kappa": st.column_config.NumberColumn("κ", format="%.3f")})
    with right:
        st.caption("Per script")
        st.dataframe(pd.DataFrame(report.per_script), hide_index=True, key="agreement_scripts", column_config={
            "agreement": st.column_config.NumberColumn("same label", format="percent"),
            "kappa": st.column_config.NumberColumn("κ", format="%.3f")})
    over_time = pd.DataFrame(report.over_time)
    if len(over_time) >= 2:
        st.caption("Over time: κ of the labels compared each day (by the later label of each pair)")
        st.line_chart(over_time.set_index("day")[["kappa", "agreement"]], height=200)
    else:
        st.dataframe(over_time, hide_index=True, key="agreement_time")
    if report.versus_adjudicated:
        st.caption("Each person against the adjudicated labels")
        st.dataframe(pd.DataFrame(report.versus_adjudicated), hide_index=True, key="agreement_adjudicated",
                     column_config={"agreement": st.column_config.NumberColumn("same as the lead", format="percent"),
                                    "kappa": st.column_config.NumberColumn("κ", format="%.3f")})
for department, summary in report.ratings.items():
    st.caption(f"Ratings, {common.escape_markdown(department)}: {int(summary['sequences_overlapped'])} sequences rated by "
               f"two people or more · ordinal α {common.escape_markdown(team_views.number(summary['alpha_ordinal']))}")
    st.dataframe(pd.DataFrame(summary["pairs"]), hide_index=True, key=f"agreement_ratings_{department}")


# --- adjudication ---------------------------------------------------------------------------------
@st.fragment
def adjudicate() -> None:
    """One disagreement at a time: the label keys (or 1–5 for ratings) settle it and the next one shows."""
    st.subheader("Adjudication")
    database = common.db()
    if not common.can("adjudicate"):
        st.caption("Leads settle disagreements here.")
        return
    if message := st.session_state.pop("adjudicated_message", None):
        st.success(common.escape_markdown(message))
    mode = st.radio("Settle", ["lines", "ratings"], key="adjudicate_mode", horizontal=True,
                    help="Keys: h a c d p t o give the label (1–5 the rating), s skips; they work without clicking.")
    skipped = st.session_state.setdefault(f"adjudicate_skipped_{mode}", [])
    if mode == "lines":
        queue = adjudication.line_disagreements(database, script_id, hidden_scripts=hidden)
        team_views.line_decision(database, [d for d in queue if d.line_id not in skipped], skipped)
    else:
        department = st.selectbox("Department", sequence_store.departments(database), key="adjudicate_department")
        queue = adjudication.rating_disagreements(database, department, script_id=script_id, hidden_scripts=hidden)
        team_views.rating_decision(database, [d for d in queue if d.sequence_id not in skipped], skipped, department)
    common.key_listener({key: f"adjudicate_{label}" for key, label in LABEL_KEYS.items()}
                        | {str(v): f"adjudicate_rate_{v}" for v in range(1, 6)} | {"s": "adjudicate_skip"})


adjudicate()

# --- people ---------------------------------------------------------------------------------------
st.subheader("People")
team_views.show_progress(db, key="people_progress")
