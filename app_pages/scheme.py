"""Scheme (leads): the project's classes and keys, merges of built-in labels, and the rules people write.

Glue only: each form makes one call into labeling/scheme.py or labeling/label_rules.py (role re-checked
there, audited there). Labels are never rewritten: a change only changes how they read.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from labeling import label_rules
from labeling import scheme as scheme_api
from store.scheme import load_scheme, suggestions_behind
from store.types import LABELS

common.page_requires("scheme")
st.title("Label scheme")
db = common.db()
scheme = load_scheme(db)


def _apply(what: str, call, *args, **kwargs) -> None:
    try:
        call(db, common.require("scheme"), *args, **kwargs)
        st.session_state["scheme_message"] = ("success", what)
    except Exception as exc:  # a one-line message, never a traceback
        st.session_state["scheme_message"] = ("error", common.app_message(exc))


if message := st.session_state.pop("scheme_message", None):
    (st.success if message[0] == "success" else st.error)(common.escape_markdown(message[1]))

st.caption("People label with these classes and keys (Label page, Script page, `scriptlabel label`, imports). "
           "Merging or un-merging never rewrites a label: a merged built-in label reads as its class, and "
           "un-merging makes it read as itself again. After a change, retrain (Models page) so the model "
           "suggests new classes too.")
st.dataframe(pd.DataFrame([{"key": c.key, "class": c.name, "display": c.display,
                            "merges": ", ".join(m for m in c.members) or "— (learned from people's labels)"}
                           for c in scheme.classes]), hide_index=True, key="scheme_table")

if suggestions_behind(db, scheme):
    st.warning("The model's suggestions were made over other classes than these: retrain on the Models page "
               "so it suggests the scheme's classes (until then they are read through the scheme).")
presets = st.columns(3)
presets[0].button("Use the full scheme (7 labels)", key="scheme_use_full", on_click=_apply,
                  args=("Switched to the full scheme.", scheme_api.use_preset, "full"), disabled=scheme.is_full)
presets[1].button("Use the seed scheme (S/C/D/O)", key="scheme_use_seed", on_click=_apply,
                  args=("Switched to the seed scheme.", scheme_api.use_preset, "seed"))

left, right = st.columns(2)
with left.form("scheme_add_form", clear_on_submit=True):
    st.markdown("**Add a class**")
    name = st.text_input("Name", placeholder="shot", key="scheme_add_name")
    key = st.text_input("Key", max_chars=1, placeholder="k", key="scheme_add_key")
    display = st.text_input("Display name (optional)", key="scheme_add_display")
    if st.form_submit_button("Add class"):
        _apply(f"Added class {name}.", scheme_api.add_class, name, key=key, display=display or None)
        st.rerun()

with right.form("scheme_merge_form", clear_on_submit=True):
    st.markdown("**Merge built-in labels into a class**")
    builtins = st.multiselect("Built-in labels", LABELS, key="scheme_merge_labels")
    into = st.text_input("Into class (existing, or a new name)", key="scheme_merge_into")
    new_key = st.text_input("Key (only for a new class)", max_chars=1, key="scheme_merge_key")
    if st.form_submit_button("Merge"):
        _apply(f"Merged {', '.join(builtins)} into {into}.", scheme_api.merge, builtins, into=into,
               key=new_key or None)
        st.rerun()

merged = [label for label in LABELS if scheme.class_of(label) != label]
left, right = st.columns(2)
with left.form("scheme_unmerge_form"):
    st.markdown("**Un-merge**")
    back = st.multiselect("Built-in labels to make their own classes again", merged, key="scheme_unmerge_labels")
    if st.form_submit_button("Un-merge", disabled=not merged):
        _apply(f"{', '.join(back)} are their own classes again.", scheme_api.unmerge, back)
        st.rerun()

with right.form("scheme_set_form"):
    st.markdown("**Change a class's key or name, or remove it**")
    target = st.selectbox("Class", scheme.names, key="scheme_set_class")
    set_key = st.text_input("New key", max_chars=1, key="scheme_set_key")
    set_display = st.text_input("New display name", key="scheme_set_display")
    save, remove = st.columns(2)
    if save.form_submit_button("Save"):
        _apply(f"Changed {target}.", scheme_api.set_class, target, key=set_key or None, display=set_display or None)
        st.rerun()
    if remove.form_submit_button("Remove class"):
        _apply(f"Removed {target}.", scheme_api.remove_class, target)
        st.rerun()

st.subheader("Rules")
st.caption("A rule labels the lines whose text its pattern (a regular expression) matches, optionally at an "
           "indent (character columns: 12, or 20-30). Its accuracy is measured on the lines people labeled; "
           "once people's labels on its lines disagree with it, the model's suggestions take over there.")
rules = label_rules.list_rules(db)
if rules:
    st.dataframe(pd.DataFrame(rules), hide_index=True, key="rules_table",
                 column_order=["rule_id", "class", "pattern", "indent", "matches", "checked", "accuracy", "status",
                               "created_by"],
                 column_config={"accuracy": st.column_config.ProgressColumn("accuracy", min_value=0.0, max_value=1.0,
                                                                            format="percent")})
else:
    st.caption("No rules yet.")
left, right = st.columns(2)
with left.form("rule_add_form", clear_on_submit=True):
    st.markdown("**Add a rule**")
    rule_class = st.selectbox("Class", scheme.names, key="rule_add_class")
    pattern = st.text_input("Pattern", placeholder="^(ANGLE ON|CLOSE ON|INSERT)", key="rule_add_pattern")
    indent = st.text_input("Indent (optional)", placeholder="20-30", key="rule_add_indent")
    if st.form_submit_button("Add rule"):
        _apply(f"Added a rule for {rule_class}.", label_rules.add_rule, rule_class, pattern, indent=indent or None)
        st.rerun()
with right.form("rule_remove_form"):
    st.markdown("**Remove a rule**")
    rule_id = st.selectbox("Rule", [r["rule_id"] for r in rules], key="rule_remove_id",
                           format_func=lambda i: next(f"#{r['rule_id']} {r['class']}: {r['pattern']}"
                                                      for r in rules if r["rule_id"] == i))
    if st.form_submit_button("Remove rule", disabled=not rules):
        _apply(f"Removed rule #{rule_id}.", label_rules.remove_rule, int(rule_id))
        st.rerun()
