"""The labeling view as a Streamlit components v2 element: inline HTML/CSS/JS served by the app itself.

The browser side (view.js) holds the queue and talks to the app's own `/api/label/*` routes
(labeling/session/api.py); this module only mounts it with the settings of the page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from labeling.session.keys import LABEL_KEYS
from store.types import LABELS

_HERE = Path(__file__).parent
TITLES = {label: label.replace("_", " ") for label in LABELS}
_VIEW = st.components.v2.component(
    "scriptlabel_label_view",
    html=(_HERE / "view.html").read_text(encoding="utf-8"),
    css=(_HERE / "view.css").read_text(encoding="utf-8"),
    js=(_HERE / "view.js").read_text(encoding="utf-8"),
)


def label_view(*, database: str, annotator: str, script_id: int | None, strategy: str,
               sure_confidence: float = 0.97, key: str = "label_view", session: str | None = None,
               signed_in: bool = False, keys: dict[str, str] | None = None, titles: dict[str, str] | None = None):
    """Mount the labeling view; it reads and writes through the API, not through reruns.

    `sure_confidence`: a key that contradicts a suggestion at least this sure gets an "are you sure?" note.
    `annotator` is only shown and used in single-user mode: with sign-in on, the API takes the name from
    the session (the HttpOnly cookie, or `session`, a token for an OIDC user sent in a header), and
    `signed_in` keeps the tab from sending another person's unsent keys left in this browser.
    `keys` (key → class) and `titles` (class → display name) come from the project's scheme
    (labeling.session.keys); the view's buttons, key handling and help overlay are built from them."""
    return _VIEW(key=key, data={
        "database": database, "annotator": annotator, "script_id": script_id, "strategy": strategy,
        "api": "/api/label", "keys": keys or LABEL_KEYS, "titles": titles or TITLES, "sure_confidence": sure_confidence,
        "session": session, "signed_in": signed_in,
    })
