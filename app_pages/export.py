"""Export: the labeled lines as CSV, JSONL, Parquet, Fountain or CoNLL, filtered."""

from __future__ import annotations

import functools

import streamlit as st

from app_pages import common
from labeling import app_support as support
from labeling.export import WRITERS
from store.scripts import get_script

who = common.page_requires("export")
st.title("Export")
db = common.db()
settings = common.settings()
options = st.columns(4)
fmt = options[0].selectbox("Format", list(WRITERS), key="export_format")
with options[1]:
    script_id = common.script_picker(allow_all=True, key="export_script")
scheme = options[2].radio("Labels", ["full", "seed"], key="export_scheme", horizontal=True,
                          help="full: the seven labels; seed: the study's S/C/D/O")
only_human = options[3].toggle("Only lines a person labeled", key="export_human")

problem = support.export_problem(fmt, script_id=script_id, scheme=scheme)
if problem:
    st.warning(problem)
else:
    hidden = common.hidden_scripts()
    rows, sources, head = common.export_preview(script_id, only_human, scheme, hidden)
    st.caption(f"{rows} lines · label sources: " + ", ".join(f"{k} {v}" for k, v in sources.items())
               + (" · CSV cells starting with = + - @ get a leading ' (spreadsheet-safe)" if fmt == "csv" else ""))
    title = get_script(db, script_id)["title"] if script_id is not None else None
    st.download_button(
        f"Download {fmt}", type="primary", key="export_download", on_click="ignore",
        data=functools.partial(support.export_payload, settings.db_path, fmt, script_id=script_id,
                               only_human=only_human, scheme=scheme, actor=who.name, hidden_scripts=hidden),
        file_name=support.export_file_name(fmt, script_title=title, scheme=scheme), mime=support.EXPORT_MIME[fmt])
    st.dataframe(head, hide_index=True, key="export_preview")
