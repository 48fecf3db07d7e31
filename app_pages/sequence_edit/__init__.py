"""The Sequences page's split, merge and undo controls as a components-v2 element that posts each click to the
app's own route (labeling/sequences/api.py) instead of a Streamlit rerun, which drops a click when the run
it starts is replaced (the page's reload after a retrain). The element tells the page what was done through
a state value (`done`), which, unlike a button's trigger, survives a replaced run."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

_HERE = Path(__file__).parent
_ELEMENT = st.components.v2.component(
    "scriptlabel_sequence_edit",
    html='<div class="sl-seq-edit"></div>',
    css=(_HERE / "edit.css").read_text(encoding="utf-8"),
    js=(_HERE / "edit.js").read_text(encoding="utf-8"),
)
API = "/api/sequences/edit"


def sequence_edit(*, key: str, database: str, annotator: str, session: str | None, mode: str,
                  sequence: dict | None = None, following: dict | None = None,
                  edit_id: int | None = None) -> dict | None:
    """Mount the controls; returns the latest click's outcome {client_id, edit_id, show, ...} (or None).

    mode "edit": split `sequence` (sequence_id, version, code, first_line_no, last_line_no) at a line, or
    merge it with `following` (code, lines, ratings; None for the last sequence). mode "undo": an Undo
    button for the split or merge `edit_id`. `annotator` names the person in single-user mode; with sign-in
    on, the route takes the person from the session (the cookie, or `session` for an OIDC user)."""
    result = _ELEMENT(key=key, data={"database": database, "annotator": annotator, "session": session,
                                     "api": API, "mode": mode, "sequence": sequence, "next": following,
                                     "edit_id": edit_id},
                      on_done_change=lambda: None)
    return getattr(result, "done", None)
