"""What every page shares: settings, this session's database connection, who is signed in, cached reads."""

from __future__ import annotations

import logging
import os
import uuid

import streamlit as st

from labeling.accounts import access
from app_pages import support
from labeling.accounts.api import COOKIE, LOGIN_PATH, LOGOUT_PATH
from labeling.sequences import view as sequence_view
from labeling.session.keys import LABEL_KEYS
from labeling.settings import Settings
from store import accounts
from store.db import ThreadConnections, open_db
from store.scripts import text_edit_count
from store.types import LABELS, ScriptlabelError

log = logging.getLogger("scriptlabel.app")

LABEL_TITLES = {label: label.replace("_", " ") for label in LABELS}
BUTTON_TITLES = LABEL_TITLES | {"scene_heading": "heading", "parenthetical": "paren."}
# Streamlit reserves C (clear cache) and R (rerun) for itself, so `c` → character is a tiny listener
# that clicks the button whose widget key it is given; every other key is a native button shortcut.
STREAMLIT_KEYS = frozenset({"c", "r"})
NATIVE_KEYS = {key: label for key, label in LABEL_KEYS.items() if key not in STREAMLIT_KEYS}
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


def settings() -> Settings:
    """Built once per session from the environment (SCRIPTLABEL_DB, SCRIPTLABEL_SAMPLE, …: labeling.settings)."""
    if "settings" not in st.session_state:
        st.session_state["settings"] = Settings.from_env(os.environ)
    return st.session_state["settings"]


_connections: dict[str, ThreadConnections] = {}


def db():
    """This thread's connection to the database. Streamlit runs each rerun on a script thread and a rerun
    cut short can overlap the next one, so a connection is never shared between threads."""
    path = str(settings().db_path)
    if path not in _connections:
        _connections[path] = ThreadConnections(path)
    return _connections[path].get()


@st.cache_resource(show_spinner="Loading the sample screenplay…")
def _sample_once(db_path: str) -> int | None:
    result = support.ensure_sample(open_db(db_path), settings())
    return result.script_id if result else None


def first_start() -> None:
    """Ingest the bundled sample once per server process when the database has no scripts."""
    try:
        _sample_once(str(settings().db_path))
    except Exception as exc:  # the sample is a convenience; the app must start without it
        st.sidebar.warning(f"Could not load the sample screenplay: {escape_markdown(app_message(exc))}")


# --- who is using the app -----------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def oidc_enabled() -> bool:
    """[auth] in .streamlit/secrets.toml (read once per server process)."""
    return access.oidc_configured()


def _oidc_user() -> str | None:
    """The email of a person signed in through Streamlit's OIDC (st.login), if any. Streamlit sets
    is_logged_in only from its own signed cookie, so this cannot be claimed by a browser."""
    try:
        if st.user.get("is_logged_in"):
            email = str(st.user.get("email") or "").strip()
            return email or None
    except Exception:  # st.user outside a session or on a host without it
        return None
    return None


def identity() -> access.Identity | None:
    """The person using this page, resolved on the server on every run: an OIDC sign-in (st.user), the
    sign-in cookie of a local account, or (no accounts, no OIDC) the name typed in single-user mode.
    None when sign-in is on and this browser has not signed in (or its session ended)."""
    database = db()
    email = _oidc_user()
    if email:
        who = access.oidc_identity(database, email)
        if accounts.find_user(database, who.name) is None:  # first sign-in: an annotator until an admin says more
            try:
                accounts.add_user(database, who.name, role="annotator")
            except accounts.AccountError:  # an email this app cannot keep as a name (quotes, spaces)
                log.warning("OIDC sign-in refused for an unusable email")
                return None
        if not st.session_state.get("_audited_sign_in"):
            st.session_state["_audited_sign_in"] = True
            accounts.audit(database, who.name, "sign_in", detail={"via": "oidc"})
        return who
    user = accounts.session_user(database, st.context.cookies.get(COOKIE))
    if user is not None:
        return access.from_user(user, via="local")
    if access.sign_in_enabled(database, oidc=oidc_enabled()):
        return None
    return access.single_user(_typed_name())


def can(action: str) -> bool:
    return access.can(identity(), action)


def require(action: str) -> access.Identity:
    """Re-check the role where an action runs (a hidden button is not a check); raises PermissionDeniedError."""
    return access.require(identity(), action)


def page_requires(action: str) -> access.Identity:
    """The first line of a page some roles may not open: refuses and stops the page otherwise."""
    who = identity()
    if not access.can(who, action):
        st.error("You are not allowed to open this page." if who else "Sign in first.")
        st.stop()
    return who


def hidden_scripts() -> set[int]:
    """Scripts restricted to other people: never listed, never read, never exported on this page."""
    return access.hidden_scripts(db(), identity())


def view_session_token() -> str | None:
    """For an OIDC user, a session token the labeling view sends with each request (its routes cannot
    read Streamlit's own cookie); local accounts' browsers send the HttpOnly cookie by themselves."""
    who = identity()
    if who is None or who.via != "oidc":
        return None
    token = st.session_state.get("_view_token")
    if token is None or accounts.session_user(db(), token) is None:
        token = st.session_state["_view_token"] = accounts.create_session(db(), who.name,
                                                                          ttl_s=settings().session_ttl_s)
    return token


def account_sidebar(who: access.Identity) -> None:
    """Who is signed in and a way out, instead of the free-text annotator box."""
    st.sidebar.caption(f"Signed in as {escape_markdown(who.name)} · {escape_markdown(who.role)}")
    if who.via == "oidc":
        st.sidebar.button("Sign out", key="sign_out", on_click=st.logout)
    else:
        with st.sidebar:  # a same-tab POST (a Markdown link would open a new tab, and a GET must not sign out)
            st.html(f'<form method="post" action="{LOGOUT_PATH}" class="scriptlabel-sign-out">'
                    '<button type="submit" style="font: inherit; padding: .25rem .75rem; border-radius: .5rem; '
                    'border: 1px solid #ccc; background: transparent; cursor: pointer">Sign out</button></form>')


def sign_in_page() -> None:
    """The only page for a browser that has not signed in (every URL lands here)."""
    st.title("Sign in")
    st.write("This scriptlabel holds confidential scripts: sign in to continue.")
    database = db()
    if accounts.has_local_accounts(database):
        import html

        # A GET form, not a Markdown link: Streamlit opens links in a new tab.
        st.html(f'<form method="get" action="{LOGIN_PATH}" class="scriptlabel-sign-in">'
                f'<input type="hidden" name="next" value="{html.escape(_current_path(), quote=True)}">'
                '<button type="submit" style="font: inherit; padding: .4rem 1rem; border-radius: .5rem; '
                'border: 0; background: #ff4b4b; color: #fff; cursor: pointer">Sign in with your scriptlabel '
                'account</button></form>')
    elif not oidc_enabled():
        st.info("No one can sign in yet: add an account on the server "
                "(scriptlabel users add NAME --role admin --password-stdin).")
    if oidc_enabled():
        for provider in access.oidc_providers():
            label = "Sign in with your organization's account" if provider is None else f"Sign in with {provider}"
            st.button(escape_markdown(label), key=f"oidc_{provider or 'default'}", on_click=st.login,
                      args=(() if provider is None else (provider,)), type="primary")


def _current_path() -> str:
    from urllib.parse import urlsplit

    try:
        url = urlsplit(st.context.url or "/")
    except Exception:
        return "/"
    path = url.path or "/"
    return path + (f"?{url.query}" if url.query else "")


def report_error(exc: BaseException) -> None:
    """What a page shows instead of a traceback: the message of a ScriptlabelError, else a logged id."""
    if isinstance(exc, ScriptlabelError):
        st.error(escape_markdown(app_message(exc)))  # messages quote file names and titles
        return
    error_id = uuid.uuid4().hex[:8]
    log.exception("page failed (error id %s)", error_id, exc_info=exc)
    st.error(f"Something went wrong; nothing half-done was stored. Error id {escape_markdown(error_id)} (in the "
             "server's log).")


escape_markdown = support.markdown_text  # user text inside st.markdown, captions, toasts, st.error


def _typed_name() -> str:
    return str(st.session_state.get("annotator") or st.session_state.get("annotator_name")
               or st.query_params.get("annotator", "")).strip()


def annotator_sidebar() -> str:
    """The annotator's name, in the sidebar, remembered in the session and in the URL (?annotator=…)."""
    # A widget's state does not survive st.switch_page (nor a page link that drops the URL's query), so the
    # name is also kept under a plain session key.
    if "annotator" not in st.session_state:
        st.session_state["annotator"] = st.session_state.get("annotator_name") or st.query_params.get("annotator", "")
    st.sidebar.text_input("Annotator", key="annotator", placeholder="your name",
                          help="Saved with every label; two people labeling at once each get their own lines.")
    st.session_state["annotator_name"] = str(st.session_state.get("annotator") or "").strip()
    name = annotator()
    if name and st.query_params.get("annotator") != name:
        st.query_params["annotator"] = name
    return name


def has_scripts() -> bool:
    from store.scripts import script_titles

    hidden = hidden_scripts()
    return any(sid not in hidden for sid in script_titles(db()))


def annotator() -> str:
    """Who acts: the signed-in person, else (single-user mode) the name typed in the sidebar."""
    who = identity()
    if who is not None and who.signed_in:
        return who.name
    return _typed_name()


def token() -> tuple:
    return support.change_token(db())


ALL_SCRIPTS = 0  # script ids start at 1


def script_sidebar() -> int | None:
    """The chosen script, one setting for every page: a sidebar picker kept in the URL (?script=ID).

    Streamlit's page links drop query parameters, so the choice lives in the session and is written
    back to the URL on every run; a deep link's ?script= sets it when the session starts.
    """
    from store.scripts import script_titles

    hidden = hidden_scripts()
    titles = {sid: title for sid, title in script_titles(db()).items() if sid not in hidden}
    options = [ALL_SCRIPTS, *titles]  # a sentinel, not None: a None value shows as an empty picker
    if (asked := st.session_state.pop("script_wanted", None)) in titles:  # a page's "open this script" button
        st.session_state["script"] = asked
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
    hidden = hidden_scripts()
    ids = [sid for sid in script_titles(db()) if sid not in hidden]
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
    return sequence_view.script_lines(_db, stamp[0])


def plain_lines(script_id: int):
    """Lines (text and geometry) of a script; changes only when a text is corrected."""
    return _plain_lines(db(), script_stamp(script_id), text_edit_count(db()))


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
    return sequence_view.sequence_table(_db, stamp[0], _lines, department=department)


def export_preview(script_id: int | None, only_human: bool, scheme: str, hidden: set[int] = frozenset()):
    """(rows, rows per label source, the first 50 rows) of an export with these filters."""
    stamp = script_stamp(script_id) if script_id is not None else None
    return _export_preview(db(), stamp, token(), only_human, scheme, tuple(sorted(hidden)))


@st.cache_data(max_entries=8, show_spinner="Preparing the export…")
def _export_preview(_db, stamp: tuple | None, token: tuple, only_human: bool, scheme: str, hidden: tuple = ()):
    return support.export_summary(_db, script_id=stamp[0] if stamp else None, only_human=only_human, scheme=scheme,
                                  hidden_scripts=set(hidden))
