"""The Scripts page's uploader as a Streamlit components v2 element: each chosen file is sent at once, as it
is, to the app's own upload route (labeling/ingest/upload_api.py), which streams it to disk; Streamlit's
uploader would hold it whole in the server's memory. Per file: a progress bar while it is sent, then its
ingest is listed with the page's other uploads (they poll the jobs table)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

_HERE = Path(__file__).parent
_UPLOADER = st.components.v2.component(
    "scriptlabel_uploader",
    html=(_HERE / "uploader.html").read_text(encoding="utf-8"),
    css=(_HERE / "uploader.css").read_text(encoding="utf-8"),
    js=(_HERE / "uploader.js").read_text(encoding="utf-8"),
)
SUFFIXES = (".pdf", ".txt", ".text", ".fountain", ".spmd", ".fdx")


def uploader(*, database: str, annotator: str | None, session: str | None, max_bytes: int, max_pages: int,
             key: str = "uploader"):
    """Mount the uploader. `annotator` names the uploader in single-user mode (with sign-in the route takes
    the session's person); `session` is an OIDC user's token, sent in a header (local accounts' browsers
    send the HttpOnly cookie themselves)."""
    return _UPLOADER(key=key, data={
        "api": "/api/upload", "database": database, "annotator": annotator or "", "session": session,
        "accept": ",".join(SUFFIXES), "max_bytes": int(max_bytes), "max_pages": int(max_pages),
    })
