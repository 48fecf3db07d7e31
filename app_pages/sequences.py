"""Sequences: the sequence as a screenplay with its pages, complexity per department with keys 1–5 (undoable),
similar sequences, the department's training run; list, merge, split, rename."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages import support
from app_pages.sequence_edit import sequence_edit
from labeling.sequences import edits, view
from labeling.team import overlap
from labeling.training.runs import complexity_run_status
from store import sequences as sequence_store
from store.db import database_uid
from store.scripts import has_more_lines_than
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
if common.can("departments"):  # leads; checked again where it runs (labeling.sequences.edits)
    with top[2].popover("Add a department"):
        new_department = st.text_input("Name", key="seq_new_department", placeholder="e.g. crowd")
        if st.button("Add", key="seq_add_department") and new_department:
            try:
                edits.add_department(db, common.require("departments"), new_department)
                st.rerun()
            except ScriptlabelError as exc:
                common.report_error(exc)

table = common.sequence_table(script_id, department)
# With overlap, N people rate a sequence on their own: one not rated by this person yet shows no rating.
table = overlap.blind_ratings(db, table, script_id=script_id, annotator=common.annotator(), department=department)
if table.empty:
    st.info("This script has no sequences.")
    st.stop()
order = support.rating_order(table)
by_id = table.set_index("sequence_id")


def _retrain() -> None:
    """Every few ratings, the department's models retrain in a background worker (never blocks rating)."""
    from labeling.training.runs import maybe_retrain_complexity

    try:
        settings = common.settings()
        maybe_retrain_complexity(settings.db_path, department, every=settings.rate_retrain_every, db=db,
                                 models=settings.auto_complexity_models)
    except ScriptlabelError as exc:
        st.session_state["seq_error"] = f"could not start training: {exc}"


def _rate(sequence_id: int, value: int) -> None:
    try:
        sequence_store.add_rating(db, sequence_id, value, department=department,
                                  annotator=common.annotator() or "anonymous")
    except ScriptlabelError as exc:
        st.session_state["seq_error"] = str(exc)
        return
    st.session_state["seq_current"] = support.next_unrated(table, after=sequence_id) or sequence_id
    st.session_state.pop("seq_edit_notice", None)  # the person moved on
    _retrain()


def _undo(sequence_id: int, rating_id: int) -> None:
    undone = sequence_store.undo_rating(db, sequence_id, department=department,
                                        annotator=common.annotator() or "anonymous", rating_id=rating_id)
    if undone is None:
        return  # already taken back (the click arrived twice) or nothing of yours to undo
    st.session_state["seq_current"] = sequence_id
    st.session_state["seq_undone"] = int(undone["value"])
    _retrain()


@st.cache_resource(max_entries=2, show_spinner="Comparing sequences…")
def _embedded(_db, token: tuple):
    from labeling.session.similar import embed_sequences

    return embed_sequences(_db)


def _edit(action, *args, **kwargs) -> None:
    """A sequence change as the signed-in person (leads only: labeling.sequences.edits checks and audits)."""
    try:
        action(db, common.require("restructure"), *args, **kwargs)
    except ScriptlabelError as exc:
        st.session_state["seq_error"] = str(exc)


def _edit_controls(key: str, mode: str, **what) -> None:
    """Split, merge or Undo through the app's own route (app_pages/sequence_edit): a click is applied once,
    on the sequence and version it was made on, whatever rerun replaces the page meanwhile. Once done, the
    page says what happened (with Undo) and shows the sequence it made or kept."""
    done = sequence_edit(key=key, database=database_uid(db), annotator=common.annotator() or "anonymous",
                         session=common.view_session_token(), mode=mode, **what)
    seen = st.session_state.setdefault("seq_edit_seen", set())
    if not done or done.get("client_id") in seen:
        return
    seen.add(done["client_id"])
    if done.get("edit_id") is not None:
        st.session_state["seq_edit_notice"] = int(done["edit_id"])
        st.session_state["seq_current"] = int(done["show"])
    st.rerun()


if error := st.session_state.pop("seq_error", None):
    st.error(common.escape_markdown(common.app_message(error)))
if (undone := st.session_state.pop("seq_undone", None)) is not None:
    st.toast(f"rating {common.escape_markdown(undone)} taken back")

if (notice := st.session_state.get("seq_edit_notice")) is not None:
    try:
        shown = sequence_store.sequence_edit(db, edit_id=notice)
    except ScriptlabelError:
        shown = None
    if shown is not None and shown.script_id == script_id:
        with st.container(border=True, key="seq_edit_notice_box"):
            row = st.columns([6, 1], vertical_alignment="center")
            if shown.undone_at is None:
                row[0].success(common.escape_markdown(shown.describe()[0].upper() + shown.describe()[1:]),
                               icon=":material/call_split:" if shown.kind == "split" else ":material/merge:")
                with row[1]:
                    _edit_controls("seq_edit_undo", "undo", edit_id=shown.edit_id)
            else:
                row[0].info(common.escape_markdown(f"Undone: {shown.describe()}"), icon=":material/undo:")
                if row[1].button("OK", key="seq_edit_notice_ok"):
                    st.session_state.pop("seq_edit_notice", None)
                    st.rerun()

current = st.session_state.get("seq_current")
if current not in by_id.index:
    current = order[0]
    st.session_state["seq_current"] = current
seq = by_id.loc[current]
rated = int((table["rating"].notna()).sum())
st.subheader(f"{common.escape_markdown(seq['code'])} · {common.escape_markdown(seq['title']) or 'untitled'}")
st.caption(f"{common.escape_markdown(department)}: {int(rated)} of {len(table)} sequences rated · starts at the most "
           "uncertain unrated one; after a rating, the next unrated one further on")
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
if has_prediction and (caveat := view.prediction_caveat(db, department)):
    st.caption(common.escape_markdown(caveat))
st.caption("Characters: " + (common.escape_markdown(seq["characters"]) or "none"))
st.caption(f"Rate its {common.escape_markdown(department)} complexity (keys 1–5):")
rate = st.columns(5)
for value in range(1, 6):
    rate[value - 1].button(view.RATING_NAMES[value], key=f"rate_{value}", shortcut=str(value), on_click=_rate,
                           args=(int(current), value), width="stretch",
                           help=f"Rate {common.escape_markdown(seq['code'])} {int(value)} for {common.escape_markdown(department)} "
                                "and go to the next unrated sequence",
                           type="primary" if has_rating and int(seq["rating"]) == value else "secondary")
nav = st.columns(3)
position = order.index(int(current))
if nav[0].button("← Previous sequence", key="seq_prev", disabled=position == 0, shortcut="Left",
                 help="In rating order: unrated, most uncertain first", width="stretch"):
    st.session_state["seq_current"] = order[position - 1]
    st.rerun()
mine = sequence_store.own_rating(db, int(current), department=department,
                                annotator=common.annotator() or "anonymous")
nav[1].button(f"Undo my {common.escape_markdown(department)} rating", key="seq_undo", on_click=_undo,
              args=(int(current), mine["rating_id"] if mine else 0), disabled=mine is None, width="stretch",
              help="Takes back your latest rating of this sequence (recorded as an undo; nothing is deleted)")
if nav[2].button("Next sequence →", key="seq_next", disabled=position + 1 >= len(order), shortcut="Right",
                 help="In rating order: unrated, most uncertain first", width="stretch"):
    st.session_state["seq_current"] = order[position + 1]
    st.rerun()



@st.fragment(run_every=3)
def _run_status() -> None:
    """The department's newest training run; reloads the page when one finishes (new predictions, new order)."""
    status = complexity_run_status(common.db(), department)
    st.caption(common.escape_markdown(view.run_status_text(status, department)))
    seen_key = f"seq_run_seen_{department}"
    state = None if status is None else (status["run_id"], status["status"])
    seen = st.session_state.get(seen_key)
    st.session_state[seen_key] = state
    if seen is not None and state != seen and state[1] in ("done", "failed"):
        st.rerun(scope="app")


_run_status()

lines = common.script_lines(script_id)
text_col, pages_col = st.columns([3, 1])
with text_col:
    st.markdown("**The sequence, as a screenplay**")
    text = view.screenplay_text(lines, first_line_no=int(seq["first_line_no"]), last_line_no=int(seq["last_line_no"]))
    # A code block shows the script's text verbatim: never rendered as Markdown or HTML.
    st.code(text or "(no lines)", language=None, height=420, wrap_lines=False)
with pages_col:
    own_pages = lines.loc[lines["sequence_id"] == int(current), "page"]
    images = view.page_images(common.pages(script_id), int(own_pages.min()), int(own_pages.max())) \
        if len(own_pages) else []
    if images:
        # through the app's own route (session and restricted scripts checked), never Streamlit's /media/
        st.markdown(support.page_thumbnails_html(script_id, [n for n, _ in images[:6]]), unsafe_allow_html=True)
        if len(images) > 6:
            st.caption(f"and {len(images) - 6} more pages")
    else:
        st.caption("No page images (a text, Fountain or FDX script).")

# Beyond these, comparing with the whole library waits until asked (it reads every line: 85 s at 5M lines).
AUTO_COMPARE_SEQUENCES = 3000
AUTO_COMPARE_LINES = 200_000

with st.expander("Sequences like this one", expanded=True):
    from labeling.session.similar import embedding_token, similar_table

    library = sequence_store.count_sequences(db)
    large = library > AUTO_COMPARE_SEQUENCES or has_more_lines_than(db, AUTO_COMPARE_LINES)
    if large and not st.toggle(
            f"Compare with all {library:,} sequences of the library", key="seq_compare",
            help="Reads every sequence of every script once (then kept until lines or labels change)."):
        similar = None
    else:
        similar = similar_table(db, int(current), department=department, n=5,
                                embedded=_embedded(db, embedding_token(db)))
    if similar is None:
        st.caption("Turn on the comparison to see the most similar sequences and their ratings.")
    elif similar.empty:
        st.caption("Only one sequence so far: nothing to compare with.")
    else:
        st.dataframe(similar.drop(columns=["sequence_id"]), hide_index=True, key="seq_similar",
                     column_config={"similarity": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                                   format="%.2f")})

with st.expander("Breakdown tags (multi-label: crowd, water, fire, …)"):
    tags_now = support.sequence_tags(db, int(current))
    chosen = st.multiselect("Tags present in this sequence", options=support.tag_options(db), default=tags_now,
                            accept_new_options=True, key=f"seq_tags_{int(current)}")
    if st.button("Save tags", key="seq_tags_save"):
        support.save_sequence_tags(db, int(current), chosen, annotator=common.annotator() or "anonymous")
        st.toast("tags saved")
        st.rerun()

with st.expander("Edit this sequence: rename, split, merge"):
    if not common.can("restructure"):
        st.caption("Leads rename, split and merge sequences (ask one); your ratings and tags stay yours.")
    else:
        with st.form("seq_rename"):
            code = st.text_input("Code", value=seq["code"])
            title = st.text_input("Title", value=seq["title"])
            if st.form_submit_button("Rename"):
                _edit(edits.rename, int(current), code=code, title=title)
                st.rerun()
        following = edits.merge_preview(db, int(current))["next"]
        # what a merge moves is said before the click (and Undo after it: labeling.sequences.edits.undo)
        _edit_controls("seq_editor", "edit", sequence={
            "sequence_id": int(current), "version": int(sequence_store.get_sequence(db, int(current))["version"]),
            "code": str(seq["code"]), "first_line_no": int(seq["first_line_no"]),
            "last_line_no": int(seq["last_line_no"])},
            following=None if following is None else {"code": str(following["code"]), "lines": int(following["lines"]),
                                                      "ratings": int(following["ratings"])})
        recent = sequence_store.sequence_edits(db, script_id, limit=5)
        if recent:
            st.caption("Latest splits and merges of this script")
            for edit in recent:
                row = st.columns([6, 1], vertical_alignment="center")
                row[0].markdown(common.escape_markdown(edit.describe()) + f" · {common.escape_markdown(edit.annotator)}"
                                + (" · **undone**" if edit.undone_at else ""))
                if edit.undone_at is None:
                    with row[1]:
                        _edit_controls(f"seq_edit_undo_{edit.edit_id}", "undo", edit_id=edit.edit_id)

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
