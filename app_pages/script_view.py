"""Script: every line colour-coded by label, filterable, click a line to relabel; the label strip."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages import support
from labeling.session import keys
from labeling.session.record import record_label
from store import labels as label_store
from labeling.session import bulk_accept
from store.accounts import audit
from store.types import ScriptlabelError

MAX_ROWS = 400

st.title("Script")
db = common.db()
script_id = common.script_picker(key="view_script")
if script_id is None:
    st.info("No scripts yet: add one on the Scripts page.")
    st.stop()

frame = common.script_lines(script_id)
st.image(common.strip_png(script_id), width="stretch",
         caption="The whole script: line position × label (solid: labeled by a person or imported; faint: model)")


def flagged_pages_section(script_id: int) -> None:
    """Scanned pages stored without lines (blank, no text found, unreadable, timed out), each with its reason,
    and reading one page again by OCR."""
    from labeling.ingest.page_ocr import ocr_page_again
    from labeling.ingest.pipeline import FLAG_WORDS
    from store.scripts import flagged_pages, get_pages

    flagged = flagged_pages(db, script_id)
    if flagged:
        st.warning(common.escape_markdown(
            f"{len(flagged)} page{'s' if len(flagged) > 1 else ''} of this scan gave no lines: "
            + "; ".join(f"page {f.page} — {FLAG_WORDS.get(f.flag, f.flag)} ({f.note})" for f in flagged)),
            icon=":material/report:")
    pages = [p for p in get_pages(db, script_id) if p.text_source in ("ocr", "text_layer")]
    if not pages or not common.can("ingest"):
        return
    with st.expander("Read a page again by OCR", expanded=bool(flagged)):
        flagged_first = [f.page for f in flagged] + [p.page for p in pages if p.flag is None]
        page = st.selectbox("Page", flagged_first, key="ocr_again_page",
                            format_func=lambda n: f"page {n}" + next((f" ({FLAG_WORDS.get(f.flag, f.flag)})"
                                                                      for f in flagged if f.page == n), ""))
        dpi = st.select_slider("Resolution (dpi)", options=[200, 300, 400, 600], value=300, key="ocr_again_dpi",
                               help="A faint or small scan may read better at a higher resolution (slower)")
        if st.button("Read it again", key="ocr_again"):
            try:
                who = common.require("ingest")
                with st.spinner(f"Reading page {page}…"):
                    result = ocr_page_again(db, script_id, int(page), dpi=int(dpi))
                audit(db, who.name, "ocr_page", script_id=script_id, detail={"page": int(page), "lines": result.lines})
            except ScriptlabelError as exc:
                st.error(common.escape_markdown(common.app_message(exc)))
            except Exception as exc:  # a logged id, never a traceback
                common.report_error(exc)
            else:
                st.toast(common.escape_markdown(
                    f"Page {page}: {result.lines} lines"
                    + (f" — still {FLAG_WORDS.get(result.flag, result.flag)}" if result.flag else "")))
                st.rerun()


flagged_pages_section(script_id)



def _accept(script_id: int, page: int | None, above: float, version: int, batch_id: str) -> None:
    """Confirm a bulk-accept: the batch id was made with the preview, so a second click stores nothing twice."""
    try:
        batch = bulk_accept.accept(db, common.require("bulk_accept"), script_id, above=above, page=page,
                                   model_version_seen=version, batch_id=batch_id)
        st.session_state["accept_message"] = (
            "success", f"Accepted {batch.lines} suggestions of v{batch.model_version} as one batch "
                       f"({batch.expected_errors:.2f} expected errors); undo it below if needed.")
        st.session_state.pop("accept_batch_id", None)
    except ScriptlabelError as exc:
        st.session_state["accept_message"] = ("error", common.app_message(exc))


def _undo_accept(batch_id: str) -> None:
    try:
        batch = bulk_accept.undo(db, common.require("bulk_accept"), batch_id)
        st.session_state["accept_message"] = ("success", f"Took back the batch of {batch.lines} accepted suggestions.")
    except ScriptlabelError as exc:
        st.session_state["accept_message"] = ("error", common.app_message(exc))


with st.container(border=True, key="accept_box"):
    st.markdown("**Accept confident suggestions** — every suggestion at or above a probability, as one batch "
                "you can undo; accepted lines leave the label queue and export as `accepted`")
    row = st.columns([2, 2, 2, 3])
    scope = row[0].radio("On", ["one page", "the whole script"], key="accept_scope", horizontal=True)
    pages = sorted(int(p) for p in frame["page"].unique())
    accept_page = row[1].selectbox("Page", pages, key="accept_page") if scope == "one page" else None
    above = row[2].number_input("At or above", min_value=0.5, max_value=0.9999, value=0.99, step=0.005,
                                format="%.4f", key="accept_above")
    try:
        preview = label_store.preview_accept(db, script_id, above=float(above), page=accept_page)
    except ScriptlabelError as exc:
        preview = None
        row[3].warning(common.escape_markdown(common.app_message(exc)))
    if preview is not None:
        where = f"page {accept_page}" if accept_page is not None else "the whole script"
        row[3].markdown(f"**{int(preview.lines)} lines** on {common.escape_markdown(where)} · expected errors **{preview.expected_errors:.2f}** "
                        f"(the sum of 1 − p) · suggestions of **v{int(preview.model_version)}**")
        batch_id = st.session_state.setdefault("accept_batch_id", label_store.new_batch_id())
        lead = common.can("bulk_accept")  # checked again where it runs (labeling.session.bulk_accept)
        row[3].button(f"Accept {int(preview.lines)} suggestions", key="accept_confirm", disabled=preview.lines == 0 or not lead,
                      on_click=_accept, args=(script_id, accept_page, float(above), preview.model_version, batch_id),
                      help=None if lead else "Leads accept suggestions in bulk; label lines one by one instead")
    if message := st.session_state.pop("accept_message", None):
        (st.success if message[0] == "success" else st.error)(common.escape_markdown(message[1]))
    for batch in label_store.accept_batches(db, script_id, limit=5):
        line = st.columns([6, 1])
        where = f"page {batch.page}" if batch.page is not None else "whole script"
        line[0].caption(f"{common.escape_markdown(batch.created_at[:16].replace('T', ' '))} · "
                        f"{common.escape_markdown(batch.annotator)} accepted {int(batch.lines)} "
                        f"suggestions of v{int(batch.model_version)} at ≥ {batch.above:g} on "
                        f"{common.escape_markdown(where)} "
                        f"({batch.expected_errors:.2f} expected errors)"
                        + (f" · undone {common.escape_markdown(batch.undone_at[:16].replace('T', ' '))}" if batch.undone_at else ""))
        if batch.undone_at is None:
            line[1].button("Undo", key=f"accept_undo_{batch.batch_id}", on_click=_undo_accept, args=(batch.batch_id,),
                           disabled=not common.can("bulk_accept"))

filters = st.columns([3, 2, 2])
scheme_keys = keys.key_map(db)  # the project's classes (store/scheme.py), the Label page's keys
scheme_titles = keys.titles(db)
labels = filters[0].multiselect("Labels", list(scheme_keys.values()), key="view_labels",
                                format_func=lambda name: scheme_titles.get(name, name))
low = filters[1].slider("Model confidence at most", 0.0, 1.0, 1.0, 0.05, key="view_conf",
                        help="Below 1.0: only lines whose suggestion is at most this sure.")
search = filters[2].text_input("Text contains", key="view_search")
# The toggles in a row of their own, each as wide as its words (in narrow columns they read "Mo…", "Un…").
with st.container(horizontal=True, key="view_toggles"):
    disagree = st.toggle("Model ≠ human", key="view_disagree")
    unlabeled = st.toggle("Unlabeled", key="view_unlabeled")
    flagged = st.toggle("Flagged", key="view_flagged", help="Lines someone flagged (unsure, bad OCR)")
    edited = st.toggle("Text fixed", key="view_edited", help="Lines whose text someone corrected")
filtered = support.filter_lines(frame, labels=labels, max_confidence=low if low < 1.0 else None,
                                disagreements=disagree, unlabeled=unlabeled, flagged=flagged, edited=edited,
                                search=search)
narrowed = len(filtered) < len(frame)
if not narrowed and frame["page"].nunique() > 1:
    page_no = st.select_slider("Page", sorted(frame["page"].unique()), key="view_page")
    filtered = filtered[filtered["page"] == page_no]
st.caption(f"{len(filtered)} of {len(frame)} lines" + (f" (first {MAX_ROWS} shown)" if len(filtered) > MAX_ROWS else "")
           + " · click a row to relabel it")

shown = filtered.head(MAX_ROWS)[["line_id", "line_no", "page", "text", "shown", "origin", "confidence", "disagree",
                                 "edited", "original_text", "flag", "flag_note"]]
selection = st.dataframe(
    support.style_lines(shown), hide_index=True, key="view_table", on_select="rerun", selection_mode="single-row",
    column_order=["line_no", "page", "text", "shown", "origin", "confidence", "disagree", "edited", "flag",
                  "flag_note", "original_text"],
    column_config={
        "line_no": st.column_config.NumberColumn("line", width="small"),
        "page": st.column_config.NumberColumn("page", width="small"),
        "shown": st.column_config.TextColumn("label"),
        "origin": st.column_config.TextColumn("by", help="human, imported, model (a suggestion) or rule"),
        "confidence": st.column_config.ProgressColumn("model confidence", min_value=0.0, max_value=1.0,
                                                      format="percent"),
        "disagree": st.column_config.CheckboxColumn("model ≠ human"),
        "edited": st.column_config.CheckboxColumn("text fixed", help="the text was corrected; the original is kept"),
        "flag": st.column_config.TextColumn("flag"),
        "flag_note": st.column_config.TextColumn("note"),
        "original_text": st.column_config.TextColumn("original text"),
    },
)
rows = selection.selection.rows if selection else []
if rows:
    chosen = shown.iloc[rows[0]]
    line_id = int(chosen["line_id"])
    st.markdown(f"**Line {int(chosen['line_no'])}** (page {int(chosen['page'])}) — now "
                f"**{common.escape_markdown(chosen['shown'] if isinstance(chosen['shown'], str) else 'unlabeled')}**")
    st.text(chosen["text"])  # the script's own text, shown as text

    def relabel(label: str) -> None:
        try:
            record_label(db, line_id, label, annotator=common.annotator() or "anonymous")
        except ScriptlabelError as exc:
            st.session_state["view_error"] = common.app_message(exc)

    columns = st.columns(len(scheme_keys))
    for column, (key, label) in zip(columns, scheme_keys.items()):
        native = key not in common.STREAMLIT_KEYS
        column.button((common.BUTTON_TITLES[label] if label in common.BUTTON_TITLES
                       else common.escape_markdown(scheme_titles.get(label, label)))
                      + ("" if native else f" ({common.escape_markdown(key)})"),
                      key=f"key_{label}", shortcut=key.upper() if native else None, on_click=relabel, args=(label,),
                      width="stretch", type="primary" if label == chosen["shown"] else "secondary")
    common.key_listener({k: f"key_{v}" for k, v in scheme_keys.items() if k in common.STREAMLIT_KEYS})
if error := st.session_state.pop("view_error", None):
    st.error(common.escape_markdown(error))

with st.expander("Progress by page"):
    progress = support.page_progress(frame)
    st.bar_chart(progress.set_index("page")[["labeled"]], height=180)
