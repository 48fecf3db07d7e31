"""Scripts: what is in the database and how far labeling got; upload a screenplay (ingested in the
background); delete one."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages import support
from app_pages.uploader import uploader
from labeling.ingest import jobs as ingest_jobs
from store.accounts import audit
from store.db import database_uid
from store.scripts import delete_script
from store.types import LABELS, ScriptlabelError

JOB_POLL_S = 1.5

st.title("Scripts")
db = common.db()
overview = support.scripts_overview(db, hidden_scripts=common.hidden_scripts())

if overview.empty:
    st.info("No scripts yet: upload a screenplay below.")
else:
    st.dataframe(
        overview, hide_index=True, key="scripts_table",
        column_config={
            "script_id": st.column_config.NumberColumn("id", width="small"),
            "progress": st.column_config.ProgressColumn("done", min_value=0.0, max_value=1.0, format="percent"),
            "low_ocr_pages": st.column_config.TextColumn(
                "low OCR pages", help="Pages read by OCR with a low mean confidence: noise, a photo or a poor scan"),
            "flagged_pages": st.column_config.TextColumn(
                "pages without text", help="Scanned pages stored without lines (blank, no text found, unreadable, "
                                           "timed out); read one again on the Script page"),
            **{label: st.column_config.NumberColumn(common.LABEL_TITLES[label], width="small") for label in LABELS},
        },
    )


@st.fragment(run_every=JOB_POLL_S)
def upload_jobs() -> None:
    """Running and recent uploads, one progress bar per file; when one ends the whole page reruns so the
    table shows it."""
    hidden = common.hidden_scripts()
    views = [v for v in ingest_jobs.job_views(db) if v.script_id not in hidden]
    active = tuple(v.job_id for v in views if v.status in ("queued", "running"))
    seen = st.session_state.get("active_jobs", ())
    st.session_state["active_jobs"] = active
    if set(seen) - set(active):
        st.rerun(scope="app")
    if not views:
        return
    st.caption("Uploads (they go on in the background: you can leave this page)")
    for view in views:
        if view.status in ("queued", "running"):
            st.progress(view.fraction, text=common.escape_markdown(view.text))
        elif view.status == "done":
            row = st.columns([5, 1], vertical_alignment="center")
            (row[0].warning if view.low_confidence_pages or view.flagged_pages else row[0].success)(common.escape_markdown(view.text))
            if view.script_id is not None and common.can("label"):
                # the deep link /label?annotator=NAME&script=ID (the name too: a link may open a new session)
                row[1].page_link("app_pages/label.py", label="Label it", icon=":material/keyboard:",
                                 query_params={"script": str(view.script_id),
                                               **({"annotator": common.annotator()} if common.annotator() else {})})
        else:
            st.error(common.escape_markdown(view.text))


if common.can("ingest"):  # uploads are an admin's business (their file names and titles included)
    st.subheader("Add screenplays")
    limits = common.settings().ingest_limits
    st.caption(f"PDF (text or scanned), plain text, Fountain or Final Draft: each file is ingested as soon as you "
               f"choose it. Up to {int(limits.max_pages)} pages and {limits.max_bytes / 2**20:,.0f} MB a file (a "
               "120-page 300-dpi scan is about 400 MB). A larger PDF: split it (e.g. `qpdf --split-pages=100 in.pdf "
               "part-%d.pdf`) and upload each part.")
    # Sent to the app's own upload route, streamed to disk (Streamlit's uploader holds a file in memory).
    uploader(database=database_uid(db), annotator=common.annotator(), session=common.view_session_token(),
             max_bytes=limits.max_bytes, max_pages=limits.max_pages)
    upload_jobs()

if not overview.empty and common.can("delete"):
    st.subheader("Delete a script")
    titles = dict(zip(overview["script_id"], overview["title"]))
    doomed = st.selectbox("Script to delete", list(titles), format_func=lambda sid: f"{titles[sid]} (#{sid})",
                          key="delete_choice")
    if st.session_state.get("confirm_delete") != doomed:
        if st.button("Delete…", key="delete"):
            st.session_state["confirm_delete"] = doomed
            st.rerun()
    else:
        row = overview[overview["script_id"] == doomed].iloc[0]
        st.warning(f"Delete “{common.escape_markdown(row['title'])}” with its {int(row['lines'])} lines and "
                   f"{int(row['labeled'])} labeled lines, its sequences and ratings? This cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Yes, delete it", type="primary", key="delete_confirm"):
            try:
                who = common.require("delete")
                delete_script(db, int(doomed))
                audit(db, who.name, "delete", script_id=int(doomed), detail={"title": str(row["title"])})
            except ScriptlabelError as exc:
                st.error(common.escape_markdown(common.app_message(exc)))
            else:
                st.session_state.pop("confirm_delete", None)
                st.toast(f"Deleted {common.escape_markdown(row['title'])}")
                st.rerun()
        if no.button("Cancel", key="delete_cancel"):
            st.session_state.pop("confirm_delete", None)
            st.rerun()
