"""The Team page's parts: cached agreement, its tables, the adjudication panels and keys that work after a
widget was used."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlite_utils import Database

from app_pages import common
from labeling.session.keys import LABEL_KEYS
from labeling.sequences.view import RATING_NAMES
from labeling.team import adjudication, people
from labeling.team.agreement import AgreementReport, line_agreement
from store import labels as label_store
from store import sequences as sequence_store
from store.scripts import script_titles
from store.types import ScriptlabelError


def number(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def interval(ci) -> str:
    return "—" if not ci else f"{ci[0]:.2f}–{ci[1]:.2f}"


@st.cache_data(max_entries=8, show_spinner="Computing agreement…")
def _agreement(_db, stamp: tuple, script_id: int | None, hidden: frozenset) -> AgreementReport:
    return line_agreement(_db, script_id, hidden_scripts=hidden)


def agreement(db: Database, script_id: int | None, hidden: frozenset) -> AgreementReport:
    """The agreement report, recomputed only when labels or ratings changed (bootstraps take a moment)."""
    stamp = (label_store.max_event_id(db), sequence_store.max_rating_id(db))
    return _agreement(db, stamp, script_id, hidden)


def progress(db: Database) -> pd.DataFrame:
    stamp = (label_store.max_event_id(db), sequence_store.max_rating_id(db))
    return _progress(db, stamp)


@st.cache_data(max_entries=4, show_spinner=False)
def _progress(_db, stamp: tuple) -> pd.DataFrame:
    return people.progress(_db)


def show_progress(db: Database, *, key: str) -> None:
    """Each person's labels, labels/hour, suggestions changed and agreement (the Team and Users pages)."""
    table = progress(db)
    if table.empty:
        st.caption("Nobody has labeled yet.")
        return
    st.dataframe(table, hide_index=True, key=key, column_config={
        "labels_per_hour": st.column_config.NumberColumn("labels/hour", help="pauses over 5 minutes left out"),
        "changed_suggestions": st.column_config.NumberColumn("suggestions changed", format="percent"),
        "agreement_with_others": st.column_config.NumberColumn("same as others", format="percent"),
        "agreement_with_adjudicated": st.column_config.NumberColumn("same as the lead", format="percent")})


def pairs_table(report: AgreementReport) -> pd.DataFrame:
    return pd.DataFrame([{"a": p.a, "b": p.b, "n": p.n, "agreement": p.agreement, "kappa": p.kappa,
                          "ci95": interval(p.ci95)} for p in report.pairs],
                        columns=["a", "b", "n", "agreement", "kappa", "ci95"])


def class_table(report: AgreementReport) -> pd.DataFrame:
    return pd.DataFrame([{"label": label, "n": c.n, "kappa": c.kappa, "95% interval": interval(c.ci95)}
                         for label, c in report.per_class.items()], columns=["label", "n", "kappa", "95% interval"])


# Keys already work with the focus on the page (common.key_listener); after a widget was used (a radio,
# a select, a button clicked) the focus stays on it, and a letter would go to it or nowhere. This gives
# such a key back to the page: the widget loses focus and the key acts. Text and number fields keep theirs.
_FOCUS_BACK = """
<script>
(() => {
  const w = window.parent && window.parent.document ? window.parent : window;
  if (w.__scriptlabelFocusBack) return;
  w.__scriptlabelFocusBack = true;
  const typing = (t) => t && (t.isContentEditable || t.tagName === "TEXTAREA" ||
    (t.tagName === "INPUT" && t.getAttribute("role") !== "combobox" && !["radio", "checkbox", "range", "button"]
      .includes(t.type)) || (t.getAttribute && t.getAttribute("aria-expanded") === "true"));
  w.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = w.document.activeElement;
    if (!t || t === w.document.body || typing(t)) return;
    const key = (w.__scriptlabelKeys || {})[e.key.toLowerCase()];
    if (!key) return;
    const button = w.document.querySelector(".st-key-" + key + " button");
    if (!button || button.disabled) return;
    e.preventDefault(); e.stopPropagation();
    t.blur();
    button.click();
    button.blur();
  }, true);
})();
</script>
"""


def focus_returns_to_page() -> None:
    st.html(_FOCUS_BACK, unsafe_allow_javascript=True)


def _decision_id(kind: str, item_id: int) -> str:
    """One id per disagreement shown: a second click (or a rerun) on the same decision stores nothing twice."""
    ids = st.session_state.setdefault("adjudicate_ids", {})
    return ids.setdefault(f"{kind}-{item_id}", adjudication.new_decision_id())


def _settle_line(line_id: int, label: str, line_no: int) -> None:
    try:
        status = adjudication.adjudicate_line(common.db(), common.require("adjudicate"), line_id, label,
                                              decision_id=_decision_id("line", line_id))
        if status == "stored":
            st.session_state["adjudicated_message"] = f"Line {line_no}: {label} (adjudicated)"
    except ScriptlabelError as exc:
        st.session_state["adjudicated_message"] = common.app_message(exc)


def _settle_rating(sequence_id: int, value: int, department: str, code: str) -> None:
    try:
        adjudication.adjudicate_rating(common.db(), common.require("adjudicate"), sequence_id, value,
                                       department=department)
        st.session_state["adjudicated_message"] = f"{code}: {department} {value} (adjudicated)"
    except ScriptlabelError as exc:
        st.session_state["adjudicated_message"] = common.app_message(exc)


def _skip(skipped: list, item_id: int) -> None:
    skipped.append(item_id)


def _waiting(n: int, what: str) -> str:
    return f"1 {what} waits" if n == 1 else f"{n} {what}s wait"


def line_decision(db: Database, queue: list, skipped: list) -> None:
    if not queue:
        st.caption("No line waits for a decision." + (" (Some were skipped: reload the page to see them again.)"
                                                       if skipped else ""))
        return
    item = queue[0]
    title = script_titles(db).get(item.script_id, "")
    st.caption(f"{common.escape_markdown(_waiting(len(queue), 'line'))} for a decision · {common.escape_markdown(title)}, "
               f"line {int(item.line_no)}, page {int(item.page)}")
    # The script's own text, as text: a code block never renders Markdown or HTML.
    st.code("\n".join(("▶ " if c["current"] else "  ") + c["text"] for c in item.context) or item.text,
            language=None, wrap_lines=True)
    st.markdown(" · ".join(f"**{common.escape_markdown(name)}**: "
                           f"{common.escape_markdown(common.LABEL_TITLES.get(label, label))}"
                           for name, label in item.labels.items()))
    given = set(item.labels.values())
    columns = st.columns(len(LABEL_KEYS) + 1)
    for column, (key, label) in zip(columns, LABEL_KEYS.items()):
        column.button(f"{common.BUTTON_TITLES[label]} ({common.escape_markdown(key)})", key=f"adjudicate_{label}", width="stretch",
                      type="primary" if label in given else "secondary", on_click=_settle_line,
                      args=(item.line_id, label, item.line_no))
    columns[-1].button("skip (s)", key="adjudicate_skip", width="stretch", on_click=_skip,
                       args=(skipped, item.line_id))


def rating_decision(db: Database, queue: list, skipped: list, department: str) -> None:
    if not queue:
        st.caption(f"No {common.escape_markdown(department)} rating waits for a decision.")
        return
    item = queue[0]
    st.caption(f"{common.escape_markdown(_waiting(len(queue), 'sequence'))} for a decision · {common.escape_markdown(item.code)} "
               f"{common.escape_markdown(item.title)}")
    st.markdown(" · ".join(f"**{common.escape_markdown(name)}**: {int(value)}" for name, value in item.values.items()))
    given = set(item.values.values())
    columns = st.columns(6)
    for value in range(1, 6):
        columns[value - 1].button(RATING_NAMES[value], key=f"adjudicate_rate_{value}",
                                  width="stretch", type="primary" if value in given else "secondary",
                                  on_click=_settle_rating, args=(item.sequence_id, value, department, item.code))
    columns[-1].button("skip (s)", key="adjudicate_skip", width="stretch", on_click=_skip,
                       args=(skipped, item.sequence_id))
