"""What every page shares: settings, this session's database connection, the annotator, cached reads."""

from __future__ import annotations

import os
import threading

import streamlit as st

from labeling import app_support as support
from store.db import open_db
from store.types import LABEL_KEYS, LABELS

LABEL_TITLES = {label: label.replace("_", " ") for label in LABELS}
BUTTON_TITLES = LABEL_TITLES | {"scene_heading": "heading", "parenthetical": "paren."}
# Streamlit reserves C (clear cache) and R (rerun) for itself, so `c` → character is a tiny listener
# that clicks the button whose widget key it is given; every other key is a native button shortcut.
NATIVE_KEYS = {key: label for key, label in LABEL_KEYS.items() if key not in ("c", "r")}
_KEY_LISTENER = """
<script>
(() => {
  const w = window.parent && window.parent.document ? window.parent : window;
  w.__scriptlabelKeys = %s;
  if (w.__scriptlabelKeyListener) return;
  w.__scriptlabelKeyListener = true;
  w.document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    const key = (w.__scriptlabelKeys || {})[e.key.toLowerCase()];
    if (!key) return;
    const button = w.document.querySelector(".st-key-" + key + " button");
    if (button && !button.disabled) { e.preventDefault(); e.stopPropagation(); button.click(); }
  }, true);
})();
</script>
"""


def app_message(error) -> str:
    """An error's message as the app shows it: no command-line advice, no temporary paths."""
    return support.app_message(str(error))


def settings() -> support.AppSettings:
    """Built once per session from the environment (SCRIPTLABEL_DB, SCRIPTLABEL_SAMPLE)."""
    if "settings" not in st.session_state:
        st.session_state["settings"] = support.settings_from_env(os.environ)
    return st.session_state["settings"]


class _Connections(threading.local):
    by_path: dict


_connections = _Connections()


def db():
    """This thread's connection to the database. Streamlit runs each rerun on a script thread and a rerun
    cut short can overlap the next one, so a connection is never shared between threads."""
    path = str(settings().db_path)
    pool = getattr(_connections, "by_path", None)
    if pool is None:
        pool = _connections.by_path = {}
    if path not in pool:
        pool[path] = open_db(path)
    return pool[path]


@st.cache_resource(show_spinner="Loading the sample screenplay…")
def _sample_once(db_path: str) -> int | None:
    result = support.ensure_sample(open_db(db_path), settings())
    return result.script_id if result else None


def first_start() -> None:
    """Ingest the bundled sample once per server process when the database has no scripts."""
    try:
        _sample_once(str(settings().db_path))
    except Exception as exc:  # the sample is a convenience; the app must start without it
        st.sidebar.warning(f"Could not load the sample screenplay: {app_message(exc)}")


def annotator_sidebar() -> str:
    """The annotator's name, in the sidebar, remembered in the session and in the URL (?annotator=…)."""
    if "annotator" not in st.session_state:
        st.session_state["annotator"] = st.query_params.get("annotator", "")
    st.sidebar.text_input("Annotator", key="annotator", placeholder="your name",
                          help="Saved with every label; two people labeling at once each get their own lines.")
    name = annotator()
    if name and st.query_params.get("annotator") != name:
        st.query_params["annotator"] = name
    return name


def has_scripts() -> bool:
    from store.scripts import script_titles

    return bool(script_titles(db()))


def annotator() -> str:
    return str(st.session_state.get("annotator") or st.query_params.get("annotator", "")).strip()


def token() -> tuple:
    return support.change_token(db())


ALL_SCRIPTS = 0  # script ids start at 1


def script_sidebar() -> int | None:
    """The chosen script, one setting for every page: a sidebar picker kept in the URL (?script=ID).

    Streamlit's page links drop query parameters, so the choice lives in the session and is written
    back to the URL on every run; a deep link's ?script= sets it when the session starts.
    """
    from store.scripts import script_titles

    titles = script_titles(db())
    options = [ALL_SCRIPTS, *titles]  # a sentinel, not None: a None value shows as an empty picker
    if "script" not in st.session_state:
        wanted = st.query_params.get("script", "")
        st.session_state["script"] = int(wanted) if wanted.isdigit() and int(wanted) in titles else ALL_SCRIPTS
    elif st.session_state["script"] not in options:  # deleted meanwhile
        st.session_state["script"] = ALL_SCRIPTS
    chosen = st.sidebar.selectbox("Script", options, key="script", format_func=lambda sid: (
        "All scripts" if sid == ALL_SCRIPTS else f"{titles[sid]} (#{sid})"))
    if chosen == ALL_SCRIPTS:
        chosen = None
        st.query_params.pop("script", None)
    elif st.query_params.get("script") != str(chosen):
        st.query_params["script"] = str(chosen)
    return chosen


def script_picker(*, allow_all: bool = False, **_where) -> int | None:
    """The script chosen in the sidebar; pages that need one script get the first when "All scripts" is on."""
    from store.scripts import script_titles

    chosen = st.session_state.get("script")
    ids = list(script_titles(db()))
    if chosen in ids:
        return chosen
    return None if allow_all or not ids else ids[0]


def key_listener(mapping: dict[str, str]) -> None:
    """Keys the native shortcuts cannot take (`c`): key → the widget key of the button to click."""
    import json

    st.html(_KEY_LISTENER % json.dumps(mapping), unsafe_allow_javascript=True)


# --- cached reads: keyed by what changes them, shared by every session, treated as read-only ----

def script_stamp(script_id: int) -> tuple:
    """Identifies one ingest of a script (ids can be reused after a delete)."""
    from store.scripts import get_script

    row = get_script(db(), script_id)
    return (script_id, row["created_at"], row["status"])


def script_lines(script_id: int):
    """Lines of a script with labels, suggestions and disagreements (the Script and Sequences pages)."""
    return _script_lines(db(), script_stamp(script_id), token())


@st.cache_resource(max_entries=4, show_spinner="Reading the script…")
def _script_lines(_db, stamp: tuple, token: tuple):
    return support.script_lines(_db, stamp[0])


def plain_lines(script_id: int):
    """Lines (text and geometry) of a script; changes only when a text is corrected."""
    return _plain_lines(db(), script_stamp(script_id), db()["text_edits"].count)


@st.cache_resource(max_entries=4, show_spinner=False)
def _plain_lines(_db, stamp: tuple, n_text_edits: int):
    from store.scripts import lines_frame

    return lines_frame(_db, stamp[0])


def pages(script_id: int):
    return _pages(db(), script_stamp(script_id))


@st.cache_resource(max_entries=8, show_spinner=False)
def _pages(_db, stamp: tuple):
    from store.scripts import get_pages

    return {p.page: p for p in get_pages(_db, stamp[0])}


def strip_png(script_id: int) -> bytes:
    return _strip_png(script_lines(script_id), script_stamp(script_id), token())


@st.cache_data(max_entries=8, show_spinner=False)
def _strip_png(_frame, stamp: tuple, token: tuple) -> bytes:
    return support.label_strip_png(_frame)


def sequence_table(script_id: int, department: str):
    return _sequence_table(db(), script_lines(script_id), script_stamp(script_id), token(), department)


@st.cache_resource(max_entries=8, show_spinner=False)
def _sequence_table(_db, _lines, stamp: tuple, token: tuple, department: str):
    return support.sequence_table(_db, stamp[0], _lines, department=department)


def export_preview(script_id: int | None, only_human: bool, scheme: str):
    """(rows, rows per label source, the first 50 rows) of an export with these filters."""
    stamp = script_stamp(script_id) if script_id is not None else None
    return _export_preview(db(), stamp, token(), only_human, scheme)


@st.cache_data(max_entries=8, show_spinner="Preparing the export…")
def _export_preview(_db, stamp: tuple | None, token: tuple, only_human: bool, scheme: str):
    from labeling.export import build_export

    frame = build_export(_db, script_id=stamp[0] if stamp else None, only_human=only_human, scheme=scheme)
    sources = frame["label_source"].fillna("unlabeled").value_counts().to_dict()
    return len(frame), sources, frame.head(50)
