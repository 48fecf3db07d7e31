"""Keys return to the page after any widget choice: one components-v2 element every page mounts.

A dropdown, toggle, radio, slider, table row or committed field keeps the keyboard focus after a choice,
and the page's keys (button shortcuts, the labeling view, the `c` listener) ignore keys typed into a
field: the element's script (keys_return.js) gives the focus back to the page once the choice is made.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

_ELEMENT = st.components.v2.component(
    "scriptlabel_keys_return",
    html="<span hidden></span>",
    js=(Path(__file__).with_name("keys_return.js")).read_text(encoding="utf-8"),
)


def keys_return_to_page() -> None:
    """Mount the element (once per run of any page: its script installs its listeners once per tab)."""
    _ELEMENT(key="keys_return")
