"""Scripts: what is in the database and how far labeling got; upload a screenplay (ingested in the
background); delete one."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages import support
from labeling.ingest import jobs as ingest_jobs
from store.accounts import audit
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
    """Running and recent uploads; when one ends the whole page reruns so the table shows it."""
    hidden = common.hidden_scripts()
    views = [v for v in ingest_jobs.job_views(db) if v.script_id not in hidden]
    active = tuple(v.job_id for v in views if v.status in ("queued", "running"))
    seen = st.session_state.get("active_jobs", ())
    st.session_state["active_jobs"] = active
    if set(seen) - set(active):
        st.rerun(scope="app")
    if not views:
        return
    st.subheader("Uploads")
    for view in views:
        if view.status in ("queued", "running"):
            st.progress(view.fraction, text=view.text)
        elif view.status == "done":
            (st.warning if view.low_confidence_pages or view.flagged_pages else st.success)(view.text)
        else:
            st.error(view.text)


if common.can("ingest"):  # uploads are an admin's business (their file names and titles included)
    upload_jobs()

if common.can("ingest"):
    st.subheader("Add a screenplay")
    limits = common.settings().ingest_limits
    upload = st.file_uploader("PDF (text or scanned), plain text, Fountain or Final Draft",
                              type=["pdf", "txt", "text", "fountain", "spmd", "fdx"], key="upload",
                              help=f"Up to {limits.max_pages} pages and {limits.max_bytes / 2**20:,.0f} MB (a 120-page "
                                   "300-dpi scan is about 400 MB). A larger PDF: split it (e.g. `qpdf --split-pages=100 "
                                   "in.pdf part-%d.pdf`) and upload each part.")
    if upload is not None and st.button("Ingest", type="primary", key="ingest"):
        try:
            who = common.require("ingest")
            upload.seek(0)
            job_id = ingest_jobs.start_upload(db, upload.name, upload, limits=common.settings().ingest_limits)
            audit(db, who.name, "ingest", detail={"file": upload.name, "job": job_id})
        except ScriptlabelError as exc:
            st.error(common.escape_markdown(ingest_jobs.message_for_app(str(exc), staged=None,
                                                                        file_name=upload.name)))
        except Exception as exc:  # a logged id, never a traceback
            common.report_error(exc)
        else:
            st.toast(f"Ingesting {common.escape_markdown(upload.name)} in the background: you can leave this page")
            st.rerun()

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
        st.warning(f"Delete “{common.escape_markdown(row['title'])}” with its {row['lines']} lines and "
                   f"{row['labeled']} labeled lines, its sequences and ratings? This cannot be undone.")
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
