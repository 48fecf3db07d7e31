"""Export: the labeled lines as CSV, JSONL, Parquet, XLSX, Fountain or CoNLL, filtered; or the sequences
(one row per sequence × department) as CSV, JSONL, Parquet or XLSX. Every text is exported as stored."""

from __future__ import annotations

import functools

import streamlit as st

from app_pages import common
from app_pages import support
from labeling.export import WRITERS
from store.scripts import get_script

who = common.page_requires("export")
st.title("Export")
db = common.db()
settings = common.settings()
what = st.radio("Rows", ["lines", "sequences"], key="export_what", horizontal=True,
                format_func={"lines": "one per line", "sequences": "one per sequence × department"}.get)
if what == "sequences":
    from labeling.sequences.export import SEQUENCE_FORMATS, sequence_export_payload, sequence_rows

    options = st.columns(3)
    fmt = options[0].selectbox("Format", SEQUENCE_FORMATS, key="export_seq_format")
    with options[1]:
        script_id = common.script_picker(allow_all=True, key="export_seq_script")
    only_rated = options[2].toggle("Only rated rows", key="export_seq_rated")
    frame = sequence_rows(db, script_id=script_id, only_rated=only_rated)
    st.caption(f"{len(frame)} rows · {frame['rating'].notna().sum()} rated · "
               + support.FORMAT_NOTES.get(fmt, "every text exactly as stored"))
    title = get_script(db, script_id)["title"] if script_id is not None else None
    st.download_button(
        f"Download sequences {common.escape_markdown(fmt)}", type="primary", key="export_seq_download", on_click="ignore",
        data=functools.partial(sequence_export_payload, settings.db_path, fmt, script_id=script_id,
                               only_rated=only_rated),
        file_name="sequences-" + support.export_file_name(fmt, script_title=title), mime=support.EXPORT_MIME[fmt])
    st.dataframe(frame.head(50), hide_index=True, key="export_seq_preview")
    st.stop()
options = st.columns(4)
fmt = options[0].selectbox("Format", list(WRITERS), key="export_format")
with options[1]:
    script_id = common.script_picker(allow_all=True, key="export_script")
scheme = options[2].radio("Labels", ["project", "full", "seed"], key="export_scheme", horizontal=True,
                          help="project: the project's classes (its scheme); full: the seven built-in labels; "
                               "seed: the study's S/C/D/O")
only_human = options[3].toggle("Only lines a person labeled", key="export_human")

problem = support.export_problem(fmt, script_id=script_id, scheme=scheme)
if problem:
    st.warning(common.escape_markdown(problem))
else:
    hidden = common.hidden_scripts()
    rows, sources, head = common.export_preview(script_id, only_human, scheme, hidden)
    st.caption(f"{int(rows)} lines · label sources: " + ", ".join(f"{common.escape_markdown(k)} {int(v)}" for k, v in sources.items())
               + " · " + support.FORMAT_NOTES.get(fmt, "every line's text exactly as stored"))
    title = get_script(db, script_id)["title"] if script_id is not None else None
    st.download_button(
        f"Download {common.escape_markdown(fmt)}", type="primary", key="export_download", on_click="ignore",
        data=functools.partial(support.export_payload, settings.db_path, fmt, script_id=script_id,
                               only_human=only_human, scheme=scheme, actor=who.name, hidden_scripts=hidden),
        file_name=support.export_file_name(fmt, script_title=title, scheme=scheme), mime=support.EXPORT_MIME[fmt])
    st.dataframe(head, hide_index=True, key="export_preview")
