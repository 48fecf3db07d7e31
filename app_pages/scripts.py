"""Scripts: what is in the database and how far labeling got; upload a screenplay; delete one."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from labeling import app_support as support
from store.accounts import audit
from store.scripts import delete_script
from store.types import LABELS, ScriptlabelError

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
            **{label: st.column_config.NumberColumn(common.LABEL_TITLES[label], width="small") for label in LABELS},
        },
    )

if common.can("ingest"):
    st.subheader("Add a screenplay")
    upload = st.file_uploader("PDF (text or scanned), plain text, Fountain or Final Draft",
                              type=["pdf", "txt", "text", "fountain", "spmd", "fdx"], key="upload")
if common.can("ingest") and upload is not None and st.button("Ingest", type="primary", key="ingest"):
    shown_name = common.escape_markdown(upload.name)
    bar = st.progress(0.0, text=f"Reading {shown_name}…")

    def report(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{shown_name}: page {done} of {total}")

    try:
        who = common.require("ingest")
        result = support.ingest_upload(db, upload.name, upload.getvalue(), progress=report,
                                       limits=common.settings().ingest_limits)
        audit(db, who.name, "ingest", script_id=result.script_id, detail={"file": upload.name, "lines": result.lines})
    except Exception as exc:  # a ScriptlabelError's message, else a logged id: never a traceback
        bar.empty()
        common.report_error(exc)
    else:
        bar.progress(1.0, text="Done")
        st.success(f"Ingested “{common.escape_markdown(result.title)}”: {result.pages} pages, {result.lines} lines, "
                   f"{result.sequences} sequences" + (f", {result.ocr_pages} pages read by OCR" if result.ocr_pages else ""))
        if result.low_confidence_pages:
            st.warning("OCR was unsure of page(s) " + ", ".join(map(str, result.low_confidence_pages))
                       + ": check them on the Script page before trusting their lines (noise, or a poor scan).")
        st.query_params["script"] = str(result.script_id)

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
